//! The traffic of a scenario and what became of it: every conversation
//! sends its messages one after the other (the next only once the previous
//! was accepted, which is what defines their order), guest → agent through
//! the Telegram webhook and agent → guest through the Genesys webhook; the
//! arrivals at the other side are stamped as the simulators record them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use um_simulators::genesys::{GenesysRecordKind, GenesysSimulator, OutboundMessageSpec};
use um_simulators::telegram::{TelegramRecordKind, TelegramSimulator, UpdateSpec};

use super::rig::Rig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Guest → agent (Telegram webhook → Genesys inbound API).
    In,
    /// Agent → guest (Genesys webhook → Telegram Bot API).
    Out,
}

/// `m:<conversation>:<in|out>:<seq>`: every message says where it belongs.
pub fn text(conversation: usize, direction: Direction, seq: usize) -> String {
    let dir = match direction {
        Direction::In => "in",
        Direction::Out => "out",
    };
    format!("m:{conversation}:{dir}:{seq}")
}

fn parse(text: &str) -> Option<(usize, Direction, usize)> {
    let mut parts = text.strip_prefix("m:")?.split(':');
    let conversation = parts.next()?.parse().ok()?;
    let direction = match parts.next()? {
        "in" => Direction::In,
        "out" => Direction::Out,
        _ => return None,
    };
    let seq = parts.next()?.parse().ok()?;
    Some((conversation, direction, seq))
}

/// The guest of conversation `n` (Telegram user and chat id).
pub fn guest_id(n: usize) -> i64 {
    20_000 + n as i64
}

/// Which Tenant conversation `n` belongs to.
pub fn tenant_of(n: usize, tenants: usize) -> usize {
    n % tenants
}

/// What was sent and accepted.
#[derive(Default)]
pub struct Ledger {
    pub sent: AtomicUsize,
    pub accepted: AtomicUsize,
    sent_at: Mutex<HashMap<String, Instant>>,
    accepted_texts: Mutex<HashSet<String>>,
}

impl Ledger {
    fn send(&self, text: &str) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.sent_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(text.to_owned(), Instant::now());
    }

    fn accept(&self, text: &str) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.accepted_texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(text.to_owned());
    }

    pub fn accepted_of(&self, direction: Direction) -> usize {
        self.accepted_texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|t| parse(t).is_some_and(|(_, d, _)| d == direction))
            .count()
    }
}

/// One conversation of the run: who talks in it, and where.
pub struct Conversation {
    pub genesys: Arc<GenesysSimulator>,
    pub telegram: Arc<TelegramSimulator>,
    pub bot_token: String,
    pub integration_id: String,
    pub guest: um_simulators::telegram::Guest,
    /// The guest's id as Genesys knows it (from the warm-up message).
    pub genesys_guest_id: String,
    pub number: usize,
}

/// Texts in the order they arrived, with the instant each was stamped.
pub type Arrived = Vec<(String, Option<Instant>)>;

/// One conversation's messages `seqs`: even ones from the guest, odd ones
/// from the agent.
pub async fn converse(talk: Conversation, seqs: std::ops::Range<usize>, ledger: Arc<Ledger>) {
    let Conversation {
        genesys,
        telegram,
        bot_token,
        integration_id,
        guest,
        genesys_guest_id,
        number: conversation,
    } = talk;
    for seq in seqs {
        let direction = if seq % 2 == 0 {
            Direction::In
        } else {
            Direction::Out
        };
        let text = text(conversation, direction, seq);
        ledger.send(&text);
        let accepted = match direction {
            Direction::In => telegram
                .send_update(&bot_token, UpdateSpec::text(&guest, text.clone()))
                .await
                .is_ok_and(|delivery| delivery.delivered),
            Direction::Out => genesys
                .send_agent_message(
                    &integration_id,
                    OutboundMessageSpec::text(genesys_guest_id.clone(), text.clone()),
                )
                .await
                .is_ok_and(|outcome| outcome.delivered),
        };
        if accepted {
            ledger.accept(&text);
        } else {
            // The platform gave up on it: so does its conversation, or the
            // next would overtake it.
            return;
        }
    }
}

/// Stamps the instant each record lands, until `stop`.
pub struct Arrivals {
    pub inbound: Arc<Mutex<Vec<Instant>>>,
    pub outbound: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Arrivals {
    pub fn watch(rig: &Rig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let inbound = Arc::new(Mutex::new(Vec::new()));
        let outbound = Arc::new(Mutex::new(Vec::new()));
        let genesys = rig.genesys.clone();
        let (stamps, halt) = (inbound.clone(), stop.clone());
        let in_task = tokio::spawn(async move {
            stamp(
                &halt,
                &stamps,
                |n| {
                    let genesys = genesys.clone();
                    async move {
                        genesys
                            .wait_for(
                                GenesysRecordKind::InboundMessage,
                                n,
                                Duration::from_millis(200),
                            )
                            .await
                    }
                },
                || rig_count_in(&genesys),
            )
            .await
        });
        let telegram = rig.telegram.clone();
        let (stamps, halt) = (outbound.clone(), stop.clone());
        let out_task = tokio::spawn(async move {
            stamp(
                &halt,
                &stamps,
                |n| {
                    let telegram = telegram.clone();
                    async move {
                        telegram
                            .wait_for(TelegramRecordKind::Sent, n, Duration::from_millis(200))
                            .await
                    }
                },
                || telegram.count(TelegramRecordKind::Sent),
            )
            .await
        });
        Self {
            inbound,
            outbound,
            stop,
            tasks: vec![in_task, out_task],
        }
    }

    pub async fn stop(self) -> (Vec<Instant>, Vec<Instant>) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
        let take =
            |v: &Arc<Mutex<Vec<Instant>>>| v.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (take(&self.inbound), take(&self.outbound))
    }
}

fn rig_count_in(genesys: &GenesysSimulator) -> usize {
    genesys.count(GenesysRecordKind::InboundMessage)
}

async fn stamp<F, Fut>(
    stop: &AtomicBool,
    stamps: &Mutex<Vec<Instant>>,
    wait_for: F,
    count: impl Fn() -> usize,
) where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !stop.load(Ordering::SeqCst) {
        let seen = stamps.lock().unwrap_or_else(|e| e.into_inner()).len();
        if wait_for(seen + 1).await {
            let now = Instant::now();
            let landed = count();
            let mut stamps = stamps.lock().unwrap_or_else(|e| e.into_inner());
            // Several may have landed at once: they share this instant.
            while stamps.len() < landed {
                stamps.push(now);
            }
        }
    }
}

/// What became of one direction's messages.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub accepted: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub out_of_order: usize,
    /// The last accepted message's arrival.
    pub last_arrival: Option<Instant>,
    /// Webhook sent → arrival, per Tenant.
    pub latencies: HashMap<usize, Vec<Duration>>,
}

/// Compares what arrived (texts in arrival order, with their instants)
/// with what was accepted.
pub fn outcome(
    ledger: &Ledger,
    direction: Direction,
    arrived: &[(String, Option<Instant>)],
    tenants: usize,
) -> Outcome {
    let accepted = ledger
        .accepted_texts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let sent_at = ledger
        .sent_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut highest: HashMap<usize, usize> = HashMap::new();
    let mut result = Outcome {
        accepted: accepted
            .iter()
            .filter(|t| parse(t).is_some_and(|(_, d, _)| d == direction))
            .count(),
        ..Outcome::default()
    };
    for (text, at) in arrived {
        let Some((conversation, dir, seq)) = parse(text) else {
            continue;
        };
        if dir != direction {
            continue;
        }
        let count = seen.entry(text.as_str()).or_default();
        *count += 1;
        if *count > 1 {
            result.duplicated += 1;
            continue;
        }
        let top = highest.entry(conversation).or_insert(seq);
        if seq < *top {
            result.out_of_order += 1;
        } else {
            *top = seq;
        }
        if accepted.contains(text) {
            result.delivered += 1;
            if let Some(at) = at {
                result.last_arrival = Some(result.last_arrival.map_or(*at, |l| l.max(*at)));
                if let Some(sent) = sent_at.get(text) {
                    result
                        .latencies
                        .entry(tenant_of(conversation, tenants))
                        .or_default()
                        .push(at.saturating_duration_since(*sent));
                }
            }
        }
    }
    result.lost = result.accepted.saturating_sub(result.delivered);
    result
}
