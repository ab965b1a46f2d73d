//! Cheap in-memory recording shared by the simulators: append under a
//! short mutex, and a watch counter so waiters wake without polling.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// One HTTP request the simulator answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// An append-only list whose changes wake `wait_len` callers.
pub(crate) struct RecordList<T> {
    items: Mutex<Vec<T>>,
    changed: watch::Sender<usize>,
}

impl<T: Clone> RecordList<T> {
    pub(crate) fn new() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, item: T) {
        let len = {
            let mut items = lock(&self.items);
            items.push(item);
            items.len()
        };
        self.changed.send_replace(len);
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        lock(&self.items).clone()
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.items).len()
    }

    pub(crate) fn clear(&self) {
        lock(&self.items).clear();
        self.changed.send_replace(0);
    }

    /// Waits until at least `count` items exist; false on timeout.
    pub(crate) async fn wait_len(&self, count: usize, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        let reached = rx.wait_for(|len| *len >= count);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it:
/// recordings stay readable after a failed assertion in another task.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
