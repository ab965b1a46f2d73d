//! Consuming a route: one session per shard queue, per-conversation lanes
//! inside it, retry in place, done markers, dead letters.
//!
//! Per shard the broker delivers up to `prefetch` unacknowledged messages.
//! Each joins the *lane* of its conversation (the routing key, which is
//! [`Envelope::ordering_key`]): one message per conversation is in work at
//! a time, in its own task ([`super::handling`]); different conversations
//! run concurrently. A lane exists only while its conversation has a
//! message in work ([`super::lanes`]), so idle conversations cost nothing.
//! A message is acknowledged only after it was handled (or given up and
//! dead-lettered with a confirm), so a crash at any point leaves every
//! unfinished message on the queue; runs of finished messages share one
//! `multiple` acknowledgement ([`super::acks`]). Redeliveries of finished
//! ones are recognised by the done marker
//! (`um:<service>:<tenant>:done:<envelope id>`) and acknowledged unsent.
//!
//! When the channel breaks, the messages in work stop before their next
//! attempt, the session waits for them, then reconnects: the broker
//! redelivers every unacknowledged message in queue order, so order
//! survives reconnects.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::acker::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::acks::{AckFrame, PendingAcks};
use super::handling::process;
use super::lanes::Lanes;
use super::park::ParkingLot;
use super::publisher::Publisher;
use super::release::release;
use super::topology::Route;
use super::{Bus, BusError};
use crate::machinery::envelope::{Envelope, ReasonCode};
use crate::machinery::notify::Notifier;
use crate::machinery::store::{DEFAULT_DONE_TTL, Store};

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Unacknowledged messages per shard (`UM_PREFETCH`).
    pub prefetch: u16,
    /// How long a message is retried after its first failure before it is
    /// dead-lettered (`UM_RETRY_FOR_SECONDS`, 24 h by default).
    pub retry_for: Duration,
    /// A cap on attempts besides `retry_for` (none by default; tests and
    /// benchmarks use it to give up quickly).
    pub max_attempts: u32,
    /// Attempts in place before the conversation is parked.
    pub park_after: u32,
    /// A wait at least this long (a platform's `Retry-After`) parks at once.
    pub park_wait: Duration,
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
            retry_for: DEFAULT_RETRY_FOR,
            max_attempts: u32::MAX,
            park_after: 3,
            park_wait: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(250),
            // A parked conversation is tried at least once a minute, so it
            // goes on soon after the other side is back.
            backoff_max: Duration::from_secs(60),
            handler_timeout: Duration::from_secs(60),
            done_ttl: DEFAULT_DONE_TTL,
        }
    }
}

/// Retry budget of a message: an outage of the other side shorter than
/// this loses nothing.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(24 * 3600);

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

    /// The envelope's Tenant is not (yet) in this service's configuration:
    /// it may be on its way (configuration reaches services at different
    /// moments; a Secret replaced by delete + create briefly removes a
    /// Tenant), so the message waits like any other failing delivery and
    /// is dead-lettered only when the retry budget is spent.
    pub fn tenant_unknown(tenant: &str) -> Self {
        Self::retry(format!("tenant {tenant} is not configured on this service"))
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

/// What every message's task of a consumer shares.
pub(super) struct Shared {
    pub(super) publisher: Publisher,
    pub(super) store: Option<Store>,
    pub(super) route: Route,
    pub(super) options: ConsumerOptions,
    pub(super) handler: Arc<dyn EnvelopeHandler>,
    pub(super) metrics: crate::machinery::metrics::Metrics,
    pub(super) group: String,
    pub(super) namespace: String,
    pub(super) notifier: Option<(Notifier, String)>,
    /// Where failing conversations wait (with done markers only).
    pub(super) lot: Option<ParkingLot>,
    /// Told when a conversation was parked here, so it is looked at soon.
    pub(super) wake_release: Notify,
    /// Parked conversations of the route at the release loop's last look
    /// (`usize::MAX` before the first).
    pub(super) parked_seen: AtomicUsize,
    /// Tenants whose parked heads failed again lately: a delivery of
    /// theirs that works makes their parked conversations due at once.
    pub(super) struggling: Mutex<HashSet<String>>,
}

impl Shared {
    /// Whether the route had no parked conversation at the last look.
    pub(super) fn nothing_parked(&self) -> bool {
        self.parked_seen.load(Ordering::Relaxed) == 0
    }

    fn struggling(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.struggling.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A parked head of `tenant` failed again.
    pub(super) fn failing(&self, tenant: &str) {
        let mut struggling = self.struggling();
        if !struggling.contains(tenant) {
            struggling.insert(tenant.to_owned());
        }
    }

    /// A delivery of `tenant` worked: if its parked conversations wait for
    /// later retries, they are due now (the other side is back).
    pub(super) fn delivered(self: &Arc<Self>, tenant: &str) {
        if !self.struggling().remove(tenant) {
            return;
        }
        let Some(lot) = self.lot.clone() else {
            return;
        };
        let shared = self.clone();
        let tenant = tenant.to_owned();
        tokio::spawn(async move {
            match lot.hurry(&tenant).await {
                Ok(hurried) if hurried > 0 => {
                    tracing::info!(
                        tenant,
                        hurried,
                        "deliveries work again: parked conversations are due now"
                    );
                    shared.wake_release.notify_one();
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "parked conversations not hurried"),
            }
        });
    }
}

/// A run of finished messages is acknowledged with one frame once it is
/// this long ...
const ACK_RUN: usize = 32;
/// ... or when the oldest due acknowledgement has waited this long.
const ACK_DELAY: Duration = Duration::from_millis(10);

/// A message's task is over: start the next of its conversation, and
/// acknowledge it (`ack`) or leave it to the broker (`None`).
struct Finished {
    conversation: String,
    tag: u64,
    ack: Option<Acker>,
}

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
        let lot = self.store.as_ref().map(|store| {
            ParkingLot::new(
                store,
                self.bus.namespace(),
                &self.route.slug(),
                self.options.retry_for,
            )
        });
        let shared = Arc::new(Shared {
            publisher: self.publisher,
            lot: lot.clone(),
            wake_release: Notify::new(),
            parked_seen: AtomicUsize::new(usize::MAX),
            struggling: Mutex::new(HashSet::new()),
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
        if let Some(lot) = lot {
            shards.spawn(release(shared.clone(), lot, shutdown.clone()));
        }
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
/// on shutdown, after every message in work stopped.
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

    let mut session = Session::new(shared.clone(), shutdown.child_token(), queue);
    let result = loop {
        let flush_at = session.flush_at;
        tokio::select! {
            // No basic.cancel: with single-active-consumer the broker would
            // activate the next consumer at once and hand it newer messages
            // while ours are still unacknowledged here. Closing the channel
            // (below) cancels and returns everything in one step.
            _ = shutdown.cancelled() => break Ok(()),
            Some(joined) = session.work.join_next() => {
                if let Err(error) = session.finish(joined) {
                    break Err(error);
                }
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => session.arrive(delivery),
                Some(Err(source)) => break Err(BusError::Amqp { step: "consume", object: queue.to_owned(), source }),
                None => break Err(BusError::Amqp {
                    step: "consume",
                    object: queue.to_owned(),
                    source: lapin::Error::from(lapin::ErrorKind::InvalidChannelState(lapin::ChannelState::Closed, "consumer stream ended")),
                }),
            },
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)), if flush_at.is_some() => {
                session.flush();
            }
        }
    };
    session.end().await;
    let _ = channel.close(200, "consumer stopped").await;
    result
}

/// The state of one consumer session: lanes, messages in work, open
/// deliveries and their acknowledgements.
struct Session {
    shared: Arc<Shared>,
    /// Cancelled when the session ends: messages in work stop before their
    /// next attempt.
    token: CancellationToken,
    queue: String,
    lanes: Lanes<Delivery>,
    work: JoinSet<Finished>,
    acks: PendingAcks<Acker>,
    /// To the task that sends acknowledgements, in the order given.
    frames: mpsc::UnboundedSender<Vec<AckFrame<Acker>>>,
    sender: tokio::task::JoinHandle<()>,
    /// When the due acknowledgements are sent even without a long run.
    flush_at: Option<tokio::time::Instant>,
}

impl Session {
    fn new(shared: Arc<Shared>, token: CancellationToken, queue: &str) -> Self {
        let (frames, pending) = mpsc::unbounded_channel();
        Self {
            shared,
            token,
            queue: queue.to_owned(),
            lanes: Lanes::default(),
            work: JoinSet::new(),
            acks: PendingAcks::default(),
            frames,
            sender: tokio::spawn(send_acks(pending, queue.to_owned())),
            flush_at: None,
        }
    }

    fn arrive(&mut self, delivery: Delivery) {
        self.acks.received(delivery.delivery_tag);
        let conversation = delivery.routing_key.to_string();
        if let Some(delivery) = self.lanes.arrive(&conversation, delivery) {
            self.start(conversation, delivery);
        }
    }

    fn start(&mut self, conversation: String, delivery: Delivery) {
        let shared = self.shared.clone();
        let token = self.token.clone();
        self.work.spawn(async move {
            let acknowledge = !token.is_cancelled() && process(&shared, &token, &delivery).await;
            Finished {
                conversation,
                tag: delivery.delivery_tag,
                ack: acknowledge.then_some(delivery.acker),
            }
        });
    }

    fn finish(&mut self, joined: Result<Finished, tokio::task::JoinError>) -> Result<(), BusError> {
        // A panicking handler leaves its message unacknowledged; going on
        // would let the conversation's next message overtake it. A new
        // session gets everything redelivered in order.
        let finished = joined.map_err(|error| BusError::HandlerPanicked {
            queue: self.queue.clone(),
            detail: error.to_string(),
        })?;
        if let Some(ack) = finished.ack {
            self.acks.finished(finished.tag, ack);
        }
        if let Some(next) = self.lanes.finished(&finished.conversation) {
            self.start(finished.conversation, next);
        }
        // Send the run at once when it is long, when nothing in work could
        // extend it, or when the broker is about to stop delivering.
        let credit_low = self.acks.open() * 2 >= usize::from(self.shared.options.prefetch);
        let min_run = if self.work.is_empty() || credit_low {
            1
        } else {
            ACK_RUN
        };
        if let Some(frame) = self.acks.take_run(min_run) {
            self.send(vec![frame]);
        }
        if self.acks.due() == 0 {
            self.flush_at = None;
        } else if self.flush_at.is_none() {
            self.flush_at = Some(tokio::time::Instant::now() + ACK_DELAY);
        }
        Ok(())
    }

    /// Every due acknowledgement, now.
    fn flush(&mut self) {
        self.flush_at = None;
        let frames = self.acks.take_all();
        if !frames.is_empty() {
            self.send(frames);
        }
    }

    fn send(&self, frames: Vec<AckFrame<Acker>>) {
        // Fails only after the sender gave up on a broken channel.
        let _ = self.frames.send(frames);
    }

    /// Messages in work finish the attempt they are in; waiting ones stay
    /// unacknowledged and return to the queue when the channel closes.
    async fn end(mut self) {
        self.token.cancel();
        tracing::debug!(
            queue = %self.queue,
            in_work = self.lanes.busy(),
            waiting = self.lanes.waiting(),
            "session ends; waiting messages return to the queue"
        );
        self.lanes = Lanes::default();
        while let Some(joined) = self.work.join_next().await {
            if let Ok(Finished {
                tag,
                ack: Some(ack),
                ..
            }) = joined
            {
                self.acks.finished(tag, ack);
            }
        }
        self.flush();
        let Self { frames, sender, .. } = self;
        drop(frames);
        let _ = sender.await;
    }
}

/// Sends acknowledgement frames one after the other: a `multiple` frame
/// must not reach the broker before a single one it would cover.
async fn send_acks(mut pending: mpsc::UnboundedReceiver<Vec<AckFrame<Acker>>>, queue: String) {
    while let Some(frames) = pending.recv().await {
        for frame in frames {
            let options = BasicAckOptions {
                multiple: frame.multiple,
            };
            if let Err(error) = frame.ack.ack(options).await {
                // The channel is gone, and every later ack with it: the
                // broker redelivers, the done markers skip what was handled.
                tracing::warn!(queue, error = %error, "ack failed");
                return;
            }
        }
    }
}
