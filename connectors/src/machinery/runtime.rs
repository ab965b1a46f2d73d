//! Everything a service needs, built once from [`Settings`]: configuration
//! watcher, Redis store, bus, publisher, HTTP client, metrics, media signer,
//! and the shutdown signal. The gcloudcx and api services take their
//! building blocks from here; platform services are run by
//! [`crate::machinery::service::run_platform`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::machinery::bus::{Bus, BusSettings, Consumer, ConsumerOptions, Publisher, Route};
use crate::machinery::config_kube::{self, KubeConfigError};
use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::http_client::{HttpClientError, HttpClients};
use crate::machinery::media::MediaSigner;
use crate::machinery::metrics::Metrics;
use crate::machinery::notify::{Notice, Notifier, TOPIC_DEFAULT};
use crate::machinery::server::{Health, ServerBuilder};
use crate::machinery::settings::{ConfigSource, Settings};
use crate::machinery::store::{Store, StoreError};
use crate::platform::PlatformContext;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] um_config::ConfigError),
    #[error("configuration file is for service {found:?}, this process runs {expected:?}")]
    WrongService { found: String, expected: String },
    #[error(transparent)]
    Kubernetes(KubeConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    HttpClient(#[from] HttpClientError),
    #[error("shut down before the service was ready")]
    Cancelled,
}

/// The shared parts of a running service; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub settings: Arc<Settings>,
    pub config: ConfigWatcher,
    pub store: Store,
    pub bus: Bus,
    pub publisher: Publisher,
    pub http: HttpClients,
    pub metrics: Metrics,
    pub media: MediaSigner,
    pub shutdown: CancellationToken,
}

impl Runtime {
    /// Loads the configuration (the file, or a complete list of the
    /// service's Secrets, then watched until `shutdown`), connects Redis
    /// (waiting for it), prepares the bus (connected lazily, reconnecting),
    /// and starts the configuration reloader.
    pub async fn start(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let config = match &settings.config_source {
            ConfigSource::File(path) => {
                let config = ConfigWatcher::load(path)?;
                let found = config.current().service.clone();
                if found != settings.service {
                    return Err(StartError::WrongService {
                        found,
                        expected: settings.service.clone(),
                    });
                }
                config
            }
            // Assembled for settings.service, so it cannot be another's.
            ConfigSource::Kubernetes {
                namespace,
                instance,
            } => config_kube::watch(
                namespace,
                instance,
                &settings.service,
                config_kube::INITIAL_LIST_TIMEOUT,
                shutdown.clone(),
            )
            .await
            .map_err(|error| match error {
                KubeConfigError::Cancelled => StartError::Cancelled,
                error => StartError::Kubernetes(error),
            })?,
        };
        let metrics = Metrics::new(&settings.service);
        let store = connect_store(&settings, &shutdown).await?;
        Self::assemble(settings, config, store, metrics, shutdown)
    }

    /// Builds a runtime from parts (tests, or a caller with its own config).
    pub fn assemble(
        settings: Settings,
        config: ConfigWatcher,
        store: Store,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        let bus = Bus::new(
            BusSettings {
                url: settings.amqp_url.expose().to_owned(),
                shards: settings.shards,
                connection_name: format!("um-{}@{host}", settings.service),
                namespace: settings.bus_namespace.clone(),
            },
            metrics.clone(),
        );
        let http = HttpClients::with_fetch_allow(
            &config.current().settings,
            settings.fetch_allow.clone(),
        )?;
        let media = MediaSigner::new(settings.media_signing_key.clone(), settings.media_url_ttl);
        let runtime = Self {
            publisher: Publisher::new(bus.clone()),
            settings: Arc::new(settings),
            config,
            store,
            bus,
            http,
            metrics,
            media,
            shutdown,
        };
        runtime.spawn_config_reloader();
        crate::machinery::departures::spawn_sweeper(
            runtime.config.clone(),
            runtime.store.clone(),
            runtime.shutdown.clone(),
        );
        Ok(runtime)
    }

    fn spawn_config_reloader(&self) {
        self.config
            .spawn_reloader(self.settings.config_reload, self.shutdown.clone());
        // The outbound proxy follows the configuration.
        let mut changes = self.config.subscribe();
        let http = self.http.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = changes.changed() => if changed.is_err() { return },
                }
                let settings = changes.borrow_and_update().settings.clone();
                if let Err(error) = http.update(&settings) {
                    tracing::error!(error = %error, "outbound proxy setting not applied");
                }
            }
        });
    }

    /// Consumer of a route with the process's prefetch, attempts and done
    /// markers in this service's Redis namespace.
    pub fn consumer(&self, route: Route) -> Consumer {
        let options = ConsumerOptions {
            prefetch: self.settings.prefetch,
            retry_for: self.settings.retry_for,
            ..ConsumerOptions::default()
        };
        Consumer::new(self.bus.clone(), route, options)
            .with_done_markers(self.store.clone())
            .with_notifier(self.notifier(), self.settings.service.clone())
    }

    /// Notifications to the configured NotifierDestinations.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.http.clone(), self.config.clone())
    }

    /// Announces start or stop on the `Default` topic (best effort).
    pub async fn notify_lifecycle(&self, event: &str) {
        let notice = Notice {
            topic: TOPIC_DEFAULT,
            tenant: None,
            summary: format!("service {} {event}", self.settings.service),
            source: self.settings.service.clone(),
            severity: "info",
            details: serde_json::json!({ "event": event }),
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.notifier().notify(&notice)).await;
    }

    /// The HTTP server with health (broker + Redis) and metrics routes.
    pub fn server(&self) -> ServerBuilder {
        ServerBuilder::new(
            Health {
                bus: Some(self.bus.clone()),
                store: Some(self.store.clone()),
            },
            self.metrics.clone(),
        )
    }

    pub fn platform_context(&self) -> PlatformContext {
        PlatformContext {
            service: self.settings.service.clone(),
            http: self.http.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            media: self.media.clone(),
            config: self.config.clone(),
        }
    }
}

async fn connect_store(
    settings: &Settings,
    shutdown: &CancellationToken,
) -> Result<Store, StartError> {
    let mut delay = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        match Store::connect(settings.redis_url.expose(), &settings.service).await {
            Ok(store) => return Ok(store.in_namespace(&settings.bus_namespace)),
            // Redis may start after us (a fresh cluster); wait a while, then
            // let the orchestrator restart us with the error in the log.
            Err(error) if attempts < 30 => {
                tracing::warn!(error = %error, "Redis not reachable yet, retrying");
            }
            Err(error) => return Err(error.into()),
        }
        attempts += 1;
        tokio::select! {
            _ = shutdown.cancelled() => return Err(StartError::Cancelled),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
