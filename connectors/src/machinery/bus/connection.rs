//! One broker connection per process, re-opened when it breaks.
//!
//! The connection runs on the process's tokio runtime (lapin's own default
//! would start a second executor and reactor with threads of their own,
//! which costs memory and a thread hop for every frame), and asks for a
//! small `frame_max`: lapin keeps a send and a receive buffer of 32 frames
//! each, so the broker's default of 128 KiB would pin 8 MiB per process
//! for envelopes of about one kilobyte. Larger messages still pass, split
//! into several frames.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::BusError;
use super::topology::{self, Route};
use crate::machinery::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct BusSettings {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Shard queues per route (`UM_BUS_SHARDS`).
    pub shards: u16,
    /// Shows in the broker's management UI (`um-<service>@<host>`).
    pub connection_name: String,
    /// First part of every exchange and queue name ([`super::DEFAULT_NAMESPACE`]).
    pub namespace: String,
}

/// The largest frame we accept unless the URL asks otherwise (`?frame_max=`).
pub const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// The broker URL with our `frame_max` unless it names one.
pub(crate) fn connection_uri(url: &str) -> Result<AMQPUri, BusError> {
    let mut uri: AMQPUri = url.parse().map_err(|detail: String| {
        // The parser may quote the whole URL, password included.
        let redacted = redact_url(url);
        BusError::Url {
            detail: detail.replace(url, &redacted),
            url: redacted,
        }
    })?;
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
    }
    Ok(uri)
}

struct Live {
    connection: Arc<Connection>,
    declared: HashSet<Route>,
}

struct Inner {
    settings: BusSettings,
    metrics: Metrics,
    live: Mutex<Option<Live>>,
    connected_once: std::sync::atomic::AtomicBool,
}

/// The process's broker connection; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

/// The URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("[REDACTED]"));
            }
            parsed.to_string()
        }
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

impl Bus {
    /// Does not connect yet: the first [`Bus::channel`] does.
    pub fn new(settings: BusSettings, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                metrics,
                live: Mutex::new(None),
                connected_once: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn shards(&self) -> u16 {
        self.inner.settings.shards
    }

    pub fn namespace(&self) -> &str {
        &self.inner.settings.namespace
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The live connection, opening a new one if there is none or it broke.
    /// One attempt: callers that must not give up loop with back-off.
    async fn live_connection<'a>(
        &'a self,
        guard: &mut tokio::sync::MutexGuard<'a, Option<Live>>,
    ) -> Result<(), BusError> {
        if let Some(live) = guard.as_ref()
            && live.connection.status().connected()
        {
            return Ok(());
        }
        self.inner.metrics.bus_connected(false);
        let uri = connection_uri(&self.inner.settings.url)?;
        let properties = ConnectionProperties::default()
            .with_connection_name(self.inner.settings.connection_name.clone().into())
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let connection = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect_uri(uri, properties),
        )
        .await
        .unwrap_or_else(|_| {
            Err(lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection attempt timed out after 10 s",
                ),
            ))))
        })
        .map_err(|source| BusError::Connect {
            url: redact_url(&self.inner.settings.url),
            source,
        })?;
        if self
            .inner
            .connected_once
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.inner.metrics.bus_reconnected();
            tracing::info!("reconnected to the broker");
        }
        self.inner.metrics.bus_connected(true);
        **guard = Some(Live {
            connection: Arc::new(connection),
            declared: HashSet::new(),
        });
        Ok(())
    }

    /// A new channel on the live connection.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        let mut guard = self.inner.live.lock().await;
        self.live_connection(&mut guard).await?;
        let live = guard.as_ref().expect("live_connection leaves a connection");
        live.connection
            .create_channel()
            .await
            .map_err(|source| BusError::Amqp {
                step: "channel.open",
                object: "connection".to_owned(),
                source,
            })
    }

    /// Declares a route's topology once per connection.
    pub async fn declare(&self, route: &Route) -> Result<(), BusError> {
        {
            let mut guard = self.inner.live.lock().await;
            self.live_connection(&mut guard).await?;
            if guard
                .as_ref()
                .is_some_and(|live| live.declared.contains(route))
            {
                return Ok(());
            }
        }
        let channel = self.channel().await?;
        let result =
            topology::declare_route(&channel, self.namespace(), route, self.shards()).await;
        let _ = channel.close(200, "topology declared").await;
        result?;
        if let Some(live) = self.inner.live.lock().await.as_mut() {
            live.declared.insert(*route);
        }
        Ok(())
    }

    /// Opens a channel, retrying with back-off until it works or `cancel`.
    pub async fn channel_with_retry(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<Channel> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.channel().await {
                Ok(channel) => return Some(channel),
                Err(error) => {
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "broker not reachable");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// For readiness: connected now (opening the connection if needed).
    pub async fn check(&self) -> Result<(), BusError> {
        let mut guard = self.inner.live.lock().await;
        self.live_connection(&mut guard).await
    }

    /// Closes the connection (graceful shutdown).
    pub async fn close(&self) {
        if let Some(live) = self.inner.live.lock().await.take() {
            let _ = live.connection.close(200, "shutting down").await;
        }
        self.inner.metrics.bus_connected(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_unless_the_url_names_a_size() {
        let uri = connection_uri("amqp://user:pw@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
        assert_eq!(uri.authority.port, 5672);
        assert_eq!(uri.vhost, "/");
        let own = connection_uri("amqp://127.0.0.1:5672/%2f?frame_max=65536").unwrap();
        assert_eq!(own.query.frame_max, Some(65536));
    }

    #[test]
    fn unusable_url_error_hides_the_password() {
        let error = connection_uri("http://user:hunter2@127.0.0.1/").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = connection_uri("amqp://user:hunter2@[bad").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
