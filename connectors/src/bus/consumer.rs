//! Consuming a route: one task per shard queue, per-conversation lanes
//! inside it, retry in place, done markers, dead letters.
//!
//! Per shard the broker delivers up to `prefetch` unacknowledged messages.
//! Each goes to the *lane* of its conversation (the routing key, which is
//! [`Envelope::ordering_key`]); a lane handles its messages one after the
//! other, lanes run concurrently. A message is acknowledged individually,
//! and only after it was handled (or given up and dead-lettered with a
//! confirm), so a crash at any point leaves every unfinished message on the
//! queue. Redeliveries of finished ones are recognised by the done marker
//! (`um:<service>:<tenant>:done:<envelope id>`) and acknowledged unsent.
//!
//! When the channel breaks, the lanes stop before their next attempt, the
//! shard waits for them, then reconnects: the broker redelivers every
//! unacknowledged message in queue order, so order survives reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::publisher::Publisher;
use super::topology::Route;
use super::{Bus, BusError};
use crate::envelope::{Envelope, ReasonCode};
use crate::notify::{Notice, Notifier, TOPIC_SUBSCRIPTIONS};
use crate::store::{DEFAULT_DONE_TTL, Store};

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Unacknowledged messages per shard (`UM_PREFETCH`).
    pub prefetch: u16,
    /// Attempts before an envelope is dead-lettered (counting broker
    /// redeliveries after a crash).
    pub max_attempts: u32,
    /// First back-off; doubles per attempt (with jitter) up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Longest one handler call may take before it counts as a retryable
    /// failure.
    pub handler_timeout: Duration,
    pub done_ttl: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            prefetch: 256,
            max_attempts: 8,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(60),
            done_ttl: DEFAULT_DONE_TTL,
        }
    }
}

impl ConsumerOptions {
    /// Back-off before attempt `attempt + 1`, ±20 % jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.backoff_max);
        let jitter = rand::random_range(0.8..1.2);
        exp.mul_f64(jitter)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (`after` overrides the back-off, e.g. `Retry-After`).
    #[error("retryable failure: {detail}")]
    Retry {
        after: Option<Duration>,
        detail: String,
    },
    /// Will never succeed: given up at once, not dead-lettered (the handler's
    /// [`EnvelopeHandler::given_up`] reports it).
    #[error("permanent failure: {detail}")]
    Permanent {
        /// What to tell the other side, when the handler knows.
        reason: Option<ReasonCode>,
        detail: String,
    },
}

impl HandlerError {
    pub fn retry(detail: impl Into<String>) -> Self {
        HandlerError::Retry {
            after: None,
            detail: detail.into(),
        }
    }

    pub fn permanent(detail: impl Into<String>) -> Self {
        HandlerError::Permanent {
            reason: None,
            detail: detail.into(),
        }
    }
}

/// What a consumer does with each envelope.
#[async_trait]
pub trait EnvelopeHandler: Send + Sync + 'static {
    /// Handles one envelope; `attempt` starts at 1. Must be idempotent on
    /// `envelope.id` at the far side where it can (idempotency key).
    async fn handle(&self, envelope: &Envelope, attempt: u32) -> Result<(), HandlerError>;

    /// Called once when the envelope is given up: after a `Permanent` error,
    /// or after the last `Retry` (the envelope is then dead-lettered). An
    /// error here keeps the message and calls again after a back-off.
    async fn given_up(
        &self,
        _envelope: &Envelope,
        _error: &HandlerError,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Consumes one route.
pub struct Consumer {
    bus: Bus,
    publisher: Publisher,
    store: Option<Store>,
    route: Route,
    options: ConsumerOptions,
    notifier: Option<(Notifier, String)>,
}

struct Shared {
    publisher: Publisher,
    store: Option<Store>,
    route: Route,
    options: ConsumerOptions,
    handler: Arc<dyn EnvelopeHandler>,
    metrics: crate::metrics::Metrics,
    group: String,
    namespace: String,
    notifier: Option<(Notifier, String)>,
}

struct Lane {
    tx: mpsc::UnboundedSender<Delivery>,
    pending: Arc<AtomicUsize>,
}

/// Prune idle lanes when more than this many exist.
const LANE_PRUNE_THRESHOLD: usize = 512;

impl Consumer {
    pub fn new(bus: Bus, route: Route, options: ConsumerOptions) -> Self {
        Self {
            publisher: Publisher::new(bus.clone()),
            bus,
            store: None,
            route,
            options,
            notifier: None,
        }
    }

    /// Reports every dead letter on the `Subscriptions` topic, as `source`.
    pub fn with_notifier(mut self, notifier: Notifier, source: impl Into<String>) -> Self {
        self.notifier = Some((notifier, source.into()));
        self
    }

    /// Skips envelopes this service already finished, and marks each one
    /// finished after it was handled (`um:<service>:<tenant>:done:<id>`).
    pub fn with_done_markers(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Consumes every shard until `shutdown`, reconnecting as needed.
    pub async fn run(self, handler: Arc<dyn EnvelopeHandler>, shutdown: CancellationToken) {
        let shared = Arc::new(Shared {
            publisher: self.publisher,
            store: self.store,
            route: self.route,
            group: self.route.exchange(self.bus.namespace()),
            namespace: self.bus.namespace().to_owned(),
            options: self.options,
            handler,
            metrics: self.bus.metrics().clone(),
            notifier: self.notifier,
        });
        let mut shards = JoinSet::new();
        for shard in 0..self.bus.shards() {
            shards.spawn(consume_shard(
                self.bus.clone(),
                shared.clone(),
                shard,
                shutdown.clone(),
            ));
        }
        while shards.join_next().await.is_some() {}
    }
}

async fn consume_shard(bus: Bus, shared: Arc<Shared>, shard: u16, shutdown: CancellationToken) {
    let queue = shared.route.shard_queue(bus.namespace(), shard);
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        match consume_once(&bus, &shared, &queue, &shutdown).await {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(queue = %queue, error = %error, "consumer stopped, reconnecting")
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            delay = Duration::from_millis(100);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One consumer session on one channel; returns when the channel breaks or
/// on shutdown, after every lane stopped.
async fn consume_once(
    bus: &Bus,
    shared: &Arc<Shared>,
    queue: &str,
    shutdown: &CancellationToken,
) -> Result<(), BusError> {
    bus.declare(&shared.route).await?;
    let channel = bus.channel().await?;
    let amqp = |step: &'static str| {
        let object = queue.to_owned();
        move |source| BusError::Amqp {
            step,
            object,
            source,
        }
    };
    channel
        .basic_qos(shared.options.prefetch, BasicQosOptions::default())
        .await
        .map_err(amqp("basic.qos"))?;
    let tag = format!("{}-{}", queue, uuid::Uuid::new_v4().simple());
    let mut consumer = channel
        .basic_consume(
            queue,
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("basic.consume"))?;
    tracing::debug!(queue, "consuming");

    let session = shutdown.child_token();
    let mut lanes: HashMap<String, Lane> = HashMap::new();
    let mut tasks = JoinSet::new();
    let result = loop {
        tokio::select! {
            // No basic.cancel: with single-active-consumer the broker would
            // activate the next consumer at once and hand it newer messages
            // while ours are still unacknowledged here. Closing the channel
            // (below) cancels and returns everything in one step.
            _ = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    dispatch(shared, &session, &mut lanes, &mut tasks, delivery);
                    while tasks.try_join_next().is_some() {}
                }
                Some(Err(source)) => break Err(BusError::Amqp { step: "consume", object: queue.to_owned(), source }),
                None => break Err(BusError::Amqp {
                    step: "consume",
                    object: queue.to_owned(),
                    source: lapin::Error::from(lapin::ErrorKind::InvalidChannelState(lapin::ChannelState::Closed, "consumer stream ended")),
                }),
            }
        }
    };
    // Lanes finish the attempt they are in, then stop; what they did not
    // acknowledge goes back to the queue when the channel closes.
    session.cancel();
    drop(lanes);
    while tasks.join_next().await.is_some() {}
    let _ = channel.close(200, "consumer stopped").await;
    result
}

fn dispatch(
    shared: &Arc<Shared>,
    session: &CancellationToken,
    lanes: &mut HashMap<String, Lane>,
    tasks: &mut JoinSet<()>,
    delivery: Delivery,
) {
    if lanes.len() > LANE_PRUNE_THRESHOLD {
        // Only the dispatcher adds work, so an idle lane stays idle: drop it.
        lanes.retain(|_, lane| lane.pending.load(Ordering::Acquire) > 0);
    }
    let key = delivery.routing_key.as_str().to_owned();
    let lane = lanes.entry(key).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        tasks.spawn(run_lane(
            shared.clone(),
            session.clone(),
            rx,
            pending.clone(),
        ));
        Lane { tx, pending }
    });
    lane.pending.fetch_add(1, Ordering::AcqRel);
    if let Err(mpsc::error::SendError(_delivery)) = lane.tx.send(delivery) {
        // The lane ended (session cancelled); the message stays unacked and
        // is redelivered with the next session.
        lane.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn run_lane(
    shared: Arc<Shared>,
    session: CancellationToken,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    pending: Arc<AtomicUsize>,
) {
    while let Some(delivery) = rx.recv().await {
        if !session.is_cancelled() {
            process(&shared, &session, delivery).await;
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Broker redeliveries so far (quorum queues count them).
fn delivery_count(delivery: &Delivery) -> u32 {
    let from_header = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            AMQPValue::ShortUInt(n) => Some(n.into()),
            _ => None,
        });
    from_header.unwrap_or(u32::from(delivery.redelivered))
}

async fn ack(delivery: &Delivery) {
    if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
        // The channel is gone: the message is redelivered and recognised
        // by its done marker.
        tracing::warn!(error = %error, "ack failed");
    }
}

/// Sleeps unless the session ends first; `false` if it ended.
async fn pause(session: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = session.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

async fn dead_letter(
    shared: &Shared,
    session: &CancellationToken,
    delivery: &Delivery,
    reason: &str,
    attempts: u32,
) -> bool {
    let mut attempt = 1;
    loop {
        match shared
            .publisher
            .dead_letter(
                &shared.route,
                &delivery.data,
                &delivery.properties,
                reason,
                attempts,
            )
            .await
        {
            Ok(()) => {
                shared
                    .metrics
                    .dead_lettered(&shared.group, dead_reason_label(reason));
                notify_dead_letter(shared, delivery, reason, attempts);
                return true;
            }
            Err(error) => {
                tracing::error!(error = %error, "dead-lettering failed, keeping the message");
            }
        }
        if !pause(session, shared.options.backoff(attempt)).await {
            return false;
        }
        attempt += 1;
    }
}

/// Tells the administrators, in the background (best effort).
fn notify_dead_letter(shared: &Shared, delivery: &Delivery, reason: &str, attempts: u32) {
    let Some((notifier, source)) = shared.notifier.clone() else {
        return;
    };
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let tenant = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(super::TENANT_HEADER).cloned())
        .and_then(|v| match v {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            _ => None,
        })
        .unwrap_or_default();
    let queue = shared.route.dead_letter_queue(&shared.namespace);
    let notice = Notice {
        topic: TOPIC_SUBSCRIPTIONS,
        summary: format!(
            "message {message_id} of tenant {tenant} could not be processed after {attempts} attempts and was moved to {queue}: {reason}"
        ),
        source,
        severity: "error",
        details: serde_json::json!({
            "messageId": message_id,
            "tenant": tenant,
            "queue": queue,
            "attempts": attempts,
            "reason": reason,
        }),
    };
    tokio::spawn(async move {
        notifier.notify(&notice).await;
    });
}

fn dead_reason_label(reason: &str) -> &'static str {
    if reason.starts_with("undecodable") {
        "undecodable"
    } else {
        "exhausted"
    }
}

async fn give_up(
    shared: &Shared,
    session: &CancellationToken,
    envelope: &Envelope,
    error: &HandlerError,
) -> bool {
    let mut attempt = 1;
    loop {
        match shared.handler.given_up(envelope, error).await {
            Ok(()) => return true,
            Err(hook_error) => {
                tracing::warn!(envelope = %envelope.id, error = %hook_error, "reporting a given-up envelope failed, retrying")
            }
        }
        if !pause(session, shared.options.backoff(attempt)).await {
            return false;
        }
        attempt += 1;
    }
}

async fn mark_done(shared: &Shared, envelope: &Envelope) {
    if let Some(store) = &shared.store
        && let Err(error) = store
            .mark_done(&envelope.tenant, &envelope.id, shared.options.done_ttl)
            .await
    {
        tracing::warn!(envelope = %envelope.id, error = %error, "done marker not written");
    }
}

/// Whether the envelope was finished before; waits for Redis on a
/// redelivery (the only case where a duplicate is possible).
async fn already_done(
    shared: &Shared,
    session: &CancellationToken,
    envelope: &Envelope,
    redelivered: bool,
) -> Option<bool> {
    let Some(store) = shared.store.as_ref() else {
        return Some(false);
    };
    let mut attempt = 1;
    loop {
        match store.is_done(&envelope.tenant, &envelope.id).await {
            Ok(done) => return Some(done),
            Err(error) if !redelivered => {
                tracing::warn!(envelope = %envelope.id, error = %error, "done marker not readable; first delivery, going on");
                return Some(false);
            }
            Err(error) => {
                tracing::warn!(envelope = %envelope.id, error = %error, "done marker not readable, waiting")
            }
        }
        if !pause(session, shared.options.backoff(attempt)).await {
            return None;
        }
        attempt += 1;
    }
}

async fn process(shared: &Shared, session: &CancellationToken, delivery: Delivery) {
    shared.metrics.consumed(&shared.group);
    let previous = delivery_count(&delivery);
    let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::error!(error = %error, "undecodable message, dead-lettering");
            if dead_letter(
                shared,
                session,
                &delivery,
                &format!("undecodable: {error}"),
                previous + 1,
            )
            .await
            {
                ack(&delivery).await;
            }
            return;
        }
    };
    let span = tracing::info_span!("envelope", id = %envelope.id, tenant = %envelope.tenant);
    process_envelope(shared, session, &delivery, envelope, previous)
        .instrument(span)
        .await;
}

async fn process_envelope(
    shared: &Shared,
    session: &CancellationToken,
    delivery: &Delivery,
    envelope: Envelope,
    previous: u32,
) {
    let redelivered = delivery.redelivered || previous > 0;
    match already_done(shared, session, &envelope, redelivered).await {
        None => return,
        Some(true) => {
            tracing::debug!("already handled, acknowledging the redelivery");
            shared.metrics.delivery("duplicate", Duration::ZERO);
            ack(delivery).await;
            return;
        }
        Some(false) => {}
    }
    let mut attempt = previous + 1;
    loop {
        let outcome = match tokio::time::timeout(
            shared.options.handler_timeout,
            shared.handler.handle(&envelope, attempt),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(HandlerError::retry(format!(
                "handler did not finish within {} s",
                shared.options.handler_timeout.as_secs()
            ))),
        };
        match outcome {
            Ok(()) => {
                mark_done(shared, &envelope).await;
                ack(delivery).await;
                return;
            }
            Err(error @ HandlerError::Permanent { .. }) => {
                tracing::warn!(error = %error, attempt, "giving up");
                if give_up(shared, session, &envelope, &error).await {
                    mark_done(shared, &envelope).await;
                    ack(delivery).await;
                }
                return;
            }
            Err(error @ HandlerError::Retry { .. }) if attempt >= shared.options.max_attempts => {
                tracing::warn!(error = %error, attempt, "attempts exhausted, dead-lettering");
                if give_up(shared, session, &envelope, &error).await
                    && dead_letter(shared, session, delivery, &error.to_string(), attempt).await
                {
                    mark_done(shared, &envelope).await;
                    ack(delivery).await;
                }
                return;
            }
            Err(HandlerError::Retry { after, detail }) => {
                shared.metrics.retried(&shared.group);
                let wait = after
                    .map(|a| a.min(Duration::from_secs(300)))
                    .unwrap_or_else(|| shared.options.backoff(attempt));
                tracing::info!(attempt, retry_in_ms = wait.as_millis() as u64, detail = %detail, "retrying in place");
                if !pause(session, wait).await {
                    return;
                }
                attempt += 1;
            }
        }
    }
}
