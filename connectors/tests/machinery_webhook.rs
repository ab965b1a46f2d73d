//! The generic webhook, media and health routes over real HTTP, with a
//! platform of the tests' own behind the trait, a real broker and Redis.

mod machinery_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use machinery_common::dummy::{self, DummyPlatform};
use machinery_common::*;
use serde_json::{Value, json};
use um_config::ServiceConfig;
use um_connector::machinery::bus::Route;
use um_connector::machinery::envelope::Envelope;
use um_connector::machinery::runtime::Runtime;
use um_connector::machinery::service::{WebhookState, platform_routes};

const SECRET: &str = "channel-secret-of-acme";
const TENANT: &str = "shop.acme";

struct Harness {
    runtime: Runtime,
    platform: Arc<DummyPlatform>,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Harness {
    async fn start(ns: &str) -> Self {
        Self::start_with(ns, &amqp_url()).await
    }

    async fn start_with(ns: &str, amqp: &str) -> Self {
        let mut config = ServiceConfig::new("line");
        config
            .tenants
            .insert(TENANT.into(), dummy::tenant(TENANT, SECRET));
        config.tenants.insert(
            "shop.other".into(),
            dummy::tenant("shop.other", "other-secret"),
        );
        let runtime = runtime_with(ns, config, amqp).await;
        let platform = Arc::new(DummyPlatform::default());
        let routes = platform_routes(WebhookState::new(&runtime, platform.clone()));
        let (addr, _server) = runtime
            .server()
            .merge(routes)
            .serve(runtime.settings.listen, runtime.shutdown.clone())
            .await
            .expect("bind");
        Self {
            runtime,
            platform,
            addr,
            // No connection reuse: after an early 413 the server closes
            // the connection, and a pooled one would race with that.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, tenant: &str, body: &[u8], signature: Option<String>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(&format!("/line/{tenant}")))
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(dummy::SIGNATURE_HEADER, signature);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn queued(&self, ns: &str) -> Vec<Envelope> {
        let mut out = Vec::new();
        self.runtime.bus.declare(&Route::ToCx).await.unwrap();
        for shard in 0..2 {
            for message in drain(&self.runtime.bus, &Route::ToCx.shard_queue(ns, shard)).await {
                let headers = message.properties.headers().clone().unwrap_or_default();
                let envelope: Envelope = serde_json::from_slice(&message.data).unwrap();
                assert!(
                    matches!(headers.inner().get("x-um-tenant"), Some(lapin::types::AMQPValue::LongString(t)) if t.as_bytes() == envelope.tenant.as_bytes()),
                    "x-um-tenant header"
                );
                assert_eq!(message.properties.delivery_mode(), &Some(2), "persistent");
                out.push(envelope);
            }
        }
        out
    }
}

fn events(events: &[(&str, &str, &str)]) -> Vec<u8> {
    let list: Vec<Value> = events
        .iter()
        .map(|(id, conversation, text)| json!({"id": id, "conversation": conversation, "text": text}))
        .collect();
    serde_json::to_vec(&json!({ "events": list })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_right_status_and_a_json_body() {
    let ns = unique("t-web");
    let h = Harness::start(&ns).await;
    let body = events(&[("e1", "c1", "hello")]);

    let (status, json) = h
        .post("shop.nobody", &body, Some(dummy::sign(SECRET, &body)))
        .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("not_found")),
        "{json}"
    );

    let (status, json) = h.post(TENANT, &body, None).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized")),
        "{json}"
    );
    let (status, json) = h
        .post(TENANT, &body, Some(dummy::sign("wrong", &body)))
        .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized")),
        "{json}"
    );
    // Another tenant's secret does not authenticate this tenant.
    let (status, _) = h
        .post(TENANT, &body, Some(dummy::sign("other-secret", &body)))
        .await;
    assert_eq!(status, 401);
    assert!(!json.to_string().contains(SECRET), "no secret in an answer");

    let malformed = b"{\"events\": [{\"id\": 1}";
    let (status, json) = h
        .post(TENANT, malformed, Some(dummy::sign(SECRET, malformed)))
        .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("bad_request")),
        "{json}"
    );

    let large = vec![b' '; dummy::BODY_LIMIT + 1];
    let (status, json) = h
        .post(TENANT, &large, Some(dummy::sign(SECRET, &large)))
        .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (413, Some("payload_too_large")),
        "{json}"
    );
    // Without Content-Length (chunked), the limit holds all the same.
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..10)
        .map(|_| Ok(Bytes::from(vec![b' '; dummy::BODY_LIMIT / 4])))
        .collect();
    // A connection of its own: the server answers before reading the
    // whole body and then closes it.
    let response = reqwest::Client::new()
        .post(h.url(&format!("/line/{TENANT}")))
        .header(dummy::SIGNATURE_HEADER, "00")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);

    let (status, json) = h.post("../etc", &body, None).await;
    assert_eq!(status, 404, "{json}");

    // Nothing refused reached the bus.
    assert!(h.queued(&ns).await.is_empty());
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("reason=\"unauthorized\""), "{metrics}");
    assert!(
        metrics.contains("reason=\"payload_too_large\""),
        "{metrics}"
    );
    h.runtime.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_are_on_the_bus_once_even_when_redelivered() {
    let ns = unique("t-web");
    let h = Harness::start(&ns).await;
    let body = events(&[
        ("e1", "c1", "hello"),
        ("e2", "c1", "again"),
        ("e3", "c2", "other"),
    ]);
    let (status, json) = h
        .post(TENANT, &body, Some(dummy::sign(SECRET, &body)))
        .await;
    assert_eq!((status, &json), (200, &json!({"ok": true})));

    // The answer came after the confirms: the envelopes are already queued.
    let queued = h.queued(&ns).await;
    let mut texts: Vec<String> = queued.iter().map(text_of).collect();
    texts.sort();
    assert_eq!(texts, ["again", "hello", "other"]);
    let c1: Vec<String> = queued
        .iter()
        .filter(|e| e.conversation.id == "c1")
        .map(text_of)
        .collect();
    assert_eq!(c1, ["hello", "again"], "one conversation keeps its order");
    assert!(queued.iter().all(|e| e.tenant == TENANT));

    // The platform redelivers the same webhook, and one more event.
    let (status, _) = h
        .post(TENANT, &body, Some(dummy::sign(SECRET, &body)))
        .await;
    assert_eq!(status, 200);
    let more = events(&[("e1", "c1", "hello"), ("e4", "c1", "new")]);
    let (status, _) = h
        .post(TENANT, &more, Some(dummy::sign(SECRET, &more)))
        .await;
    assert_eq!(status, 200);
    let queued = h.queued(&ns).await;
    assert_eq!(
        queued.iter().map(text_of).collect::<Vec<_>>(),
        ["new"],
        "only the new event"
    );

    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("um_webhooks_duplicate_total"), "{metrics}");
    h.runtime.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_is_answered_after_verification() {
    let ns = unique("t-web");
    let h = Harness::start(&ns).await;
    let body = br#"{"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let (status, json) = h.post(TENANT, body, Some(dummy::sign(SECRET, body))).await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        Value::String("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into())
    );
    let (status, _) = h.post(TENANT, body, Some(dummy::sign("wrong", body))).await;
    assert_eq!(status, 401, "a handshake is verified like any request");
    h.runtime.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_broker_and_redis() {
    let ns = unique("t-web");
    let h = Harness::start(&ns).await;
    let live = h.http.get(h.url("/healthz/liveness")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let ready = h
        .http
        .get(h.url("/healthz/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let unknown = h.http.get(h.url("/nothing/here")).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "not_found");
    h.runtime.shutdown.cancel();

    // A broker nobody listens on: not ready, and says which dependency.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Harness::start_with(
        &unique("t-web"),
        &format!("amqp://guest:secretpw@127.0.0.1:{port}/%2f"),
    )
    .await;
    let ready = down
        .http
        .get(down.url("/healthz/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("broker"), "{body}");
    assert!(!body.contains("secretpw"), "{body}");
    // And a webhook cannot be accepted: 503 with Retry-After, not 200.
    let events = events(&[("e9", "c9", "lost?")]);
    let response = down
        .http
        .post(down.url(&format!("/line/{TENANT}")))
        .header(dummy::SIGNATURE_HEADER, dummy::sign(SECRET, &events))
        .body(events.clone())
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    down.runtime.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_media_urls_serve_until_they_expire_and_refuse_tampering() {
    let ns = unique("t-web");
    let h = Harness::start(&ns).await;
    h.platform.media.lock().unwrap().insert(
        "file/42".into(),
        ("image/png".into(), Bytes::from_static(b"\x89PNG-bytes")),
    );
    let tenant = h.runtime.config.tenant(TENANT).unwrap();
    let other = h.runtime.config.tenant("shop.other").unwrap();
    let local = |public: &str| {
        let path_and_query = public
            .strip_prefix("https://um.example.com")
            .expect("tenant webhook base");
        h.url(path_and_query)
    };

    let url = h.runtime.platform_context().media_url(&tenant, "file/42");
    assert!(!url.contains(SECRET));
    let response = h.http.get(local(&url)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(
        response.bytes().await.unwrap(),
        Bytes::from_static(b"\x89PNG-bytes")
    );

    let tampered = url.replace("file%2F42", "file%2F43");
    assert_eq!(
        h.http
            .get(local(&tampered))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let (base, _) = url.split_once("&sig=").unwrap();
    let bad_sig = format!("{base}&sig={}", "0".repeat(64));
    assert_eq!(
        h.http
            .get(local(&bad_sig))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let unsigned = url.split_once('?').unwrap().0;
    assert_eq!(
        h.http
            .get(local(unsigned))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // Signed for another tenant, presented under this one.
    let foreign = h
        .runtime
        .media
        .url(&other, "file/42")
        .replace("/line/shop.other/", &format!("/line/{TENANT}/"));
    assert_eq!(
        h.http
            .get(local(&foreign))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    let long_ago = chrono::Utc::now() - chrono::Duration::days(3);
    let expired = h.runtime.media.url_at(&tenant, "file/42", long_ago);
    let response = h.http.get(local(&expired)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 410);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "expired");

    let missing = h.runtime.media.url(&tenant, "file/none");
    assert_eq!(
        h.http
            .get(local(&missing))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    h.runtime.shutdown.cancel();
}
