//! From a route's Service port to ready endpoint addresses (pure).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::routes::ServicePort;

/// Ready endpoints from the Service's EndpointSlices (label
/// `kubernetes.io/service-name`), for the slice port named like the
/// Service port.
pub fn from_slices(
    service: &Service,
    port: &ServicePort,
    slices: &[&EndpointSlice],
) -> Vec<SocketAddr> {
    let Some(svc_port) = service_port(service, port) else {
        return Vec::new();
    };
    let port_name = svc_port.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            if let Some(ip) = ep.addresses.first().and_then(|a| a.parse().ok()) {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    out.sort();
    out
}

fn service_port<'a>(
    service: &'a Service,
    port: &ServicePort,
) -> Option<&'a k8s_openapi::api::core::v1::ServicePort> {
    service
        .spec
        .as_ref()?
        .ports
        .iter()
        .flatten()
        .find(|p| match port {
            ServicePort::Number(n) => p.port == *n,
            ServicePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready endpoints computed from the Service selector and the Pods, as the
/// EndpointSlice controller would: the fallback when no slice lists them
/// (the API server refuses loopback addresses in EndpointSlices).
pub fn from_pods(service: &Service, port: &ServicePort, pods: &[&Pod]) -> Vec<SocketAddr> {
    let Some(svc_port) = service_port(service, port) else {
        return Vec::new();
    };
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let namespace = service.metadata.namespace.as_deref();
    let target = svc_port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(svc_port.port));
    let mut out = Vec::new();
    for pod in pods {
        if pod.metadata.namespace.as_deref() != namespace
            || !selects(&selector, pod)
            || !pod_ready(pod)
        {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok())
        else {
            continue;
        };
        let port = match &target {
            IntOrString::Int(n) => u16::try_from(*n).ok(),
            IntOrString::String(name) => pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        };
        if let Some(port) = port {
            out.push(SocketAddr::new(ip, port));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "slack", "namespace": "um" },
            "spec": { "selector": { "app": "slack" }, "ports": [
                { "name": "http", "port": 80, "targetPort": "web" },
                { "name": "metrics", "port": 9090, "targetPort": 9091 }
            ]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, app: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "um", "labels": { "app": app } },
            "spec": { "containers": [{ "name": "c", "ports": [{ "name": "web", "containerPort": 8080 }] }] },
            "status": { "podIP": ip, "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] }
        }))
        .unwrap()
    }

    #[test]
    fn slices_give_ready_endpoints_of_the_named_port() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": { "name": "slack-abc", "namespace": "um", "labels": { "kubernetes.io/service-name": "slack" } },
            "addressType": "IPv4",
            "ports": [{ "name": "http", "port": 8080 }, { "name": "metrics", "port": 9091 }],
            "endpoints": [
                { "addresses": ["10.0.0.2"], "conditions": { "ready": true } },
                { "addresses": ["10.0.0.3"], "conditions": { "ready": false } },
                { "addresses": ["10.0.0.1"] }
            ]
        }))
        .unwrap();
        let eps = from_slices(&service(), &ServicePort::Name("http".into()), &[&slice]);
        assert_eq!(
            eps,
            vec![
                "10.0.0.1:8080".parse().unwrap(),
                "10.0.0.2:8080".parse().unwrap()
            ]
        );
        let metrics = from_slices(&service(), &ServicePort::Number(9090), &[&slice]);
        assert_eq!(metrics.len(), 2);
        assert!(metrics.iter().all(|a| a.port() == 9091));
        assert!(from_slices(&service(), &ServicePort::Number(1), &[&slice]).is_empty());
    }

    #[test]
    fn pods_selected_ready_with_named_target_port() {
        let pods = [
            pod("a", "127.0.1.2", true, "slack"),
            pod("b", "127.0.1.3", false, "slack"),
            pod("c", "127.0.1.4", true, "line"),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            from_pods(&service(), &ServicePort::Name("http".into()), &refs),
            vec!["127.0.1.2:8080".parse().unwrap()]
        );
        assert_eq!(
            from_pods(&service(), &ServicePort::Number(9090), &refs),
            vec!["127.0.1.2:9091".parse().unwrap()]
        );
    }
}
