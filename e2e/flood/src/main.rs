//! `cargo run --release -p um-flood -- --messages 10000`
//!
//! Sends N guest messages through the Telegram simulator's webhook path,
//! concurrently, into the release-built `telegram` and `gcloudcx`
//! connectors (child processes) and on to the Genesys simulator, over a
//! real RabbitMQ (persistent messages, publisher confirms) and Redis.
//! Prints throughput, latency percentiles (webhook sent → arrival at the
//! Genesys simulator), each connector's peak RSS (`VmHWM`) and the CPU time
//! of every process taking part (connectors, this driver with the
//! simulators, the broker, Redis): on shared cores the sum is what bounds
//! the rate. The run's queues are removed at the end.
//!
//! RabbitMQ and Redis come from `UM_TEST_AMQP_URL` / `UM_TEST_REDIS_URL`;
//! without them `e2e/services.sh` starts a pair for the run.

use um_flood::{bridge, cleanup, report, servers, services};

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use um_simulators::genesys::GenesysRecordKind;
use um_simulators::telegram::UpdateSpec;

#[derive(Debug, Parser)]
#[command(about = "Flood the bridge with guest messages and measure it")]
struct Args {
    /// Guest messages to send.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Distinct guests (conversations) they come from.
    #[arg(long, default_value_t = 1_000)]
    guests: usize,
    /// Webhook requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// The `um-connector` binary (default: built with `cargo build --release`).
    #[arg(long)]
    connector_bin: Option<std::path::PathBuf>,
    /// Give up waiting for arrivals after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Also measure the broker alone (confirmed persistent publishes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    yardstick: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.messages == 0 || args.guests == 0 || args.concurrency == 0 {
        bail!("--messages, --guests and --concurrency must be positive");
    }
    let binary = match &args.connector_bin {
        Some(path) => path.clone(),
        None => services::build_connector().context("building um-connector --release")?,
    };
    let services = services::Services::from_env_or_start().context("RabbitMQ and Redis")?;
    let bridge = bridge::FloodBridge::start(&binary, &services.amqp, &services.redis)
        .await
        .context("simulators and connectors")?;

    let guests: Vec<_> = (0..args.guests)
        .map(|i| bridge.guest(10_000 + i as i64))
        .collect();
    // Warm-up: one message end to end (OAuth token, connections, queues).
    bridge
        .telegram
        .send_update(&bridge.bot_token, UpdateSpec::text(&guests[0], "warm-up"))
        .await
        .context("warm-up update")?;
    if !bridge
        .genesys
        .wait_for(
            GenesysRecordKind::InboundMessage,
            1,
            Duration::from_secs(30),
        )
        .await
    {
        bail!("the warm-up message did not arrive at the Genesys simulator");
    }
    let already = bridge.genesys.count(GenesysRecordKind::InboundMessage);
    // Telegram sends no more than this many updates at once, whatever
    // --concurrency asks.
    let max_connections = bridge
        .telegram
        .webhook_info(&bridge.bot_token)
        .and_then(|info| info["max_connections"].as_u64());
    let servers = [
        servers::Server::find("RabbitMQ", &services.amqp),
        servers::Server::find("Redis", &services.redis),
    ];

    let total = args.messages;
    let arrivals = {
        let genesys = bridge.genesys_handle();
        let timeout = Duration::from_secs(args.timeout_secs);
        tokio::spawn(async move { report::watch_arrivals(genesys, already, total, timeout).await })
    };
    let started = Instant::now();
    let sent_at: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..total).map(|_| std::sync::OnceLock::new()).collect());
    let statuses = futures::stream::iter(0..total)
        .map(|n| {
            let bridge = &bridge;
            let guest = &guests[n % guests.len()];
            let sent_at = sent_at.clone();
            async move {
                let _ = sent_at[n].set(Instant::now());
                let spec = UpdateSpec::text(guest, format!("flood {n}"));
                bridge
                    .telegram
                    .send_update(&bridge.bot_token, spec)
                    .await
                    .map(|delivery| delivery.status())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    let sending_took = started.elapsed();
    let refused = statuses
        .iter()
        .filter(|status| !matches!(status, Ok(Some(200))))
        .count();

    let arrivals = arrivals.await.context("arrival watcher")?;
    let bodies = bridge.genesys.inbound_messages();
    let latencies = report::latencies(&bodies[already..], &arrivals, &sent_at);
    let rss = bridge.resources();
    let driver_cpu = bridge::cpu_time_of("/proc/self/stat");
    let server_cpu = servers
        .iter()
        .map(|server| (server.name, server.cpu_used()))
        .collect();
    let yardstick = if args.yardstick {
        Some(report::broker_yardstick(&services.amqp, total.min(10_000)).await)
    } else {
        None
    };
    report::print(&report::Figures {
        messages: total,
        guests: args.guests,
        concurrency: args.concurrency,
        max_connections,
        refused,
        sending_took,
        arrived: arrivals.len(),
        all_arrived_after: arrivals.last().map(|last| last.duration_since(started)),
        latencies,
        rss,
        driver_cpu,
        server_cpu,
        yardstick,
    });
    let bus_namespace = bridge.bus_namespace.clone();
    bridge.stop().await;
    cleanup::remove_run(&services.amqp, &bus_namespace).await;
    services.stop();
    if arrivals.len() < total {
        bail!("only {} of {total} messages arrived", arrivals.len());
    }
    Ok(())
}
