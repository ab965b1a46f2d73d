//! Publishing with publisher confirms: `publish` returns only once the broker
//! has taken responsibility for the message (persisted on the quorum
//! queue), so a caller may then acknowledge its own source (answer the
//! webhook 2xx, ack the consumed message).
//!
//! Many publishes may be in flight at once on the shared confirm channel
//! (concurrent webhooks, [`Publisher::publish_all`]); each waits only for its
//! own confirm. A publish that fails because the connection broke is retried
//! on a new connection until `timeout`: the broker may then hold the message
//! twice, which consumers absorb with their per-envelope done markers.
//!
//! A *nack* of an envelope is not retried: the shard queues refuse new
//! messages while full (`x-overflow: reject-publish`, see the topology), so
//! [`Publisher::publish`] fails at once with [`BusError::QueueFull`] and the
//! caller keeps the message at its source (a webhook answers 503 with
//! `Retry-After` and the platform redelivers; a consumer leaves it
//! unacknowledged) instead of holding a request open against a queue that
//! stays full until its consumer catches up.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use tokio::sync::Mutex;

use super::topology::{self, Route, TENANT_HEADER};
use super::{Bus, BusError};
use crate::machinery::envelope::Envelope;

pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for one confirm before the attempt counts as failed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Nacks in a row (50, 100, 200 ms apart) before a queue counts as full.
const NACKS_BEFORE_FULL: u32 = 3;

/// What a broker nack means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnNack {
    /// An envelope refused by its full shard queue: [`BusError::QueueFull`] at once.
    QueueFull,
    /// Retried like a broken connection until the publish timeout.
    Retry,
}

/// Where a message goes and what it is called.
struct Target<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    message_id: &'a str,
}

#[derive(Clone)]
pub struct Publisher {
    bus: Bus,
    /// The confirm channel and the routes declared on its connection: every
    /// publish reads it, without waiting on an async lock.
    ready: Arc<std::sync::Mutex<Option<ReadyChannel>>>,
    /// Held while a channel is opened or a route declared.
    preparing: Arc<Mutex<()>>,
    timeout: Duration,
}

struct ReadyChannel {
    channel: Channel,
    routes: HashSet<Route>,
}

pub(super) fn envelope_properties(envelope: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(TENANT_HEADER),
        AMQPValue::LongString(LongString::from(envelope.tenant.as_str())),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(envelope.id.as_str()))
        .with_timestamp(envelope.time.timestamp().max(0) as u64)
        .with_type(ShortString::from("um.envelope"))
        .with_headers(headers)
}

impl Publisher {
    pub fn new(bus: Bus) -> Self {
        Self {
            bus,
            ready: Arc::new(std::sync::Mutex::new(None)),
            preparing: Arc::new(Mutex::new(())),
            timeout: DEFAULT_PUBLISH_TIMEOUT,
        }
    }

    /// How long a publish keeps retrying across reconnects before failing.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Towards the contact center (`um.to-cx`).
    pub async fn to_cx(&self, envelope: &Envelope) -> Result<(), BusError> {
        self.publish(&Route::ToCx, envelope).await
    }

    /// Towards the guest, on the envelope's platform (`um.to-guest.<platform>`).
    pub async fn to_guest(&self, envelope: &Envelope) -> Result<(), BusError> {
        self.publish(&Route::ToGuest(envelope.platform), envelope)
            .await
    }

    /// Publishes and waits for the broker's confirm.
    pub async fn publish(&self, route: &Route, envelope: &Envelope) -> Result<(), BusError> {
        let payload = serde_json::to_vec(envelope).map_err(BusError::Encode)?;
        let exchange = route.exchange(self.bus.namespace());
        let routing_key = envelope.ordering_key();
        let started = Instant::now();
        self.publish_bytes(
            route,
            Target {
                exchange: &exchange,
                routing_key: &routing_key,
                message_id: &envelope.id,
            },
            &payload,
            envelope_properties(envelope),
            OnNack::QueueFull,
        )
        .await?;
        self.bus.metrics().published(&exchange, started.elapsed());
        Ok(())
    }

    /// Publishes a dead letter to its route again (`um dlq replay`), marked
    /// ([`super::REPLAYED_HEADER`]) so its consumer delivers it although it
    /// finished it once as dead. Waits for room rather than failing on a
    /// full queue: an administrator's replay has no source to fall back on.
    pub async fn republish(&self, route: &Route, envelope: &Envelope) -> Result<(), BusError> {
        let payload = serde_json::to_vec(envelope).map_err(BusError::Encode)?;
        let exchange = route.exchange(self.bus.namespace());
        let routing_key = envelope.ordering_key();
        let mut properties = envelope_properties(envelope);
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from(super::REPLAYED_HEADER),
            AMQPValue::LongLongInt(chrono::Utc::now().timestamp_millis()),
        );
        properties = properties.with_headers(headers);
        self.publish_bytes(
            route,
            Target {
                exchange: &exchange,
                routing_key: &routing_key,
                message_id: &envelope.id,
            },
            &payload,
            properties,
            OnNack::Retry,
        )
        .await
    }

    /// Publishes several envelopes with their confirms in flight together;
    /// fails if any fails (the others may have been published).
    pub async fn publish_all(&self, route: &Route, envelopes: &[Envelope]) -> Result<(), BusError> {
        let results =
            futures::future::join_all(envelopes.iter().map(|e| self.publish(route, e))).await;
        results.into_iter().collect()
    }

    /// Moves a consumed message to the route's dead-letter queue, keeping its
    /// body and properties and adding why.
    pub(crate) async fn dead_letter(
        &self,
        route: &Route,
        payload: &[u8],
        properties: &BasicProperties,
        reason: &str,
        attempts: u32,
    ) -> Result<(), BusError> {
        let ns = self.bus.namespace();
        let queue = route.dead_letter_queue(ns);
        let dead_exchange = topology::dead_letter_exchange(ns);
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from("x-um-dead-reason"),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            ShortString::from("x-um-attempts"),
            AMQPValue::LongLongInt(attempts.into()),
        );
        headers.insert(
            ShortString::from("x-um-source"),
            AMQPValue::LongString(LongString::from(route.exchange(ns))),
        );
        let message_id = properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let properties = properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        self.publish_bytes(
            route,
            Target {
                exchange: &dead_exchange,
                routing_key: &queue,
                message_id: &message_id,
            },
            payload,
            properties,
            OnNack::Retry,
        )
        .await
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, Option<ReadyChannel>> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live confirm channel, with `route` declared on its connection.
    async fn confirm_channel(&self, route: &Route) -> Result<Channel, BusError> {
        let usable = |ready: &Option<ReadyChannel>| {
            ready
                .as_ref()
                .filter(|ready| ready.channel.status().connected() && ready.routes.contains(route))
                .map(|ready| ready.channel.clone())
        };
        if let Some(channel) = usable(&self.ready()) {
            return Ok(channel);
        }
        let _preparing = self.preparing.lock().await;
        if let Some(channel) = usable(&self.ready()) {
            return Ok(channel);
        }
        // Declares the route (and its dead letters) once per connection.
        self.bus.declare(route).await?;
        let open = self
            .ready()
            .as_ref()
            .filter(|ready| ready.channel.status().connected())
            .map(|ready| ready.channel.clone());
        let channel = match open {
            Some(channel) => channel,
            None => {
                let channel = self.bus.channel().await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|source| BusError::Amqp {
                        step: "confirm.select",
                        object: "publisher channel".to_owned(),
                        source,
                    })?;
                *self.ready() = Some(ReadyChannel {
                    channel: channel.clone(),
                    routes: HashSet::new(),
                });
                channel
            }
        };
        if let Some(ready) = self.ready().as_mut() {
            ready.routes.insert(*route);
        }
        Ok(channel)
    }

    async fn publish_bytes(
        &self,
        route: &Route,
        target: Target<'_>,
        payload: &[u8],
        properties: BasicProperties,
        on_nack: OnNack,
    ) -> Result<(), BusError> {
        let deadline = Instant::now() + self.timeout;
        let mut delay = Duration::from_millis(50);
        let mut nacks = 0;
        loop {
            let error = match self
                .try_publish(route, &target, payload, properties.clone())
                .await
            {
                Ok(()) => return Ok(()),
                // Topology is wrong, not the connection: retrying cannot help.
                Err(error @ BusError::Unroutable { .. }) | Err(error @ BusError::Encode(_)) => {
                    return Err(error);
                }
                // A quorum queue also nacks for a moment while it elects a
                // leader (just declared, a broker node restarting): a few
                // quick tries tell that apart from a queue that stays full.
                Err(BusError::Nacked {
                    exchange,
                    message_id,
                }) if on_nack == OnNack::QueueFull && nacks >= NACKS_BEFORE_FULL => {
                    return Err(BusError::QueueFull {
                        exchange,
                        message_id,
                    });
                }
                Err(error) => {
                    if matches!(error, BusError::Nacked { .. }) {
                        nacks += 1;
                    }
                    error
                }
            };
            if Instant::now() + delay > deadline {
                return Err(BusError::Timeout {
                    exchange: target.exchange.to_owned(),
                    message_id: target.message_id.to_owned(),
                    seconds: self.timeout.as_secs(),
                    last_error: error.to_string(),
                });
            }
            tracing::warn!(error = %error, exchange = target.exchange, message_id = target.message_id, "publish failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn try_publish(
        &self,
        route: &Route,
        target: &Target<'_>,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let channel = self.confirm_channel(route).await?;
        let amqp = |step: &'static str| {
            let object = target.exchange.to_owned();
            move |source| BusError::Amqp {
                step,
                object,
                source,
            }
        };
        let confirm = channel
            .basic_publish(
                target.exchange,
                target.routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties,
            )
            .await
            .map_err(amqp("basic.publish"))?;
        let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .map_err(|_| BusError::Timeout {
                exchange: target.exchange.to_owned(),
                message_id: target.message_id.to_owned(),
                seconds: CONFIRM_TIMEOUT.as_secs(),
                last_error: "no confirm from the broker".to_owned(),
            })?
            .map_err(amqp("publisher confirm"))?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_returned)) => Err(BusError::Unroutable {
                exchange: target.exchange.to_owned(),
                message_id: target.message_id.to_owned(),
            }),
            Confirmation::Nack(_) => Err(BusError::Nacked {
                exchange: target.exchange.to_owned(),
                message_id: target.message_id.to_owned(),
            }),
        }
    }
}
