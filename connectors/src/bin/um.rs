//! `um`: day-2 commands for an installation. Also a kubectl plugin: link
//! or copy it as `kubectl-um` on the PATH and run `kubectl um dlq ls`.
//!
//! It talks to the installation's broker; from outside the cluster, forward
//! its port first (see the README, "Dead letters").

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use um_connector::machinery::bus::dead_letters::{DeadLetterEntry, DeadLetters, Selection};
use um_connector::machinery::bus::{Bus, BusSettings, DEFAULT_NAMESPACE};
use um_connector::machinery::metrics::Metrics;

#[derive(Parser)]
#[command(
    name = "um",
    version,
    about = "Day-2 commands for a Universal Messaging installation"
)]
struct Cli {
    /// The installation's broker (with its credentials).
    #[arg(long, env = "UM_AMQP_URL", hide_env_values = true)]
    broker_url: String,
    /// The installation's bus namespace: its Helm release name.
    #[arg(long, env = "UM_BUS_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    instance: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dead letters: messages given up after their retry budget, or
    /// undecodable.
    #[command(subcommand)]
    Dlq(Dlq),
}

#[derive(Subcommand)]
enum Dlq {
    /// Lists every dead letter, oldest first per route.
    Ls {
        /// Only this Tenant's (`<namespace>.<name>`).
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one dead letter with its envelope.
    Show { id: String },
    /// Publishes dead letters to their routes again, in the order they died.
    Replay(Select),
    /// Deletes dead letters.
    Purge(Select),
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Select {
    /// Message ids.
    ids: Vec<String>,
    /// Every dead letter of this Tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

impl Select {
    fn selection(self) -> Selection {
        match (self.all, self.tenant) {
            (true, _) => Selection::All,
            (false, Some(tenant)) => Selection::Tenant(tenant),
            (false, None) => Selection::Ids(self.ids),
        }
    }
}

fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

fn table(entries: &[DeadLetterEntry]) {
    println!(
        "{:<20} {:<36} {:<24} {:>8} {:<20} {:<20} LAST ERROR",
        "ROUTE", "ID", "TENANT", "ATTEMPTS", "REASON", "DEAD AT"
    );
    for e in entries {
        println!(
            "{:<20} {:<36} {:<24} {:>8} {:<20} {:<20} {}",
            e.route,
            e.message_id,
            e.tenant,
            e.attempts,
            e.reason,
            when(e.dead_at_ms),
            shorten(&e.last_error, 80)
        );
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let bus = Bus::new(
        BusSettings {
            url: cli.broker_url,
            shards: 1,
            connection_name: "um dlq".to_owned(),
            namespace: cli.instance,
        },
        Metrics::new("um-cli"),
    );
    let letters = DeadLetters::new(bus.clone());
    let result = match cli.command {
        Command::Dlq(Dlq::Ls { tenant, json }) => {
            let entries: Vec<DeadLetterEntry> = letters
                .list()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|e| tenant.as_ref().is_none_or(|t| e.tenant == *t))
                .map(|e| DeadLetterEntry {
                    envelope: None,
                    ..e
                })
                .collect();
            if json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e).map_err(|e| e.to_string())?);
                }
            } else {
                table(&entries);
            }
            Ok(())
        }
        Command::Dlq(Dlq::Show { id }) => {
            let entries = letters.list().await.map_err(|e| e.to_string())?;
            match entries.into_iter().find(|e| e.message_id == id) {
                Some(e) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?
                    );
                    Ok(())
                }
                None => Err(format!("no dead letter {id}")),
            }
        }
        Command::Dlq(Dlq::Replay(select)) => {
            let replayed = letters
                .replay(&select.selection())
                .await
                .map_err(|e| e.to_string())?;
            for e in &replayed {
                println!("replayed {} ({}, {})", e.message_id, e.route, e.tenant);
            }
            println!("{} replayed", replayed.len());
            Ok(())
        }
        Command::Dlq(Dlq::Purge(select)) => {
            let purged = letters
                .purge(&select.selection())
                .await
                .map_err(|e| e.to_string())?;
            for e in &purged {
                println!("purged {} ({}, {})", e.message_id, e.route, e.tenant);
            }
            println!("{} purged", purged.len());
            Ok(())
        }
    };
    bus.close().await;
    result
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("um: {error}");
            ExitCode::FAILURE
        }
    }
}
