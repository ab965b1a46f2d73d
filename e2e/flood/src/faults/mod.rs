//! The fault suite (`um-faults`): traffic in both directions while one
//! fault at a time is injected, and what became of every message.

pub mod rig;
pub mod traffic;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::join_all;
use um_connector::machinery::bus::dead_letters::DeadLetters;
use um_connector::machinery::bus::{Bus, BusSettings};
use um_simulators::genesys::GenesysRecordKind;
use um_simulators::telegram::{TelegramRecordKind, UpdateSpec};

use self::rig::Rig;
use self::traffic::{Arrivals, Arrived, Direction, Ledger, Outcome};
use crate::services::Services;

/// One fault at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 1. Genesys answers 503, then recovers.
    GenesysDown,
    /// 2. The platform API answers 429 with its retry hint.
    PlatformRateLimited,
    /// 3. The broker is restarted mid-stream.
    BrokerRestart,
    /// 4. Redis is restarted mid-stream.
    RedisRestart,
    /// 5. Both connectors are SIGKILLed and restarted, twice.
    ConnectorKills,
    /// 6. One Tenant's Genesys credentials are revoked while the other floods.
    CredentialsRevoked,
    /// 7. One Tenant is unknown to gcloudcx (configuration lag).
    TenantUnknown,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::GenesysDown,
        Fault::PlatformRateLimited,
        Fault::BrokerRestart,
        Fault::RedisRestart,
        Fault::ConnectorKills,
        Fault::CredentialsRevoked,
        Fault::TenantUnknown,
    ];

    pub fn number(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0) + 1
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fault::GenesysDown => "Genesys answers 503",
            Fault::PlatformRateLimited => "Telegram answers 429 + retry_after",
            Fault::BrokerRestart => "RabbitMQ restarted",
            Fault::RedisRestart => "Redis restarted",
            Fault::ConnectorKills => "connectors SIGKILLed twice",
            Fault::CredentialsRevoked => "tenant A's credentials revoked",
            Fault::TenantUnknown => "tenant A unknown to gcloudcx",
        }
    }
}

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Size {
    pub messages: usize,
    pub conversations: usize,
    /// How long each timed outage lasts (scenarios 1, 2, 6, 7).
    pub outage: fn(Fault) -> Duration,
    /// Longest wait for the last accepted message after recovery.
    pub drain_timeout: Duration,
}

/// The figures of one scenario.
#[derive(Debug, Clone)]
pub struct Report {
    pub fault: Fault,
    pub outage: Duration,
    pub sent: usize,
    pub inbound: Outcome,
    pub outbound: Outcome,
    pub dead_lettered: usize,
    pub drain_after_recovery: Option<Duration>,
    /// (service, peak RSS KiB).
    pub rss: Vec<(&'static str, u64)>,
    /// Scenario 6: the other Tenant's p99 latency, unloaded and during.
    pub other_tenant_p99: Option<(Duration, Duration)>,
}

impl Report {
    pub fn lost(&self) -> usize {
        self.inbound.lost + self.outbound.lost
    }

    pub fn out_of_order(&self) -> usize {
        self.inbound.out_of_order + self.outbound.out_of_order
    }

    pub fn duplicated(&self) -> usize {
        self.inbound.duplicated + self.outbound.duplicated
    }

    /// Where it misses the targets, if it does.
    pub fn misses(&self) -> Vec<String> {
        let mut misses = Vec::new();
        if self.lost() > 0 {
            misses.push(format!("{} lost", self.lost()));
        }
        if self.out_of_order() > 0 {
            misses.push(format!("{} out of order", self.out_of_order()));
        }
        // Only a SIGKILL between the far side's accept and our done marker
        // can deliver twice.
        if self.fault != Fault::ConnectorKills && self.duplicated() > 0 {
            misses.push(format!("{} duplicated", self.duplicated()));
        }
        if self.fault != Fault::CredentialsRevoked && self.dead_lettered > 0 {
            misses.push(format!("{} dead-lettered", self.dead_lettered));
        }
        misses
    }
}

fn percentile(values: &mut [Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(index).copied()
}

/// Guest → agent first message of every conversation, so each has a
/// Genesys conversation the agent can answer in; returns the Genesys id
/// of each conversation's guest.
async fn warm_up(rig: &Rig, conversations: usize) -> anyhow::Result<Vec<String>> {
    let tenants = rig.tenants.len();
    let sends = (0..conversations).map(|n| {
        let tenant = &rig.tenants[traffic::tenant_of(n, tenants)];
        let guest = rig.guest(traffic::guest_id(n));
        let telegram = rig.telegram.clone();
        let token = tenant.bot_token.clone();
        async move {
            telegram
                .send_update(&token, UpdateSpec::text(&guest, format!("w:{n}")))
                .await
                .is_ok_and(|d| d.delivered)
        }
    });
    let accepted = join_all(sends).await.into_iter().filter(|a| *a).count();
    if accepted < conversations {
        bail!("warm-up: only {accepted} of {conversations} first messages accepted");
    }
    if !rig
        .genesys
        .wait_for(
            GenesysRecordKind::InboundMessage,
            conversations,
            Duration::from_secs(120),
        )
        .await
    {
        bail!("warm-up: the first messages did not all reach Genesys within 120 s");
    }
    let mut ids = vec![String::new(); conversations];
    for record in rig.genesys.inbound_messages() {
        let Some(n) = record.body["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("w:"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if let (Some(slot), Some(id)) = (
            ids.get_mut(n),
            record.body["channel"]["from"]["id"].as_str(),
        ) {
            *slot = id.to_owned();
        }
    }
    if ids.iter().any(String::is_empty) {
        bail!("warm-up: a conversation's guest id is missing from Genesys' records");
    }
    Ok(ids)
}

/// Sends messages `seqs` of every conversation of the Tenants in
/// `tenants`.
fn drive(
    rig: &Rig,
    guest_ids: &[String],
    seqs: std::ops::Range<usize>,
    tenants: &[usize],
    ledger: &Arc<Ledger>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let count = rig.tenants.len();
    (0..guest_ids.len())
        .filter(|n| tenants.contains(&traffic::tenant_of(*n, count)))
        .map(|n| {
            let tenant = &rig.tenants[traffic::tenant_of(n, count)];
            tokio::spawn(traffic::converse(
                traffic::Conversation {
                    genesys: rig.genesys.clone(),
                    telegram: rig.telegram.clone(),
                    bot_token: tenant.bot_token.clone(),
                    integration_id: tenant.integration_id.clone(),
                    guest: rig.guest(traffic::guest_id(n)),
                    genesys_guest_id: guest_ids[n].clone(),
                    number: n,
                },
                seqs.clone(),
                ledger.clone(),
            ))
        })
        .collect()
}

/// Every inbound and outbound message text recorded, with its arrival.
fn arrived(rig: &Rig, inbound: &[Instant], outbound: &[Instant]) -> (Arrived, Arrived) {
    let ins = rig
        .genesys
        .inbound_messages()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r.body["text"].as_str().unwrap_or_default().to_owned(),
                inbound.get(i).copied(),
            )
        })
        .collect();
    let outs = rig
        .telegram
        .sent_messages()
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m.message["text"].as_str().unwrap_or_default().to_owned(),
                outbound.get(i).copied(),
            )
        })
        .collect();
    (ins, outs)
}

async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// Waits until `ledger` accepted `target` messages (a fault's trigger).
async fn accepted_at_least(ledger: &Ledger, target: usize, timeout: Duration) {
    let _ = wait_until(Instant::now() + timeout, || {
        ledger.accepted.load(Ordering::Relaxed) >= target
    })
    .await;
}

async fn dead_letters(amqp: &str, namespace: &str) -> usize {
    let bus = Bus::new(
        BusSettings {
            url: amqp.to_owned(),
            shards: rig::BUS_SHARDS,
            connection_name: "um-faults".into(),
            namespace: namespace.to_owned(),
        },
        um_connector::machinery::metrics::Metrics::new("faults"),
    );
    let count = DeadLetters::new(bus.clone())
        .list()
        .await
        .map(|l| l.len())
        .unwrap_or(usize::MAX);
    bus.close().await;
    count
}

/// Runs one scenario on a rig of its own and reports it.
pub async fn run_scenario(
    binary: &std::path::Path,
    services: &Services,
    fault: Fault,
    size: &Size,
) -> anyhow::Result<Report> {
    let mut rig = Rig::start(binary, &services.amqp, &services.redis, 2)
        .await
        .context("starting the rig")?;
    let guest_ids = warm_up(&rig, size.conversations).await?;
    let per_conversation = size.messages.div_ceil(size.conversations);
    let outage = (size.outage)(fault);
    let (both, failing, other) = ([0usize, 1], [0usize], [1usize]);
    let first = 0..per_conversation;
    let second = per_conversation..2 * per_conversation;

    // Scenario 6: the other Tenant floods alone first, for its unloaded
    // latency.
    let unloaded_p99 = if fault == Fault::CredentialsRevoked {
        let ledger = Arc::new(Ledger::default());
        let arrivals = Arrivals::watch(&rig);
        for task in drive(&rig, &guest_ids, first.clone(), &other, &ledger) {
            let _ = task.await;
        }
        let accepted = ledger.accepted_of(Direction::In);
        let _ = wait_until(Instant::now() + size.drain_timeout, || {
            rig.genesys.count(GenesysRecordKind::InboundMessage) >= size.conversations + accepted
        })
        .await;
        let (ins, outs) = arrivals.stop().await;
        let (inbound, _) = arrived(&rig, &ins, &outs);
        let mut result = traffic::outcome(&ledger, Direction::In, &inbound, 2);
        result
            .latencies
            .get_mut(&1)
            .and_then(|l| percentile(l, 0.99))
    } else {
        None
    };
    rig.genesys.clear_records();
    rig.telegram.clear_records();

    let ledger = Arc::new(Ledger::default());
    let arrivals = Arrivals::watch(&rig);
    let total = per_conversation * size.conversations;
    let start_outage = |rig: &Rig| match fault {
        Fault::GenesysDown => {
            rig.genesys
                .fail_next("/api/v2/conversations/messages", 503, u32::MAX)
        }
        Fault::PlatformRateLimited => rig.telegram.inject_rate_limit(None, u32::MAX, 10),
        Fault::CredentialsRevoked => rig.genesys.remove_oauth_client(&rig.tenants[0].client_id),
        Fault::TenantUnknown => {
            let _ = rig.write_config("gcloudcx", &[false, true]);
        }
        _ => {}
    };
    let timed = matches!(
        fault,
        Fault::GenesysDown
            | Fault::PlatformRateLimited
            | Fault::CredentialsRevoked
            | Fault::TenantUnknown
    );
    if timed {
        start_outage(&rig);
    }
    let outage_started = Instant::now();
    let mut senders = if fault == Fault::CredentialsRevoked {
        // The failing Tenant's conversations wait first; then the other
        // floods again, with its next messages.
        let waiting = drive(&rig, &guest_ids, first.clone(), &failing, &ledger);
        for task in waiting {
            let _ = task.await;
        }
        drive(&rig, &guest_ids, second.clone(), &other, &ledger)
    } else {
        drive(&rig, &guest_ids, first.clone(), &both, &ledger)
    };
    match fault {
        Fault::GenesysDown
        | Fault::PlatformRateLimited
        | Fault::CredentialsRevoked
        | Fault::TenantUnknown => {
            if fault == Fault::CredentialsRevoked {
                // The other Tenant's flood is measured while the outage lasts.
                for task in senders.drain(..) {
                    let _ = task.await;
                }
            }
            tokio::time::sleep(outage.saturating_sub(outage_started.elapsed())).await;
            match fault {
                Fault::GenesysDown => rig.genesys.clear_faults(),
                Fault::PlatformRateLimited => rig.telegram.clear_injected_errors(),
                Fault::CredentialsRevoked => {
                    let tenant = rig.tenants[0].clone();
                    rig.genesys
                        .add_oauth_client(&tenant.client_id, rig.tenant_secret(0));
                }
                _ => rig.write_config("gcloudcx", &[true, true])?,
            }
        }
        Fault::BrokerRestart | Fault::RedisRestart => {
            accepted_at_least(&ledger, total / 3, size.drain_timeout).await;
            let command = if fault == Fault::BrokerRestart {
                "restart-broker"
            } else {
                "restart-redis"
            };
            services.control(command)?;
        }
        Fault::ConnectorKills => {
            for share in [1, 2] {
                accepted_at_least(&ledger, total * share / 3, size.drain_timeout).await;
                for service in rig::SERVICES {
                    rig.kill_and_restart(service).await?;
                }
            }
        }
    }
    let recovered = Instant::now();
    for sender in senders {
        let _ = sender.await;
    }
    let sent = ledger.sent.load(Ordering::Relaxed);
    let (want_in, want_out) = (
        ledger.accepted_of(Direction::In),
        ledger.accepted_of(Direction::Out),
    );
    let _ = wait_until(recovered + size.drain_timeout, || {
        rig.genesys.count(GenesysRecordKind::InboundMessage) >= want_in
            && rig.telegram.count(TelegramRecordKind::Sent) >= want_out
    })
    .await;
    let (ins, outs) = arrivals.stop().await;
    let (inbound, outbound) = arrived(&rig, &ins, &outs);
    let inbound = traffic::outcome(&ledger, Direction::In, &inbound, 2);
    let outbound = traffic::outcome(&ledger, Direction::Out, &outbound, 2);
    let last = [inbound.last_arrival, outbound.last_arrival]
        .into_iter()
        .flatten()
        .max();
    let drain_after_recovery = last.map(|l| l.saturating_duration_since(recovered));
    let other_tenant_p99 = unloaded_p99.zip(
        inbound
            .latencies
            .get(&1)
            .cloned()
            .and_then(|mut l| percentile(&mut l, 0.99)),
    );
    let dead_lettered = dead_letters(&services.amqp, &rig.bus_namespace).await;
    let rss = rig
        .resources()
        .into_iter()
        .map(|(s, rss, _)| (s, rss))
        .collect();
    let namespace = rig.bus_namespace.clone();
    rig.stop().await;
    crate::cleanup::remove_run(&services.amqp, &namespace).await;
    Ok(Report {
        fault,
        outage: if timed { outage } else { Duration::ZERO },
        sent,
        inbound,
        outbound,
        dead_lettered,
        drain_after_recovery,
        rss,
        other_tenant_p99,
    })
}

fn millis(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".to_owned())
}

/// The table of every scenario run.
pub fn print(reports: &[Report]) {
    println!(
        "{:<3} {:<36} {:>7} {:>6} {:>9} {:>9} {:>5} {:>10} {:>6} {:>5} {:>10} {:>10} {:>10}",
        "#",
        "fault",
        "outage",
        "sent",
        "accepted",
        "delivered",
        "lost",
        "dup in/out",
        "order",
        "dead",
        "drain",
        "rss tg",
        "rss cx"
    );
    for r in reports {
        let rss = |service: &str| {
            r.rss
                .iter()
                .find(|(s, _)| *s == service)
                .map(|(_, kib)| format!("{:.1} MiB", *kib as f64 / 1024.0))
                .unwrap_or_else(|| "-".to_owned())
        };
        println!(
            "{:<3} {:<36} {:>7} {:>6} {:>9} {:>9} {:>5} {:>10} {:>6} {:>5} {:>10} {:>10} {:>10}",
            r.fault.number(),
            r.fault.describe(),
            if r.outage.is_zero() {
                "-".to_owned()
            } else {
                format!("{} s", r.outage.as_secs())
            },
            r.sent,
            r.inbound.accepted + r.outbound.accepted,
            r.inbound.delivered + r.outbound.delivered,
            r.lost(),
            format!("{}/{}", r.inbound.duplicated, r.outbound.duplicated),
            r.out_of_order(),
            r.dead_lettered,
            millis(r.drain_after_recovery),
            rss("telegram"),
            rss("gcloudcx"),
        );
        if let Some((unloaded, during)) = r.other_tenant_p99 {
            println!(
                "    tenant B p99 guest → Genesys: unloaded {:.0} ms, while A's credentials were revoked {:.0} ms ({:.2}×)",
                unloaded.as_secs_f64() * 1e3,
                during.as_secs_f64() * 1e3,
                during.as_secs_f64() / unloaded.as_secs_f64().max(1e-9)
            );
        }
    }
}
