//! The service configuration and its changes, whatever its source.
//!
//! File source: Kubernetes updates a mounted Secret by swapping a symlink,
//! which file notification APIs report unreliably; re-reading the small file
//! on an interval is simple and always right. A file that fails to parse is
//! logged and ignored: the service keeps running on the last good one.
//!
//! Kubernetes source: [`crate::machinery::config_kube`] builds the watcher
//! with [`ConfigWatcher::fixed`] and [`ConfigWatcher::replace`]s the
//! configuration as its Secrets change; there is no file to re-read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use um_config::{ConfigError, ServiceConfig, TenantConfig};

pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

struct Inner {
    tx: watch::Sender<Arc<ServiceConfig>>,
    path: Option<PathBuf>,
}

/// The current configuration and its change notifications; cheap to clone.
#[derive(Clone)]
pub struct ConfigWatcher {
    inner: Arc<Inner>,
}

impl ConfigWatcher {
    /// Reads `<dir>/service.json` (or the file itself); refuses to start
    /// without a valid one.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = ServiceConfig::load(path)?;
        let (tx, _) = watch::channel(Arc::new(config));
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                path: Some(path.to_path_buf()),
            }),
        })
    }

    /// A configuration held in memory, changed only through [`Self::replace`]
    /// (tests, or the kubernetes source); [`Self::spawn_reloader`] does
    /// nothing for it.
    pub fn fixed(config: ServiceConfig) -> Self {
        let (tx, _) = watch::channel(Arc::new(config));
        Self {
            inner: Arc::new(Inner { tx, path: None }),
        }
    }

    pub fn current(&self) -> Arc<ServiceConfig> {
        self.inner.tx.borrow().clone()
    }

    pub fn tenant(&self, key: &str) -> Option<TenantConfig> {
        self.inner.tx.borrow().tenants.get(key).cloned()
    }

    /// Notified on every change; `borrow_and_update()` gives the new value.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ServiceConfig>> {
        self.inner.tx.subscribe()
    }

    /// Replaces the configuration; `true` if it differed.
    pub fn replace(&self, config: ServiceConfig) -> bool {
        self.inner.tx.send_if_modified(|current| {
            if **current == config {
                false
            } else {
                *current = Arc::new(config);
                true
            }
        })
    }

    /// Re-reads the file; `Ok(true)` if the configuration changed.
    pub fn reload(&self) -> Result<bool, ConfigError> {
        match &self.inner.path {
            Some(path) => Ok(self.replace(ServiceConfig::load(path)?)),
            None => Ok(false),
        }
    }

    /// Re-reads the file every `interval` until `shutdown`; without a file
    /// the task ends at once.
    pub fn spawn_reloader(
        &self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let watcher = self.clone();
        let has_file = self.inner.path.is_some();
        tokio::spawn(async move {
            // Waking every interval to find nothing to read would only cost.
            if !has_file {
                return;
            }
            let mut last_error: Option<String> = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                match watcher.reload() {
                    Ok(true) => {
                        last_error = None;
                        tracing::info!(
                            tenants = watcher.current().tenants.len(),
                            "service configuration reloaded"
                        );
                    }
                    Ok(false) => last_error = None,
                    Err(error) => {
                        let text = error.to_string();
                        // Say it once per distinct problem, not every interval.
                        if last_error.as_deref() != Some(&text) {
                            tracing::error!(error = %text, "service configuration not reloaded, keeping the last good one");
                            last_error = Some(text);
                        }
                    }
                }
            }
        })
    }
}

/// How one tenant differs between two configurations.
#[allow(clippy::large_enum_variant)] // short-lived, a handful per reload
#[derive(Debug, Clone, PartialEq)]
pub enum TenantChange {
    Added(TenantConfig),
    Changed {
        previous: TenantConfig,
        current: TenantConfig,
    },
    Removed(TenantConfig),
}

/// Tenants added, changed and removed from `old` to `new`, in key order.
pub fn diff_tenants(old: &ServiceConfig, new: &ServiceConfig) -> Vec<TenantChange> {
    let mut changes = Vec::new();
    for (key, tenant) in &new.tenants {
        match old.tenants.get(key) {
            None => changes.push(TenantChange::Added(tenant.clone())),
            Some(previous) if previous != tenant => changes.push(TenantChange::Changed {
                previous: previous.clone(),
                current: tenant.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, tenant) in &old.tenants {
        if !new.tenants.contains_key(key) {
            changes.push(TenantChange::Removed(tenant.clone()));
        }
    }
    changes
}
