//! Measuring arrivals, the broker yardstick, and the printed figures.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use um_simulators::genesys::{GenesysRecordKind, GenesysSimulator, InboundRecord};

/// The instant each of the next `total` inbound messages arrived at the
/// Genesys simulator (woken by the simulator, not polled).
pub async fn watch_arrivals(
    genesys: Arc<GenesysSimulator>,
    already: usize,
    total: usize,
    timeout: Duration,
) -> Vec<Instant> {
    let deadline = Instant::now() + timeout;
    let mut arrivals = Vec::with_capacity(total);
    for n in 1..=total {
        let left = deadline.saturating_duration_since(Instant::now());
        if !genesys
            .wait_for(GenesysRecordKind::InboundMessage, already + n, left)
            .await
        {
            break;
        }
        let now = Instant::now();
        // Several may have landed at once: they share this instant.
        let landed = genesys
            .count(GenesysRecordKind::InboundMessage)
            .saturating_sub(already);
        while arrivals.len() < landed.min(total) {
            arrivals.push(now);
        }
        if arrivals.len() >= total {
            break;
        }
    }
    arrivals
}

/// Latency of each arrived message: arrival minus the moment its webhook
/// was sent (the message text carries its sequence number).
pub fn latencies(
    bodies: &[InboundRecord],
    arrivals: &[Instant],
    sent_at: &[OnceLock<Instant>],
) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = bodies
        .iter()
        .zip(arrivals)
        .filter_map(|(record, arrived)| {
            let n: usize = record.body["text"]
                .as_str()?
                .strip_prefix("flood ")?
                .parse()
                .ok()?;
            let sent = sent_at.get(n)?.get()?;
            Some(arrived.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied()
}

pub struct Yardstick {
    pub messages: usize,
    pub took: Duration,
    pub error: Option<String>,
}

/// The broker alone: `messages` persistent envelopes published with
/// confirms through the connectors' own publisher (no consumer).
pub async fn broker_yardstick(amqp: &str, messages: usize) -> Yardstick {
    use um_connector::machinery::bus::{Bus, BusSettings, Publisher, Route};
    use um_connector::machinery::envelope::{Content, Direction, Envelope};
    let namespace = format!(
        "yardstick-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let bus = Bus::new(
        BusSettings {
            url: amqp.to_owned(),
            shards: 4,
            connection_name: "um-flood-yardstick".into(),
            namespace,
        },
        um_connector::machinery::metrics::Metrics::new("flood"),
    );
    let publisher = Publisher::new(bus.clone());
    let envelope = |n: usize| {
        Envelope::message(
            "flood.yardstick",
            um_config::Platform::Telegram,
            Direction::GuestToAgent,
            &(n % 1000).to_string(),
            Content {
                text: Some(format!("flood {n}")),
                ..Content::default()
            },
        )
        .with_id(format!("yardstick-{n}"))
    };
    // Declares the topology outside the measurement.
    if let Err(error) = publisher.publish(&Route::ToCx, &envelope(usize::MAX)).await {
        return Yardstick {
            messages,
            took: Duration::ZERO,
            error: Some(error.to_string()),
        };
    }
    let envelopes: Vec<Envelope> = (0..messages).map(envelope).collect();
    let started = Instant::now();
    let result = publisher.publish_all(&Route::ToCx, &envelopes).await;
    let took = started.elapsed();
    // Its queues hold what it published; nobody consumes them.
    crate::cleanup::remove_routes(&bus, &[Route::ToCx]).await;
    bus.close().await;
    Yardstick {
        messages,
        took,
        error: result.err().map(|e| e.to_string()),
    }
}

pub struct Figures {
    pub messages: usize,
    pub guests: usize,
    pub concurrency: usize,
    /// The bot's `max_connections` (`setWebhook`): the simulator's bound.
    pub max_connections: Option<u64>,
    pub refused: usize,
    pub sending_took: Duration,
    pub arrived: usize,
    pub all_arrived_after: Option<Duration>,
    pub latencies: Vec<Duration>,
    pub rss: Vec<(&'static str, Option<u64>, Option<Duration>)>,
    /// CPU time of this process (simulators and load generator).
    pub driver_cpu: Option<Duration>,
    /// CPU time of the broker and Redis from the first flood message to the
    /// last arrival (`None`: their process was not found).
    pub server_cpu: Vec<(&'static str, Option<Duration>)>,
    pub yardstick: Option<Yardstick>,
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

pub fn print(f: &Figures) {
    let bound = f
        .max_connections
        .map(|n| format!(" (Telegram sends at most {n} at once: the bot's max_connections)"))
        .unwrap_or_default();
    println!(
        "um-flood: {} guest messages from {} guests, {} webhooks in flight{bound}",
        f.messages, f.guests, f.concurrency
    );
    println!("  webhooks answered non-200:     {}", f.refused);
    println!(
        "  all webhooks answered after:   {:.3} s",
        f.sending_took.as_secs_f64()
    );
    match f.all_arrived_after {
        Some(total) => println!(
            "  arrived at Genesys:            {} of {} after {:.3} s  ({:.0} msg/s end to end)",
            f.arrived,
            f.messages,
            total.as_secs_f64(),
            f.arrived as f64 / total.as_secs_f64().max(1e-9)
        ),
        None => println!("  arrived at Genesys:            0 of {}", f.messages),
    }
    println!(
        "  latency webhook -> Genesys:    p50 {}  p99 {}  max {}",
        ms(percentile(&f.latencies, 0.50)),
        ms(percentile(&f.latencies, 0.99)),
        ms(f.latencies.last().copied())
    );
    for (service, rss, cpu) in &f.rss {
        let rss = rss.map_or_else(
            || "unavailable".to_owned(),
            |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
        );
        let cpu = cpu.map_or_else(
            || "-".to_owned(),
            |cpu| format!("{:.2} s", cpu.as_secs_f64()),
        );
        println!("  {service:<9} peak RSS (VmHWM): {rss:<10} CPU: {cpu}");
    }
    if let Some(cpu) = f.driver_cpu {
        println!(
            "  simulators + load generator CPU: {:.2} s",
            cpu.as_secs_f64()
        );
    }
    for (server, cpu) in &f.server_cpu {
        match cpu {
            Some(cpu) => println!(
                "  {server:<9} CPU during the flood: {:.2} s",
                cpu.as_secs_f64()
            ),
            None => println!("  {server:<9} CPU during the flood: - (process not found)"),
        }
    }
    if let Some(y) = &f.yardstick {
        match &y.error {
            None => println!(
                "  broker yardstick:              {} confirmed persistent publishes in {:.3} s ({:.0} msg/s)",
                y.messages,
                y.took.as_secs_f64(),
                y.messages as f64 / y.took.as_secs_f64().max(1e-9)
            ),
            Some(error) => println!("  broker yardstick:              failed: {error}"),
        }
    }
}
