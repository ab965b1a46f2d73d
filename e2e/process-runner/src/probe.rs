//! Readiness, liveness and startup probes (httpGet and tcpSocket).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves a probe port (number or the name of a container port).
pub fn resolve_port(container: &Container, port: &IntOrString) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// Counts consecutive results against the probe's thresholds, as the
/// kubelet does: the outcome flips only after successThreshold successes or
/// failureThreshold failures in a row.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    pub healthy: bool,
}

impl ProbeTracker {
    pub fn new(probe: &Probe, initially_healthy: bool) -> Self {
        ProbeTracker {
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            successes: 0,
            failures: 0,
            healthy: initially_healthy,
        }
    }

    /// True once failureThreshold failures came in a row.
    pub fn failures_exhausted(&self) -> bool {
        self.failures >= self.failure_threshold
    }

    /// Records one result; returns the (possibly changed) outcome.
    pub fn record(&mut self, ok: bool) -> bool {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= self.success_threshold {
                self.healthy = true;
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failure_threshold {
                self.healthy = false;
            }
        }
        self.healthy
    }
}

pub fn period(probe: &Probe) -> Duration {
    Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64)
}

pub fn initial_delay(probe: &Probe) -> Duration {
    Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64)
}

fn timeout(probe: &Probe) -> Duration {
    Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64)
}

/// Runs one probe against the Pod's IP. Exec and gRPC probes are not
/// supported and count as success (logged once by the caller).
pub async fn run_probe(
    client: &reqwest::Client,
    probe: &Probe,
    container: &Container,
    pod_ip: &str,
) -> bool {
    if let Some(http) = &probe.http_get {
        let Some(port) = resolve_port(container, &http.port) else {
            return false;
        };
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_owned());
        let scheme = http
            .scheme
            .as_deref()
            .unwrap_or("HTTP")
            .to_ascii_lowercase();
        let path = http.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let mut req = client
            .get(format!("{scheme}://{host}:{port}{path}"))
            .timeout(timeout(probe));
        for h in http.http_headers.iter().flatten() {
            req = req.header(&h.name, &h.value);
        }
        // The kubelet counts 200..=399 as success.
        return matches!(req.send().await, Ok(r) if (200..400).contains(&r.status().as_u16()));
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(container, &tcp.port) else {
            return false;
        };
        let host = tcp.host.clone().unwrap_or_else(|| pod_ip.to_owned());
        return matches!(
            tokio::time::timeout(
                timeout(probe),
                tokio::net::TcpStream::connect((host.as_str(), port))
            )
            .await,
            Ok(Ok(_))
        );
    }
    true
}

/// True when the probe is of a kind the runner can run.
pub fn supported(probe: &Probe) -> bool {
    probe.http_get.is_some() || probe.tcp_socket.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn thresholds_gate_transitions() {
        let probe = Probe {
            success_threshold: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let mut t = ProbeTracker::new(&probe, false);
        assert!(!t.record(true));
        assert!(t.record(true));
        assert!(t.record(false));
        assert!(t.record(false));
        assert!(!t.record(false));
        assert!(!t.record(true), "one success below the threshold of 2");
        assert!(t.record(true));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let c = Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&c, &IntOrString::String("http".into())),
            Some(8080)
        );
        assert_eq!(resolve_port(&c, &IntOrString::Int(9090)), Some(9090));
        assert_eq!(
            resolve_port(&c, &IntOrString::String("metrics".into())),
            None
        );
        assert_eq!(resolve_port(&c, &IntOrString::Int(-1)), None);
    }

    #[tokio::test]
    async fn http_probe_hits_the_pod_ip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/bad",
                axum::routing::get(|| async { http::StatusCode::SERVICE_UNAVAILABLE }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let container = Container::default();
        let probe = |path: &str| Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let client = reqwest::Client::new();
        assert!(run_probe(&client, &probe("/ok"), &container, "127.0.0.1").await);
        assert!(!run_probe(&client, &probe("/bad"), &container, "127.0.0.1").await);
        assert!(!run_probe(&client, &probe("/ok"), &container, "127.0.0.2").await);
    }
}
