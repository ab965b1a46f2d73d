//! The add-friend QR code of a LINE tenant, through the `line` connector
//! process (real RabbitMQ and Redis) against the LINE simulator:
//! `GET /line/{tenant}/friend-link`, `/qr.svg` and `/qr.png`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Connector, eventually, free_port, services, unique};
use um_config::{LineConfig, MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_connector::platforms::line::qr::{render_png, render_svg};
use um_simulators::line::{ChannelSpec, LineOptions, LineSimulator};

const WAIT: Duration = Duration::from_secs(15);

fn channel_id() -> String {
    format!(
        "{}",
        1_800_000_000u64 + uuid::Uuid::new_v4().as_u128() as u64 % 100_000_000
    )
}

/// A basic id of LINE's shape (`@` + 3 digits + 5 letters), distinct per run.
fn basic_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    let letters: String = (0..5)
        .map(|i| (b'a' + ((n >> (8 * i)) % 26) as u8) as char)
        .collect();
    format!("@{:03}{letters}", (n >> 64) % 1000)
}

fn line_tenant(
    key: &str,
    port: u16,
    line: &LineSimulator,
    channel_id: &str,
    channel_secret: &str,
    access_token: Option<&str>,
) -> TenantConfig {
    TenantConfig::new(
        key.to_owned(),
        "QR",
        Platform::Line,
        format!("http://127.0.0.1:{port}/line/{key}"),
    )
    .with_messaging(MessagingConfig::Line(LineConfig {
        channel_id: Some(channel_id.to_owned()),
        channel_secret: Secret::new(channel_secret),
        channel_access_token: access_token.map(Secret::new),
        switcher: None,
        api_base_url: Some(line.base_url()),
    }))
}

fn with_token(
    key: &str,
    port: u16,
    line: &LineSimulator,
    channel: &ChannelSpec,
    token: &str,
) -> TenantConfig {
    line_tenant(
        key,
        port,
        line,
        &channel.channel_id,
        &channel.channel_secret,
        Some(token),
    )
}

fn bot_info_calls(line: &LineSimulator, status: u16) -> usize {
    line.calls()
        .iter()
        .filter(|c| c.path == "/v2/bot/info" && c.status == status)
        .count()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Reads the QR code of a PNG back, as a phone camera would.
fn decode_png(bytes: &[u8]) -> Vec<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut buffer).expect("a PNG frame");
    let width = frame.width as usize;
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(width, frame.height as usize, |x, y| {
            buffer[y * width + x]
        });
    prepared
        .detect_grids()
        .into_iter()
        .map(|grid| grid.decode().expect("the QR code decodes").1)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_friend_qr_code_link_cache_refusal_and_reload() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let good = ChannelSpec {
        basic_id: basic_id(),
        ..ChannelSpec::new(channel_id(), unique("secret-"))
    }
    .with_access_token(unique("token-"));
    let issued = ChannelSpec {
        basic_id: basic_id(),
        ..ChannelSpec::new(channel_id(), unique("secret-"))
    };
    let line = LineSimulator::start(
        LineOptions::default()
            .with_channel(good.clone())
            .with_channel(issued.clone()),
    )
    .await
    .expect("LINE simulator");

    let port = free_port();
    let good_key = format!("qr.{}", unique("g"));
    let refused_key = format!("qr.{}", unique("r"));
    let issued_key = format!("qr.{}", unique("i"));
    let good_token = good.access_token.clone().expect("token");
    let wrong_token = unique("wrong-token-");
    let mut config = ServiceConfig::new("line");
    config.tenants.insert(
        good_key.clone(),
        with_token(&good_key, port, &line, &good, &good_token),
    );
    config.tenants.insert(
        refused_key.clone(),
        with_token(&refused_key, port, &line, &good, &wrong_token),
    );
    config.tenants.insert(
        issued_key.clone(),
        line_tenant(
            &issued_key,
            port,
            &line,
            &issued.channel_id,
            &issued.channel_secret,
            None,
        ),
    );
    let namespace = unique("umt-");
    let connector = Connector::start(
        "line",
        &config,
        port,
        &amqp,
        &redis,
        &[("UM_BUS_NAMESPACE", namespace.as_str())],
    )
    .await;
    // The connector has seen both working tenants (it sets their webhook
    // endpoints after dropping any cached bot info).
    assert!(
        eventually(WAIT, || line.webhook_url(&good.channel_id).is_some()
            && line.webhook_url(&issued.channel_id).is_some())
        .await,
        "the webhook endpoints were not set"
    );
    let base = connector.base_url();

    // The link: basic id from LINE, URL with %40, QR code under the webhook URL.
    let response = get(&format!("{base}/line/{good_key}/friend-link")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
    let link: Value = response.json().await.expect("friend-link JSON");
    let expected_url = format!(
        "https://line.me/R/ti/p/%40{}",
        good.basic_id.trim_start_matches('@')
    );
    assert_eq!(link["basicId"], good.basic_id.as_str());
    assert_eq!(link["displayName"], "UM Simulator");
    assert_eq!(link["url"], expected_url.as_str());
    assert_eq!(
        link["qrCode"],
        format!("http://127.0.0.1:{port}/line/{good_key}/qr.svg").as_str()
    );

    // Following the link's qrCode gives the SVG of exactly that URL (the
    // unit tests decode render_svg's output back to its text).
    let svg = get(link["qrCode"].as_str().expect("qrCode")).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(header(&svg, "content-type"), "image/svg+xml");
    assert_eq!(header(&svg, "cache-control"), "public, max-age=3600");
    assert_eq!(header(&svg, "x-content-type-options"), "nosniff");
    let svg = svg.text().await.expect("SVG text");
    assert_eq!(svg, render_svg(&expected_url).expect("rendered"));

    let png = get(link["qrCodePng"].as_str().expect("qrCodePng")).await;
    assert_eq!(png.status(), 200);
    assert_eq!(header(&png, "content-type"), "image/png");
    let png = png.bytes().await.expect("PNG bytes");
    assert_eq!(decode_png(&png), vec![expected_url.clone()]);
    assert_eq!(png.as_ref(), render_png(&expected_url).expect("rendered"));

    // Three answers, one question to LINE: the bot info is cached.
    assert_eq!(bot_info_calls(&line, 200), 1, "{:#?}", line.calls());

    // LINE refuses the token: 502 naming the cause, never the token.
    let refused_before = bot_info_calls(&line, 401);
    for path in ["qr.svg", "qr.png", "friend-link"] {
        let response = get(&format!("{base}/line/{refused_key}/{path}")).await;
        assert_eq!(response.status(), 502, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-store", "{path}");
        let body = response.text().await.expect("error body");
        assert!(!body.contains(&wrong_token), "the token leaked: {body}");
        let error: Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(error["error"], "line_refused", "{body}");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains("HTTP 401"), "{message}");
        assert!(message.contains(&refused_key), "{message}");
        assert!(message.contains("channel access token"), "{message}");
    }
    // A refusal is not cached: each request asked LINE again.
    assert_eq!(bot_info_calls(&line, 401) - refused_before, 3);

    // Unknown tenant: 404 JSON, nothing asked.
    let calls_before = line.calls().len();
    let response = get(&format!("{base}/line/qr.nobody/qr.svg")).await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("JSON error");
    assert_eq!(error["error"], "not_found");
    assert_eq!(line.calls().len(), calls_before);

    // An issued token LINE no longer accepts (cached in Redis, revoked):
    // forgotten, issued again, and the link still answers.
    let store = um_connector::machinery::store::Store::connect(&redis, "line")
        .await
        .expect("Redis")
        .in_namespace(&namespace);
    store
        .set(
            &issued_key,
            "line-token",
            &issued.channel_id,
            "revoked-token",
            Duration::from_secs(600),
        )
        .await
        .expect("stale token seeded");
    let issues_before = line
        .calls()
        .iter()
        .filter(|c| c.path == "/v2/oauth/accessToken")
        .count();
    let refused_before = bot_info_calls(&line, 401);
    let response = get(&format!("{base}/line/{issued_key}/friend-link")).await;
    assert_eq!(response.status(), 200);
    let link: Value = response.json().await.expect("friend-link JSON");
    assert_eq!(link["basicId"], issued.basic_id.as_str());
    assert_eq!(bot_info_calls(&line, 401) - refused_before, 1);
    assert_eq!(
        line.calls()
            .iter()
            .filter(|c| c.path == "/v2/oauth/accessToken")
            .count()
            - issues_before,
        1,
        "a new token was issued once"
    );

    // The tenant moves to another channel: the cached bot info goes with
    // the old configuration, and the QR code names the new account.
    let moved = ChannelSpec {
        basic_id: basic_id(),
        ..ChannelSpec::new(channel_id(), unique("secret-"))
    }
    .with_access_token(unique("token-"));
    line.add_channel(moved.clone());
    config.tenants.insert(
        good_key.clone(),
        with_token(
            &good_key,
            port,
            &line,
            &moved,
            moved.access_token.as_deref().expect("token"),
        ),
    );
    connector.rewrite_config(&config);
    let deadline = Instant::now() + WAIT;
    let moved_url = format!(
        "https://line.me/R/ti/p/%40{}",
        moved.basic_id.trim_start_matches('@')
    );
    loop {
        let png = get(&format!("{base}/line/{good_key}/qr.png")).await;
        assert_eq!(png.status(), 200);
        let texts = decode_png(&png.bytes().await.expect("PNG bytes"));
        if texts == vec![moved_url.clone()] {
            break;
        }
        assert_eq!(texts, vec![expected_url.clone()], "neither old nor new");
        assert!(
            Instant::now() < deadline,
            "the QR code still names the old account after the reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
