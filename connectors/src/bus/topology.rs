//! Names and declaration of exchanges and queues (see the module docs of
//! [`crate::bus`]).

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use um_config::Platform;

use super::BusError;

pub const DEAD_LETTER_EXCHANGE: &str = "um.dead";
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

    pub fn exchange(&self) -> String {
        format!("um.{}", self.slug())
    }

    pub fn shard_queue(&self, shard: u16) -> String {
        format!("um.{}.{shard}", self.slug())
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{DEAD_LETTER_EXCHANGE}.{}", self.slug())
    }
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

fn shard_arguments(route: &Route) -> FieldTable {
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
        AMQPValue::LongString(LongString::from(DEAD_LETTER_EXCHANGE)),
    );
    args.insert(
        ShortString::from("x-dead-letter-routing-key"),
        AMQPValue::LongString(LongString::from(route.dead_letter_queue())),
    );
    args
}

/// Declares the dead-letter exchange and the route's dead-letter queue.
pub(crate) async fn declare_dead_letters(channel: &Channel, route: &Route) -> Result<(), BusError> {
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE,
            ExchangeKind::Direct,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("exchange.declare", DEAD_LETTER_EXCHANGE))?;
    let queue = route.dead_letter_queue();
    channel
        .queue_declare(&queue, durable_queue(), FieldTable::default())
        .await
        .map_err(amqp("queue.declare", &queue))?;
    channel
        .queue_bind(
            &queue,
            DEAD_LETTER_EXCHANGE,
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
    route: &Route,
    shards: u16,
) -> Result<(), BusError> {
    declare_dead_letters(channel, route).await?;
    let exchange = route.exchange();
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
        let queue = route.shard_queue(shard);
        channel
            .queue_declare(&queue, durable_queue(), shard_arguments(route))
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
        assert_eq!(Route::ToCx.exchange(), "um.to-cx");
        assert_eq!(Route::ToCx.shard_queue(3), "um.to-cx.3");
        assert_eq!(Route::ToCx.dead_letter_queue(), "um.dead.to-cx");
        let tg = Route::ToGuest(Platform::Telegram);
        assert_eq!(tg.exchange(), "um.to-guest.telegram");
        assert_eq!(tg.shard_queue(0), "um.to-guest.telegram.0");
        assert_eq!(tg.dead_letter_queue(), "um.dead.to-guest.telegram");
    }
}
