//! Runs an axum router on a loopback listener in a background task that
//! stops when the handle is dropped or shut down.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::SimError;

pub(crate) const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// Simulators impersonate SaaS for tests; they never face a network.
pub(crate) fn ensure_loopback(listen: SocketAddr) -> Result<(), SimError> {
    if listen.ip().is_loopback() {
        Ok(())
    } else {
        Err(SimError::NotLoopback(listen))
    }
}

pub(crate) struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    pub(crate) async fn serve(listen: SocketAddr, router: Router) -> Result<Self, SimError> {
        ensure_loopback(listen)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulator server ended with an error");
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits for that.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Dropped without an explicit shutdown: stop at once rather than
        // leaving keep-alive connections serving a dead simulator.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
