//! `cargo run --release -p um-flood --bin um-faults`
//!
//! The fault suite: for each of seven faults, on a fresh pair of
//! connectors (child processes) over a real RabbitMQ and Redis started for
//! the run, every conversation sends its messages in both directions while
//! the fault is injected; then it prints what was sent, accepted,
//! delivered, lost, duplicated, out of order and dead-lettered, how long
//! the backlog took to drain after recovery, and each connector's peak RSS.
//! `--short` is the version .ci/run runs (fewer messages, outages of
//! seconds); `--check` fails unless the targets hold (no loss, no
//! reordering, no dead letter in scenarios 1-5 and 7, no duplicate but
//! where a connector was SIGKILLed).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use um_flood::faults::{self, Fault, Size};
use um_flood::services;

#[derive(Debug, Parser)]
#[command(about = "Inject faults under traffic in both directions and count what was lost")]
struct Args {
    /// Messages per scenario (both directions together).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Conversations they are spread over.
    #[arg(long, default_value_t = 1_000)]
    conversations: usize,
    /// The CI version: 1,000 messages over 100 conversations, outages of 8 s.
    #[arg(long)]
    short: bool,
    /// Only these scenarios (1-7), e.g. `--scenarios 1,6`.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<usize>,
    /// Exit non-zero unless the targets hold.
    #[arg(long)]
    check: bool,
    /// The `um-connector` binary (default: built with `cargo build --release`).
    #[arg(long)]
    connector_bin: Option<std::path::PathBuf>,
}

/// The outages: Genesys 10 min, 429 for 2 min, credentials 10 min,
/// configuration lag 60 s.
fn full_outage(fault: Fault) -> Duration {
    match fault {
        Fault::GenesysDown | Fault::CredentialsRevoked => Duration::from_secs(600),
        Fault::PlatformRateLimited => Duration::from_secs(120),
        Fault::TenantUnknown => Duration::from_secs(60),
        _ => Duration::ZERO,
    }
}

fn short_outage(fault: Fault) -> Duration {
    match fault {
        Fault::BrokerRestart | Fault::RedisRestart | Fault::ConnectorKills => Duration::ZERO,
        _ => Duration::from_secs(8),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = if args.short {
        Size {
            messages: 1_000,
            conversations: 100,
            outage: short_outage,
            drain_timeout: Duration::from_secs(180),
        }
    } else {
        Size {
            messages: args.messages,
            conversations: args.conversations,
            outage: full_outage,
            drain_timeout: Duration::from_secs(900),
        }
    };
    if size.messages == 0 || size.conversations == 0 {
        bail!("--messages and --conversations must be positive");
    }
    let chosen: Vec<Fault> = if args.scenarios.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|n| {
                Fault::ALL
                    .get(n.wrapping_sub(1))
                    .copied()
                    .with_context(|| format!("no scenario {n} (1-7)"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let binary = match &args.connector_bin {
        Some(path) => path.clone(),
        None => services::build_connector().context("building um-connector --release")?,
    };
    let services = services::Services::start().context("RabbitMQ and Redis")?;
    let mut reports = Vec::new();
    let mut failure = None;
    for fault in chosen {
        eprintln!("scenario {}: {}", fault.number(), fault.describe());
        match faults::run_scenario(&binary, &services, fault, &size).await {
            Ok(report) => reports.push(report),
            Err(error) => {
                failure = Some(error.context(format!("scenario {}", fault.number())));
                break;
            }
        }
    }
    println!(
        "um-faults: {} messages over {} conversations per scenario, both directions, 2 tenants",
        size.messages, size.conversations
    );
    faults::print(&reports);
    services.stop();
    if let Some(error) = failure {
        return Err(error);
    }
    if args.check {
        let misses: Vec<String> = reports
            .iter()
            .flat_map(|r| {
                r.misses()
                    .into_iter()
                    .map(move |m| format!("scenario {}: {m}", r.fault.number()))
            })
            .collect();
        if !misses.is_empty() {
            bail!("targets missed: {}", misses.join("; "));
        }
    }
    Ok(())
}
