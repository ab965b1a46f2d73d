//! `um-sim genesys|telegram|both|line|teams|viber|slack --listen 127.0.0.1:PORT
//! [--port-file F] [--ttl SECONDS] [--config FILE]`: runs the simulators on
//! one loopback listener with the `/__sim/` control API (platform parts
//! under `/__sim/<platform>`), until SIGTERM/SIGINT or the TTL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use um_simulators::control::{Mode, SimConfig, SimHost, serve};

#[derive(Parser)]
#[command(
    name = "um-sim",
    about = "Simulators of Genesys Cloud Open Messaging and of Telegram, LINE, Microsoft Teams, Viber and Slack for end-to-end tests"
)]
struct Args {
    /// Which simulators to run.
    #[arg(value_enum)]
    mode: Mode,
    /// Loopback address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write the chosen port here once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// JSON configuration: one section per simulator (`genesys`, `telegram`,
    /// `line`, `teams`, `viber`, `slack`) with credentials, limits and retry
    /// policies.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config: SimConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parsing config {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let (host, listener, router) = SimHost::bind(args.mode, &config, args.listen)
        .await
        .context("starting simulators")?;
    if let Some(path) = &args.port_file {
        // Write then rename so a reader never sees a partial port number.
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, format!("{}\n", host.addr().port()))
            .with_context(|| format!("writing port file {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("writing port file {}", path.display()))?;
    }
    eprintln!(
        "um-sim {:?} listening on {} (ttl {} s)",
        args.mode,
        host.base_url(),
        args.ttl
    );
    let ttl = Duration::from_secs(args.ttl);
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let stop_signal = stopping.clone();
    let served = serve(listener, router, async move {
        wait_for_stop(ttl).await;
        stop_signal.notify_one();
    });
    // Open long-polls (/__sim/wait) would hold a graceful stop; bound it.
    tokio::select! {
        result = served => result.context("serving")?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } => eprintln!("um-sim: connections still open after 5 s, exiting"),
    }
    Ok(())
}

async fn wait_for_stop(ttl: Duration) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("um-sim: cannot watch SIGTERM ({error}); relying on the TTL");
                tokio::time::sleep(ttl).await;
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => eprintln!("um-sim: SIGTERM, stopping"),
        _ = tokio::signal::ctrl_c() => eprintln!("um-sim: interrupted, stopping"),
        _ = tokio::time::sleep(ttl) => eprintln!("um-sim: TTL reached, stopping"),
    }
}
