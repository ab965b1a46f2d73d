//! A small ingress controller: watches Ingresses, Services, EndpointSlices
//! and Pods, and reverse-proxies HTTP to a ready endpoint of the chosen
//! Service port, round-robin. Requests pass unchanged (method, path, query,
//! headers, body bytes); X-Forwarded-* are added as ingress-nginx does.

pub mod backends;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use routes::{Route, routes_of, select, serves};

struct ProxyState {
    ingresses: Store<Ingress>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
    class: Option<String>,
    next: Mutex<HashMap<String, usize>>,
    client: reqwest::Client,
}

/// Hop-by-hop headers a proxy does not forward (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let named_in_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named_in_connection.iter().any(|c| c == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

impl ProxyState {
    fn new(
        ingresses: Store<Ingress>,
        services: Store<Service>,
        slices: Store<EndpointSlice>,
        pods: Store<Pod>,
        class: Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(ProxyState {
            ingresses,
            services,
            slices,
            pods,
            class,
            next: Mutex::new(HashMap::new()),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    fn routes(&self) -> Vec<Route> {
        self.ingresses
            .state()
            .iter()
            .filter(|i| serves(i, self.class.as_deref()))
            .flat_map(|i| routes_of(i))
            .collect()
    }

    fn endpoints(&self, route: &Route) -> Vec<SocketAddr> {
        let b = &route.backend;
        let Some(service) = self
            .services
            .get(&ObjectRef::new(&b.service).within(&b.namespace))
        else {
            return Vec::new();
        };
        let slices: Vec<Arc<EndpointSlice>> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| {
                s.meta().namespace.as_deref() == Some(b.namespace.as_str())
                    && s.meta()
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        == Some(&b.service)
            })
            .collect();
        let slice_refs: Vec<&EndpointSlice> = slices.iter().map(|s| s.as_ref()).collect();
        let from_slices = backends::from_slices(&service, &b.port, &slice_refs);
        if !from_slices.is_empty() {
            return from_slices;
        }
        let pods = self.pods.state();
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        backends::from_pods(&service, &b.port, &pod_refs)
    }

    fn pick(&self, route: &Route, endpoints: &[SocketAddr]) -> SocketAddr {
        let key = format!(
            "{}/{}/{:?}",
            route.backend.namespace, route.backend.service, route.backend.port
        );
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let n = next.entry(key).or_insert(0);
        let chosen = endpoints[*n % endpoints.len()];
        *n = n.wrapping_add(1);
        chosen
    }
}

async fn proxy(
    State(state): State<Arc<ProxyState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let routes = state.routes();
    let Some(route) = select(&routes, &host, &path) else {
        debug!(%host, %path, "no ingress route");
        return text(
            StatusCode::NOT_FOUND,
            "404 no ingress rule matches this host and path\n",
        );
    };
    let endpoints = state.endpoints(route);
    if endpoints.is_empty() {
        warn!(%host, %path, service = %route.backend.service, "no ready endpoint");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 no ready endpoint for the backend service\n",
        );
    }
    let target = state.pick(route, &endpoints);
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let url = format!("http://{target}{path_and_query}");

    let (parts, body) = req.into_parts();
    // A request without a body stays without one (no chunked empty body).
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let mut headers = forwardable(&parts.headers);
    let peer_ip = peer.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {peer_ip}"),
        None => peer_ip.clone(),
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-real-ip", peer_ip),
        ("x-forwarded-host", host.clone()),
        ("x-forwarded-proto", "http".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let mut upstream = state
        .client
        .request(parts.method.clone(), &url)
        .headers(headers);
    if has_body {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream = upstream.send().await;
    match upstream {
        Ok(resp) => {
            let status = resp.status();
            let headers = forwardable(resp.headers());
            let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            info!(method = %parts.method, %host, %path, %target, status = status.as_u16(), "proxied");
            out
        }
        Err(e) => {
            // Without the URL: a query string may carry a token.
            warn!(%target, %path, error = %e.without_url(), "upstream request failed");
            text(StatusCode::BAD_GATEWAY, "502 the backend did not answer\n")
        }
    }
}

fn spawn_reflector<K>(client: &Client, stop: &CancellationToken) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => warn!(kind = %K::kind(&()), error = %e, "watch error"),
                    None => return,
                }
            }
        }
    });
    store
}

/// Serves until `stop` is cancelled.
pub async fn serve(
    client: Client,
    listen: SocketAddr,
    class: Option<String>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(ProxyState::new(
        spawn_reflector(&client, &stop),
        spawn_reflector(&client, &stop),
        spawn_reflector(&client, &stop),
        spawn_reflector(&client, &stop),
        class,
    )?);
    for ready in [
        state.ingresses.wait_until_ready().await,
        state.services.wait_until_ready().await,
        state.slices.wait_until_ready().await,
        state.pods.wait_until_ready().await,
    ] {
        ready.map_err(|e| anyhow::anyhow!("initial list failed: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {listen}: {e}"))?;
    info!(listen = %listener.local_addr()?, "ingress proxy listening");
    serve_on(listener, state, stop).await
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<ProxyState>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(proxy).with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_of<K>(objects: Vec<serde_json::Value>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
    {
        let (reader, mut writer) = reflector::store::<K>();
        for o in objects {
            let obj: K = serde_json::from_value(o).unwrap();
            writer.apply_watcher_event(&watcher::Event::Apply(obj));
        }
        reader
    }

    /// An upstream that answers with what it received.
    async fn echo_upstream() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(|req: Request| async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let headers: serde_json::Map<String, serde_json::Value> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "headers": headers,
                "body": body.to_vec(),
            }))
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    async fn proxy_with(pod_ready: bool, upstream_port: u16) -> (String, CancellationToken) {
        let ingress = json!({
            "metadata": { "name": "um", "namespace": "ns" },
            "spec": { "rules": [{ "http": { "paths": [
                { "path": "/line", "pathType": "Prefix",
                  "backend": { "service": { "name": "line", "port": { "name": "http" } } } }
            ]}}]}
        });
        let service = json!({
            "metadata": { "name": "line", "namespace": "ns" },
            "spec": { "selector": { "app": "line" },
                      "ports": [{ "name": "http", "port": 80, "targetPort": upstream_port }] }
        });
        let pod = json!({
            "metadata": { "name": "line-1", "namespace": "ns", "labels": { "app": "line" } },
            "spec": { "containers": [{ "name": "c" }] },
            "status": { "podIP": "127.0.0.1",
                        "conditions": [{ "type": "Ready", "status": if pod_ready { "True" } else { "False" } }] }
        });
        let state = Arc::new(
            ProxyState::new(
                store_of(vec![ingress]),
                store_of(vec![service]),
                store_of(vec![]),
                store_of(vec![pod]),
                None,
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(serve_on(listener, state, stop.clone()));
        (url, stop)
    }

    #[tokio::test]
    async fn forwards_requests_unchanged_and_answers_404_and_503() {
        let upstream = echo_upstream().await;
        let (url, stop) = proxy_with(true, upstream).await;
        let client = reqwest::Client::new();
        let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let resp = client
            .post(format!("{url}/line/um.t1?a=1&b=%2F"))
            .header("x-line-signature", "c2ln")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echoed: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["uri"], "/line/um.t1?a=1&b=%2F");
        assert_eq!(echoed["headers"]["x-line-signature"], "c2ln");
        assert_eq!(echoed["headers"]["content-type"], "application/json");
        assert_eq!(echoed["headers"]["x-forwarded-for"], "127.0.0.1");
        let got: Vec<u8> = serde_json::from_value(echoed["body"].clone()).unwrap();
        assert_eq!(got, body, "body bytes unchanged");

        let get = client.get(format!("{url}/line")).send().await.unwrap();
        let get: serde_json::Value = serde_json::from_slice(&get.bytes().await.unwrap()).unwrap();
        assert!(
            get["headers"].get("transfer-encoding").is_none(),
            "no body invented: {get}"
        );

        let missing = client.get(format!("{url}/slack/x")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        stop.cancel();

        let (url, stop) = proxy_with(false, upstream).await;
        let unready = client.get(format!("{url}/line")).send().await.unwrap();
        assert_eq!(unready.status(), 503, "no ready endpoint");
        stop.cancel();
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-line-signature", HeaderValue::from_static("abc="));
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        let f = forwardable(&h);
        assert!(f.get("connection").is_none());
        assert!(f.get("x-private").is_none());
        assert!(f.get("transfer-encoding").is_none());
        assert_eq!(f.get("x-line-signature").unwrap(), "abc=");
        assert_eq!(f.get_all("x-multi").iter().count(), 2);
    }
}
