use std::net::SocketAddr;

/// Failures of the simulators' own machinery (not protocol errors, which
/// are answered over HTTP like the real service does).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind simulator listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("refusing to listen on {0}: simulators serve loopback addresses only")]
    NotLoopback(SocketAddr),
    #[error("cannot read local address of simulator listener: {0}")]
    LocalAddr(std::io::Error),
    #[error("cannot build HTTP client for outgoing calls: {0}")]
    HttpClient(reqwest::Error),
    #[error("unknown integration {0}")]
    UnknownIntegration(String),
    #[error("unknown bot token (bot id {0})")]
    UnknownBot(String),
    #[error("bot {0} has no webhook set")]
    NoWebhook(String),
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    #[error("cannot generate a signing key: {0}")]
    KeyGeneration(String),
}
