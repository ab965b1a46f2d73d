//! A 50 MiB agent attachment through the Slack connector, in a pod's
//! memory: the Slack simulator, the `slack` and `gcloudcx` connector
//! processes, real RabbitMQ and Redis, the Genesys simulator, and a file
//! server on 127.0.0.1 (the one loopback address the Slack connector may
//! fetch from, `UM_FETCH_ALLOW`) that generates the file's bytes as it
//! sends them.
//!
//! The connector's memory is judged by its process's peak resident set
//! (`VmHWM` in `/proc/<pid>/status`, the kernel's high-water mark) against
//! [`PEAK_RSS_LIMIT`], well under the 64 Mi a connector pod is given,
//! rather than by running it under a limit:
//!
//! - `prlimit --as` limits address space, not memory: a tokio process
//!   reserves far more than it touches (each thread's stack, glibc's 64 MiB
//!   malloc arena per thread; about 240 MiB of address space for some
//!   30 MiB resident, as this test prints), so a 64 MiB `RLIMIT_AS` stops
//!   the connector at start whatever it does with files;
//! - a memory cgroup, the pod's own limit, needs a delegated cgroup v2
//!   subtree (root or systemd), which a developer's machine or a CI
//!   container running the tests usually does not give.
//!
//! The resident set is what the pod's cgroup charges for the connector (it
//! writes no files): a connector holding the file whole, as it once did,
//! peaks at 50 MiB and more over its idle size; one streaming it stays at
//! its idle size plus a few buffers. Linux only (`/proc`), like the flow
//! tests' services.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde_json::Value;
use support::{PlatformBridge, eventually, services, unique};
use um_config::{MessagingConfig, Platform, Secret, SlackConfig};
use um_simulators::genesys::{GenesysSimulator, OutboundContent, OutboundMessageSpec};
use um_simulators::slack::{SlackOptions, SlackSimulator, Workspace};

const TEAM: &str = "T0ACME001";
const MIB: u64 = 1024 * 1024;
/// The Slack connector's default file cap (`UM_SLACK_MAX_FILE_BYTES`).
const LARGEST: u64 = 50 * MIB;
/// The peak resident set the Slack connector must stay under, while 50 MiB
/// go through it: a connector pod's limit is 64 Mi.
const PEAK_RSS_LIMIT: u64 = 48 * MIB;
/// Where the agents' files are served from: the fetch policy refuses a
/// loopback address unless `UM_FETCH_ALLOW` lists it.
const FILES_IP: &str = "127.0.0.1";
const FETCH_ALLOW: (&str, &str) = ("UM_FETCH_ALLOW", FILES_IP);
const WAIT: Duration = Duration::from_secs(20);
/// 50 MiB through debug builds on a busy 2-core machine.
const TRANSFER_WAIT: Duration = Duration::from_secs(180);
/// The generated files go in chunks of this size.
const CHUNK: u64 = 64 * 1024;

/// Pseudo-random bytes (xorshift), one chunk's worth, shared by all chunks.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    })
}

/// Chunk `index` of a generated file of `total` bytes: the pattern with
/// the chunk's number in front, so a lost, doubled or swapped chunk changes
/// the checksum.
fn chunk(index: u64, total: u64) -> Option<Bytes> {
    let start = index * CHUNK;
    let len = total
        .checked_sub(start)
        .filter(|left| *left > 0)?
        .min(CHUNK) as usize;
    let mut bytes = pattern()[..len].to_vec();
    let number = index.to_le_bytes();
    let front = number.len().min(len);
    bytes[..front].copy_from_slice(&number[..front]);
    Some(Bytes::from(bytes))
}

/// Hex SHA-256 of the generated file of `total` bytes.
fn generated_sha256(total: u64) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut index = 0;
    while let Some(bytes) = chunk(index, total) {
        hasher.update(&bytes);
        index += 1;
    }
    hex::encode(hasher.finalize())
}

/// Serves generated files, streamed: `/sized/{bytes}` with their
/// `Content-Length`, `/unsized/{bytes}` chunked, without one.
struct FileServer {
    base: String,
    /// Bytes handed to the HTTP server so far, all files together.
    served: Arc<AtomicU64>,
}

impl FileServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind((FILES_IP, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/sized/{total}",
                get(|State(served), Path(total)| async move { generated(served, total, true) }),
            )
            .route(
                "/unsized/{total}",
                get(|State(served), Path(total)| async move { generated(served, total, false) }),
            )
            .with_state(served.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            served,
        }
    }

    fn url(&self, kind: &str, total: u64) -> String {
        format!("{}/{kind}/{total}", self.base)
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

fn generated(served: Arc<AtomicU64>, total: u64, sized: bool) -> Response {
    let chunks = futures::stream::unfold(0u64, move |index| {
        let served = served.clone();
        async move {
            let bytes = chunk(index, total)?;
            served.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Some((Ok::<Bytes, Infallible>(bytes), index + 1))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if sized {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    response
}

/// A size in `/proc/<pid>/status` (`VmHWM`, `VmPeak`, ...), in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the Slack connector's /proc status (it still runs)");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kib * 1024
}

/// `VmHWM` of process `pid`: the peak of its resident set, in bytes.
fn peak_rss(pid: u32) -> u64 {
    proc_status(pid, "VmHWM")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// The Slack simulator and one Slack tenant's connectors.
struct LargeFileBridge {
    slack: SlackSimulator,
    bridge: PlatformBridge,
}

impl LargeFileBridge {
    async fn start(amqp: &str, redis: &str) -> Self {
        let signing_secret = uuid::Uuid::new_v4().simple().to_string();
        let bot_token = unique("xoxb-1-");
        let options = SlackOptions::new(&signing_secret)
            .with_workspace(Workspace::new(TEAM, "Acme HQ", &bot_token));
        let slack = SlackSimulator::start(options)
            .await
            .expect("Slack simulator");
        let bridge = PlatformBridge::start(
            amqp,
            redis,
            Platform::Slack,
            MessagingConfig::Slack(SlackConfig {
                signing_secret: Secret::new(signing_secret),
                bot_token: Secret::new(bot_token),
                app_id: Some(slack.options().app_id.clone()),
                client_id: None,
                client_secret: None,
                api_base_url: Some(slack.base_url()),
            }),
            &[FETCH_ALLOW],
        )
        .await;
        Self { slack, bridge }
    }

    fn genesys(&self) -> &GenesysSimulator {
        &self.bridge.genesys
    }

    fn connector_pid(&self) -> u32 {
        self.bridge
            .platform_connector
            .pid()
            .expect("the Slack connector runs")
    }

    /// Sends an agent message and waits for its receipt.
    async fn deliver(&self, spec: OutboundMessageSpec, wait: Duration) -> Value {
        let outcome = self
            .genesys()
            .send_agent_message(&self.bridge.integration_id, spec)
            .await
            .expect("webhook sent");
        assert_eq!(outcome.final_status(), Some(200));
        let id = outcome.message_id;
        let receipt = || {
            self.genesys()
                .receipts()
                .into_iter()
                .map(|record| record.body)
                .find(|body| body["id"] == id.as_str())
        };
        assert!(
            eventually(wait, || receipt().is_some()).await,
            "no receipt for {id} within {wait:?}"
        );
        receipt().expect("receipt")
    }
}

/// An agent's message with one file; `declared`: the size it declares.
fn agent_file(to: &str, url: &str, filename: &str, declared: Option<u64>) -> OutboundMessageSpec {
    let mut spec =
        OutboundMessageSpec::attachment(to, "File", url, "application/zip", Some(filename));
    if let Some(OutboundContent::Attachment {
        content_size_bytes, ..
    }) = spec.content.first_mut()
    {
        *content_size_bytes = declared;
    }
    spec
}

fn assert_failed_for_its_length(receipt: &Value, case: &str) {
    assert_eq!(receipt["status"], "Failed", "{case}: {receipt}");
    assert_eq!(
        receipt["reasons"][0]["code"], "InvalidMediaContentLength",
        "{case}: {receipt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_50_mib_attachment_is_streamed_to_slack_in_bounded_memory() {
    let Some((amqp, redis)) = services() else {
        return;
    };
    let flow = LargeFileBridge::start(&amqp, &redis).await;
    let files = FileServer::start().await;
    let channel = flow.slack.open_dm(TEAM, "U0ANN");
    let to = format!("{TEAM}:{channel}");
    let hi = flow.slack.message_event(TEAM, "U0ANN", &channel, "hi");
    let answered = flow
        .slack
        .send_event(&flow.bridge.webhook_url, &hi)
        .await
        .status();
    assert_eq!(answered, Some(200));
    assert!(
        eventually(WAIT, || !flow.genesys().inbound_messages().is_empty()).await,
        "the guest's message did not reach Genesys"
    );
    let pid = flow.connector_pid();
    let idle = peak_rss(pid);

    // The largest file allowed, announced by its Content-Length.
    let expected = generated_sha256(LARGEST);
    let started = Instant::now();
    let receipt = flow
        .deliver(
            agent_file(&to, &files.url("sized", LARGEST), "archive.zip", None),
            TRANSFER_WAIT,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(receipt["status"], "Delivered", "{receipt}");
    let uploaded = flow.slack.uploaded();
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    assert_eq!(uploaded[0].channel, channel);
    assert_eq!(uploaded[0].filename, "archive.zip");
    assert_eq!(uploaded[0].bytes_len as u64, LARGEST, "not whole");
    assert_eq!(uploaded[0].sha256, expected, "not the file's bytes");
    assert_eq!(files.served(), LARGEST, "fetched more than once");
    let peak = peak_rss(pid);
    eprintln!(
        "50 MiB attachment: delivered in {took:.1?}; Slack connector peak RSS {} (idle {}), \
         peak address space {}",
        mib(peak),
        mib(idle),
        mib(proc_status(pid, "VmPeak"))
    );
    assert!(
        peak < PEAK_RSS_LIMIT,
        "the Slack connector's resident set peaked at {} (idle {}) moving a 50 MiB file: \
         it holds the file instead of streaming it (limit {})",
        mib(peak),
        mib(idle),
        mib(PEAK_RSS_LIMIT)
    );

    // Over the cap by its Content-Length: refused before its body is read.
    let receipt = flow
        .deliver(
            agent_file(&to, &files.url("sized", LARGEST + 1), "big.zip", None),
            WAIT,
        )
        .await;
    assert_failed_for_its_length(&receipt, "over the cap");

    // Declares 1 MiB, then sends 60 MiB without a Content-Length: the
    // delivery fails at the first chunk past 1 MiB. The server has handed
    // out what the sockets' buffers took, no more.
    let before = files.served();
    let receipt = flow
        .deliver(
            agent_file(&to, &files.url("unsized", 60 * MIB), "liar.zip", Some(MIB)),
            TRANSFER_WAIT,
        )
        .await;
    assert_failed_for_its_length(&receipt, "longer than declared");
    let sent = files.served() - before;
    assert!(
        sent < 16 * MIB,
        "{} of a file declared as 1 MiB was read",
        mib(sent)
    );

    // Neither a Content-Length nor a declared size: Slack's upload needs
    // the length first, so the file is refused, not held to count it.
    let receipt = flow
        .deliver(
            agent_file(&to, &files.url("unsized", MIB), "unsized.zip", None),
            WAIT,
        )
        .await;
    assert_failed_for_its_length(&receipt, "no length");

    assert_eq!(
        flow.slack.uploaded().len(),
        1,
        "a refused file was uploaded anyway"
    );
    let peak = peak_rss(pid);
    assert!(
        peak < PEAK_RSS_LIMIT,
        "the Slack connector's resident set peaked at {} after the refused files",
        mib(peak)
    );
}
