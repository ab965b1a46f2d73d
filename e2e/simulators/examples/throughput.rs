//! Measures how many requests per second the simulators sustain on this
//! machine (inbound Genesys messages, Telegram webhook updates, Telegram
//! sendMessage). Run: `cargo run --release -p um-simulators --example throughput [N]`.

use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use um_simulators::genesys::{GenesysOptions, GenesysSimulator, OutboundMessageSpec};
use um_simulators::telegram::{Guest, TelegramOptions, TelegramSimulator, UpdateSpec};

const CONCURRENCY: usize = 64;
const BOT: &str = "1:throughput";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;

    let genesys = GenesysSimulator::start(
        GenesysOptions {
            rate_limit_per_minute: 0,
            ..Default::default()
        }
        .with_client("c", "s"),
    )
    .await?;
    let token: Value = http
        .post(format!("{}/oauth/token", genesys.base_url()))
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let bearer = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let integration: Value = http
        .post(format!(
            "{}/api/v2/conversations/messaging/integrations/open",
            genesys.base_url()
        ))
        .bearer_auth(&bearer)
        .json(
            &json!({"name": "t", "outboundNotificationWebhookUrl": "http://127.0.0.1:9/x",
                      "outboundNotificationWebhookSignatureSecretToken": "0123456789abcdefg"}),
        )
        .send()
        .await?
        .json()
        .await?;
    let url = format!(
        "{}/api/v2/conversations/messages/{}/inbound/open/message",
        genesys.base_url(),
        integration["id"].as_str().unwrap_or_default()
    );
    let started = Instant::now();
    let ok = futures::stream::iter(0..count)
        .map(|n| {
            let body = json!({"channel": {"from": {"id": format!("U{}", n % 100), "idType": "Opaque"},
                                          "time": "2024-05-02T09:31:22.733Z", "messageId": format!("m{n}")},
                              "text": format!("message {n}")});
            http.post(&url).bearer_auth(&bearer).json(&body).send()
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|result| futures::future::ready(result.as_ref().is_ok_and(|r| r.status() == StatusCode::OK)))
        .count()
        .await;
    report("genesys inbound messages", ok, count, started);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            Router::new().route("/hook", post(|| async { StatusCode::OK })),
        )
        .await;
    });

    let patched: Value = http
        .patch(format!(
            "{}/api/v2/conversations/messaging/integrations/open/{}",
            genesys.base_url(),
            integration["id"].as_str().unwrap_or_default()
        ))
        .bearer_auth(&bearer)
        .json(&json!({"name": "t", "outboundNotificationWebhookUrl": hook}))
        .send()
        .await?
        .json()
        .await?;
    let integration_id = patched["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let genesys_ref = &genesys;
    let integration_ref = integration_id.as_str();
    let ok = futures::stream::iter(0..count)
        .map(|n| async move {
            let spec =
                OutboundMessageSpec::text(format!("U{}", n % 100), format!("agent reply {n}"));
            genesys_ref.send_agent_message(integration_ref, spec).await
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|result| {
            futures::future::ready(result.as_ref().is_ok_and(|outcome| outcome.delivered))
        })
        .count()
        .await;
    report("genesys signed webhook posts", ok, count, started);
    let telegram = TelegramSimulator::start(TelegramOptions::default().with_bot(BOT)).await?;
    http.post(format!("{}/bot{BOT}/setWebhook", telegram.base_url()))
        .json(&json!({"url": hook, "max_connections": 40}))
        .send()
        .await?;
    let started = Instant::now();
    let telegram_ref = &telegram;
    let ok = futures::stream::iter(0..count)
        .map(|n| async move {
            let guest = Guest::new(1000 + (n % 100) as i64, "Guest");
            telegram_ref
                .send_update(BOT, UpdateSpec::text(&guest, format!("update {n}")))
                .await
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|result| futures::future::ready(result.as_ref().is_ok_and(|d| d.delivered)))
        .count()
        .await;
    report("telegram webhook updates", ok, count, started);

    let send = format!("{}/bot{BOT}/sendMessage", telegram.base_url());
    let started = Instant::now();
    let ok = futures::stream::iter(0..count)
        .map(|n| {
            http.post(&send)
                .json(&json!({"chat_id": 1000 + (n % 100), "text": format!("reply {n}")}))
                .send()
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|result| {
            futures::future::ready(result.as_ref().is_ok_and(|r| r.status() == StatusCode::OK))
        })
        .count()
        .await;
    report("telegram sendMessage", ok, count, started);
    Ok(())
}

fn report(what: &str, ok: usize, count: usize, started: Instant) {
    let elapsed = started.elapsed();
    println!(
        "{what}: {ok}/{count} ok in {:.2?} ({:.0}/s)",
        elapsed,
        ok as f64 / elapsed.as_secs_f64()
    );
}
