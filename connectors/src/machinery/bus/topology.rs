//! Names and declaration of exchanges and queues (see the module docs of
//! [`crate::machinery::bus`]).

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
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
            .map_err(amqp("queue.declare", &queue))?;
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
}
