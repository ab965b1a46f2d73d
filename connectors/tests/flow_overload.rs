//! A flood of large unauthenticated posts costs a connector little memory
//! and does not take it down: 64 posts of 1 MiB at once, without the
//! Telegram secret, against a connector that handles 8 requests at once
//! (`UM_MAX_INFLIGHT_REQUESTS=8`) and takes Telegram bodies up to 256 KiB.
//! Every post is refused (413 over the body limit, or 503 with
//! `Retry-After` when 8 are in flight already), none is accepted, the
//! connector answers its health checks afterwards, its request slots are
//! all free again, and its peak resident memory grows by a bounded amount.
//!
//! The connector runs as its own process, so its memory is its own: the
//! test reads the peak resident set (`VmHWM` in `/proc/<pid>/status`)
//! before and after the flood.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Connector, eventually, free_port, services, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use um_config::{MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_simulators::telegram::{Guest, TelegramOptions, TelegramSimulator, UpdateSpec};

const POSTS: usize = 64;
const BODY: usize = 1024 * 1024;
const MAX_INFLIGHT: usize = 8;
/// Posts that announce their size: refused from the headers alone.
const DECLARED: usize = 16;
/// Pace of the posts without `Content-Length`: 16 KiB every 20 ms, so one
/// reaches Telegram's 256 KiB limit after about a third of a second and
/// holds its request slot that long, while the others arrive.
const CHUNK: usize = 16 * 1024;
const CHUNK_PAUSE: Duration = Duration::from_millis(20);
/// Allowed growth of the connector's peak resident set. What the flood may
/// hold by design: 8 bodies of at most 256 KiB (2 MiB) plus the buffers of
/// 64 connections; measured: about 4 MiB. Without the in-flight limit 64
/// bodies of 256 KiB are read at once (measured: about 20 MiB), and
/// without both bounds 64 bodies of 1 MiB would be read whole.
const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// What a raw HTTP/1.1 post got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// Posts `BODY` bytes without authentication, over a raw connection so the
/// answer is read even when the server answers early and closes while the
/// body is still being sent. `declared`: with `Content-Length`, all at once;
/// otherwise chunked, at `CHUNK_PAUSE` per chunk.
async fn unsigned_post(port: u16, path: String, declared: bool) -> Answer {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        let length = if declared {
            format!("Content-Length: {BODY}\r\n")
        } else {
            "Transfer-Encoding: chunked\r\n".to_owned()
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{length}\r\n"
        );
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; CHUNK];
        for _ in 0..BODY / CHUNK {
            let written = if declared {
                writer.write_all(&chunk).await
            } else {
                let mut framed = format!("{CHUNK:x}\r\n").into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                tokio::time::sleep(CHUNK_PAUSE).await;
                writer.write_all(&framed).await
            };
            // Refused and closed: stop sending.
            if written.is_err() {
                return;
            }
        }
        if !declared {
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let answer = loop {
        if let Some(answer) = parse_answer(&received) {
            break answer;
        }
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                break parse_answer(&received).unwrap_or_else(|| {
                    panic!(
                        "connection closed without a complete answer: {:?}",
                        String::from_utf8_lossy(&received)
                    )
                });
            }
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    };
    sending.abort();
    answer
}

/// A complete response (head and `Content-Length` body) in `bytes`.
fn parse_answer(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut retry_after = None;
    let mut length = 0usize;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "retry-after" => retry_after = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    (rest.len() >= length).then(|| Answer {
        status,
        retry_after,
        body: rest[..length].to_owned(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_large_unsigned_posts_is_refused_within_bounded_memory() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let bot_token = format!("4242:{}", unique("AAF"));
    let telegram = TelegramSimulator::start(TelegramOptions::default().with_bot(bot_token.clone()))
        .await
        .expect("Telegram simulator");
    let tenant_key = format!("flow.{}", unique("t"));
    let port = free_port();
    let path = format!("/telegram/{tenant_key}");
    let mut config = ServiceConfig::new("telegram");
    config.tenants.insert(
        tenant_key.clone(),
        TenantConfig::new(
            tenant_key.clone(),
            "Flood",
            Platform::Telegram,
            format!("http://127.0.0.1:{port}{path}"),
        )
        .with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
            bot_token: Secret::new(bot_token.clone()),
            webhook_secret_token: None,
            api_base_url: Some(telegram.base_url()),
        })),
    );
    let namespace = unique("umt-");
    let max_inflight = MAX_INFLIGHT.to_string();
    let connector = Connector::start(
        "telegram",
        &config,
        port,
        &amqp,
        &redis,
        &[
            ("UM_BUS_NAMESPACE", namespace.as_str()),
            ("UM_MAX_INFLIGHT_REQUESTS", max_inflight.as_str()),
        ],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(15), || telegram
            .webhook_url(&bot_token)
            .is_some())
        .await,
        "setWebhook was not called"
    );
    let pid = connector.pid().expect("connector pid");
    let (peak_before, rss_before) = memory_kib(pid);

    let started = Instant::now();
    let posts = (0..POSTS).map(|i| tokio::spawn(unsigned_post(port, path.clone(), i < DECLARED)));
    let answers: Vec<Answer> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(|joined| joined.expect("post task"))
        .collect();
    let flood_took = started.elapsed();
    let (peak_after, rss_after) = memory_kib(pid);

    let count = |status: u16| answers.iter().filter(|a| a.status == status).count();
    let (too_large, overloaded) = (count(413), count(503));
    eprintln!(
        "{POSTS} posts of {BODY} bytes in {flood_took:?}: 413 x {too_large}, 503 x {overloaded}; \
         connector VmHWM {peak_before} -> {peak_after} KiB (+{} KiB), VmRSS {rss_before} -> {rss_after} KiB",
        peak_after - peak_before
    );
    for answer in &answers {
        assert!(
            matches!(answer.status, 401 | 413 | 503),
            "an unsigned post got {answer:?}"
        );
        if answer.status == 503 {
            let error: serde_json::Value =
                serde_json::from_str(&answer.body).expect("JSON error body");
            assert_eq!(error["error"], "overloaded", "{answer:?}");
            assert_eq!(answer.retry_after.as_deref(), Some("2"), "{answer:?}");
        }
    }
    // Only 8 requests run at once, and the slow posts each hold one for a
    // third of a second: most of the 48 slow posts find no free slot.
    assert!(
        overloaded >= 8,
        "only {overloaded} of {POSTS} posts were refused as overloaded: is the in-flight limit applied?"
    );
    // The posts that did get a slot were cut off at the body limit.
    assert!(
        too_large >= 1,
        "no post was refused as too large: {answers:?}"
    );
    assert!(
        peak_after - peak_before < RSS_GROWTH_BOUND_KIB,
        "the connector's peak resident set grew by {} KiB during the flood (bound {RSS_GROWTH_BOUND_KIB} KiB)",
        peak_after - peak_before
    );

    // Alive and ready.
    let client = reqwest::Client::new();
    for probe in ["/healthz/liveness", "/healthz/readiness"] {
        let status = client
            .get(format!("{}{probe}", connector.base_url()))
            .send()
            .await
            .expect("health probe")
            .status();
        assert_eq!(status, 200, "{probe} after the flood");
    }
    // Every request slot is free again: more small unsigned posts than
    // slots, one after the other, are all refused for their signature, not
    // for want of a slot.
    let forged = json!({"update_id": 1, "message": {"message_id": 1, "date": 1_800_000_000,
        "chat": {"id": 1, "type": "private"}, "text": "forged"}});
    for _ in 0..2 * MAX_INFLIGHT {
        let status = client
            .post(format!("{}{path}", connector.base_url()))
            .json(&forged)
            .send()
            .await
            .expect("small unsigned post")
            .status();
        assert_eq!(status, 401);
    }
    // And a genuine update is taken.
    let guest = Guest::new(77, "Ann");
    telegram.add_chat(&guest);
    let genuine = telegram
        .send_update(&bot_token, UpdateSpec::text(&guest, "after the flood"))
        .await
        .expect("update sent");
    assert_eq!(genuine.status(), Some(200));
}
