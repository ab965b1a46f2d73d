//! Names and declaration of exchanges and queues (see the module docs of
//! [`crate::machinery::bus`]).
//!
//! # Queue length
//!
//! Every shard queue is declared with `x-max-length` =
//! [`DEFAULT_SHARD_MAX_LENGTH`] ready messages and `x-overflow:
//! reject-publish`. While a shard holds that many messages (its consumer is
//! down or far behind, e.g. Genesys Cloud is unreachable), the broker
//! refuses new ones with a basic.nack: the publisher reports
//! [`BusError::QueueFull`] and a webhook answers 503 with `Retry-After`, so
//! the platform keeps the message and redelivers it later. RabbitMQ's
//! default overflow, `drop-head`, would instead drop (dead-letter) the
//! *oldest* accepted message to make room: a loss nobody is told about.
//! Unacknowledged messages (the consumers' prefetch) do not count. A quorum
//! queue notices that it is over the limit after the publish that crossed
//! it, so a shard may hold a few messages more than the limit, and once
//! full it refuses publishes until it is back below about 80 % of it.
//!
//! Why queue arguments and not (only) a policy: the arguments come with the
//! queue, so every installation is protected from its first message,
//! whatever broker it uses, without management rights and without anyone
//! remembering to apply a policy; and length and overflow always come
//! together (a policy that set only `max-length` would mean `drop-head`).
//! Their drawback is that a queue's arguments cannot change: declaring a
//! queue that exists with other arguments fails with PRECONDITION_FAILED.
//! That is why the limit is a constant and not a setting: a changed setting
//! would stop every service at its next start. What an operator can change,
//! live and without redeclaring anything, is a policy: RabbitMQ applies the
//! *smaller* of a policy's `max-length` and the argument, e.g.
//!
//! ```text
//! rabbitmqctl set_operator_policy um-shard-length '^um\.(to-cx|to-guest\.[a-z]+)\.[0-9]+$' \
//!   '{"max-length": 20000}' --apply-to queues
//! ```
//!
//! (replace `um` by the installation's bus namespace, `UM_BUS_NAMESPACE`; a
//! user policy works too, but it replaces any other user policy matching
//! the same queues, while operator policies combine with them). A policy
//! must not set `overflow` (for quorum queues a policy's overflow wins over
//! the argument). A limit *above* the argument needs new queues: delete a
//! shard while it is empty (`rabbitmqctl list_queues name messages` shows
//! 0, as it does whenever its consumer keeps up) and restart the connectors
//! (`kubectl rollout restart deployment`), which declare it again with the
//! arguments of their version. A webhook in between finds no queue behind
//! the exchange: its publish is returned as unroutable and it is answered
//! 503, so the platform redelivers it and nothing is lost. Shard queues
//! declared by a version without these arguments are replaced the same way
//! when upgrading (until then the new version's declare is refused with
//! PRECONDITION_FAILED and an error naming this section).
//!
//! Dead-lettering: the shard queues dead-letter only what exceeds
//! `x-delivery-limit` (a consumer that crashes on it again and again), with
//! the quorum-queue default strategy `at-most-once`. The `at-least-once`
//! strategy (`x-dead-letter-strategy`) is possible only with
//! `reject-publish`, which the shards now have; it is not used because that
//! path is a last resort next to the consumers' own confirmed
//! dead-lettering, and adding it later is again a change of arguments.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use um_config::Platform;

use super::BusError;

/// Default namespace: the first part of every exchange and queue name.
pub const DEFAULT_NAMESPACE: &str = "um";
pub const TENANT_HEADER: &str = "x-um-tenant";
/// Broker-side bound on redeliveries (consumer crashes), above any
/// in-process `max_attempts`.
pub const DELIVERY_LIMIT: i64 = 50;
/// Ready messages a shard queue holds before it refuses publishes (see
/// "Queue length" above). With the default 4 shards a route holds 400,000
/// envelopes of about a kilobyte (some 400 MB of the broker's disk): more
/// than an hour of 100 messages a second while the other side is down.
pub const DEFAULT_SHARD_MAX_LENGTH: i64 = 100_000;

/// One direction of traffic: an exchange sharded into queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Towards the contact center, consumed by gcloudcx.
    ToCx,
    /// Towards the guests of one platform, consumed by its connector.
    ToGuest(Platform),
}

impl Route {
    /// `to-cx`, `to-guest.<platform>`: the route's own part of every name.
    pub fn slug(&self) -> String {
        match self {
            Route::ToCx => "to-cx".to_owned(),
            Route::ToGuest(platform) => format!("to-guest.{}", platform.as_str()),
        }
    }

    /// `<ns>.to-cx`, `<ns>.to-guest.<platform>`.
    pub fn exchange(&self, ns: &str) -> String {
        format!("{ns}.{}", self.slug())
    }

    pub fn shard_queue(&self, ns: &str, shard: u16) -> String {
        format!("{ns}.{}.{shard}", self.slug())
    }

    pub fn dead_letter_queue(&self, ns: &str) -> String {
        format!("{}.{}", dead_letter_exchange(ns), self.slug())
    }
}

/// `<ns>.dead`.
pub fn dead_letter_exchange(ns: &str) -> String {
    format!("{ns}.dead")
}

fn amqp<'a>(step: &'static str, object: &'a str) -> impl FnOnce(lapin::Error) -> BusError + 'a {
    move |source| BusError::Amqp {
        step,
        object: object.to_owned(),
        source,
    }
}

/// A shard queue that exists with other arguments says how to fix it.
fn shard_declare_error(queue: &str, source: lapin::Error) -> BusError {
    let inequivalent = matches!(
        source.kind(),
        lapin::ErrorKind::ProtocolError(error)
            if matches!(error.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
    );
    BusError::Amqp {
        step: if inequivalent {
            "queue.declare (the queue exists with other arguments, e.g. declared by an older \
             version: see \"Queue length\" in the bus topology docs for how to replace it)"
        } else {
            "queue.declare"
        },
        object: queue.to_owned(),
        source,
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn shard_arguments(ns: &str, route: &Route) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args.insert(
        ShortString::from("x-single-active-consumer"),
        AMQPValue::Boolean(true),
    );
    args.insert(
        ShortString::from("x-delivery-limit"),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    args.insert(
        ShortString::from("x-max-length"),
        AMQPValue::LongLongInt(DEFAULT_SHARD_MAX_LENGTH),
    );
    args.insert(
        ShortString::from("x-overflow"),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from(dead_letter_exchange(ns))),
    );
    args.insert(
        ShortString::from("x-dead-letter-routing-key"),
        AMQPValue::LongString(LongString::from(route.dead_letter_queue(ns))),
    );
    args
}

/// Declares the dead-letter exchange and the route's dead-letter queue.
pub(crate) async fn declare_dead_letters(
    channel: &Channel,
    ns: &str,
    route: &Route,
) -> Result<(), BusError> {
    let dead = dead_letter_exchange(ns);
    channel
        .exchange_declare(
            &dead,
            ExchangeKind::Direct,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("exchange.declare", &dead))?;
    let queue = route.dead_letter_queue(ns);
    channel
        .queue_declare(&queue, durable_queue(), FieldTable::default())
        .await
        .map_err(amqp("queue.declare", &queue))?;
    channel
        .queue_bind(
            &queue,
            &dead,
            &queue,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("queue.bind", &queue))?;
    Ok(())
}

/// Declares the route's exchange, its shard queues and their bindings, and
/// its dead letters. Idempotent; both publishers and consumers call it so
/// whichever starts first creates the topology.
pub(crate) async fn declare_route(
    channel: &Channel,
    ns: &str,
    route: &Route,
    shards: u16,
) -> Result<(), BusError> {
    declare_dead_letters(channel, ns, route).await?;
    let exchange = route.exchange(ns);
    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Custom("x-consistent-hash".to_owned()),
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp(
            "exchange.declare (is the rabbitmq_consistent_hash_exchange plugin enabled?)",
            &exchange,
        ))?;
    for shard in 0..shards {
        let queue = route.shard_queue(ns, shard);
        channel
            .queue_declare(&queue, durable_queue(), shard_arguments(ns, route))
            .await
            .map_err(|source| shard_declare_error(&queue, source))?;
        // The binding key of a consistent-hash exchange is the shard's weight.
        channel
            .queue_bind(
                &queue,
                &exchange,
                "1",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp("queue.bind", &queue))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Route::ToCx.exchange("um"), "um.to-cx");
        assert_eq!(Route::ToCx.shard_queue("um", 3), "um.to-cx.3");
        assert_eq!(Route::ToCx.dead_letter_queue("um"), "um.dead.to-cx");
        let tg = Route::ToGuest(Platform::Telegram);
        assert_eq!(tg.exchange("um"), "um.to-guest.telegram");
        assert_eq!(tg.shard_queue("um", 0), "um.to-guest.telegram.0");
        assert_eq!(tg.dead_letter_queue("um"), "um.dead.to-guest.telegram");
        assert_eq!(tg.exchange("t1"), "t1.to-guest.telegram");
    }

    #[test]
    fn shards_refuse_publishes_when_full_instead_of_dropping_the_oldest() {
        let args = shard_arguments("um", &Route::ToCx);
        let get = |key: &str| args.inner().get(&ShortString::from(key)).cloned();
        assert_eq!(
            get("x-max-length"),
            Some(AMQPValue::LongLongInt(DEFAULT_SHARD_MAX_LENGTH))
        );
        assert_eq!(
            get("x-overflow"),
            Some(AMQPValue::LongString(LongString::from("reject-publish")))
        );
        assert_eq!(
            get("x-queue-type"),
            Some(AMQPValue::LongString(LongString::from("quorum")))
        );
    }
}
