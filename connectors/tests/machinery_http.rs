//! Outbound HTTP honours the configured proxy (and only it), and follows a
//! configuration change; 429 answers become retries with `Retry-After`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use um_config::ClusterSettings;
use um_connector::machinery::http_client::{HttpClients, classify_response};
use um_connector::platform::DeliveryError;

/// A loopback HTTP server that records the request line of everything it
/// gets and answers with `status` and `extra_headers`.
async fn recording_server(
    status: &'static str,
    extra_headers: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        // Bounded: a test needs a handful of requests.
        for _ in 0..16 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            record
                .lock()
                .unwrap()
                .push(head.lines().next().unwrap_or_default().to_owned());
            let body = "ok";
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    let (proxy, via_proxy) = recording_server("200 OK", "").await;
    let (target, direct) = recording_server("200 OK", "").await;
    let clients = HttpClients::new(&ClusterSettings {
        outbound_proxy: Some(proxy.clone()),
        default_commander_prefix: None,
    })
    .unwrap();
    let response = clients
        .client()
        .get(format!("{target}/bot/send"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        via_proxy.lock().unwrap().clone(),
        [format!("GET {target}/bot/send HTTP/1.1")],
        "absolute-form request to the proxy"
    );
    assert!(
        direct.lock().unwrap().is_empty(),
        "nothing bypassed the proxy"
    );

    // The setting is removed: the client follows.
    assert!(clients.update(&ClusterSettings::default()).unwrap());
    clients
        .client()
        .get(format!("{target}/direct"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.lock().unwrap().clone(), ["GET /direct HTTP/1.1"]);
    assert_eq!(via_proxy.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_becomes_a_timed_retry() {
    let (target, _) = recording_server("429 Too Many Requests", "retry-after: 7\r\n").await;
    let clients = HttpClients::new(&ClusterSettings::default()).unwrap();
    let response = clients
        .client()
        .post(format!("{target}/send"))
        .send()
        .await
        .unwrap();
    let outcome = classify_response(response.status(), response.headers(), "sendMessage");
    assert_eq!(
        outcome,
        Err(DeliveryError::Retry {
            after: Some(Duration::from_secs(7)),
            detail: "sendMessage: HTTP 429".into()
        })
    );
}

#[tokio::test]
async fn a_silent_server_times_out_instead_of_hanging() {
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // The shared client's own timeout is 30 s; here the same error path,
    // shortened: a timeout maps to a retry that names no URL.
    let error = client
        .get(format!("http://{addr}/file/bot123:SECRET/x"))
        .send()
        .await
        .unwrap_err();
    let outcome = um_connector::machinery::http_client::transport_error("getFile", &error);
    match outcome {
        DeliveryError::Retry { detail, .. } => {
            assert!(detail.contains("timeout"), "{detail}");
            assert!(!detail.contains("SECRET"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    hold.abort();
}
