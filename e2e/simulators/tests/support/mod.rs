//! A small webhook receiver for tests: records every request and answers
//! with scripted statuses (then 200).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
    always: Mutex<Option<u16>>,
    /// Answer the next N requests only after this long (to provoke timeouts).
    slow: Mutex<(u32, Duration)>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    count: Arc<watch::Sender<usize>>,
    pub url: String,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let count = Arc::new(watch::Sender::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("receiver addr")
        );
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state((inner.clone(), count.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { inner, count, url }
    }

    /// The next answers, in order; afterwards 200 (or `always`).
    pub fn script(&self, statuses: &[u16]) {
        self.inner.script.lock().unwrap().extend(statuses);
    }

    pub fn slow_next(&self, count: u32, delay: Duration) {
        *self.inner.slow.lock().unwrap() = (count, delay);
    }

    pub fn always(&self, status: u16) {
        *self.inner.always.lock().unwrap() = Some(status);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub async fn wait(&self, count: usize) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|n| *n >= count))
            .await
            .is_ok()
    }
}

async fn receive(
    State((inner, count)): State<(Arc<Inner>, Arc<watch::Sender<usize>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = {
        let scripted = inner.script.lock().unwrap().pop_front();
        scripted.or(*inner.always.lock().unwrap()).unwrap_or(200)
    };
    let n = {
        let mut received = inner.received.lock().unwrap();
        received.push(Received { headers, body });
        received.len()
    };
    count.send_replace(n);
    let delay = {
        let mut slow = inner.slow.lock().unwrap();
        if slow.0 > 0 {
            slow.0 -= 1;
            Some(slow.1)
        } else {
            None
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap()
}
