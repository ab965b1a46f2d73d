//! The day-2 side of dead letters (`um dlq`): list them with their story,
//! replay them onto their route, purge them.
//!
//! A dead-letter queue is browsed by taking every message without
//! acknowledging it and closing the channel afterwards: the broker puts
//! what was not acknowledged back where it was, in order. A replayed
//! message is published to its route's exchange with its conversation's
//! routing key (confirmed) before its dead letter is acknowledged, so a
//! failure in between leaves a duplicate at worst, never a loss; it joins
//! its conversation behind what arrived since (and behind a parked
//! conversation's waiting messages), and several dead letters of one
//! conversation are replayed in the order they died.

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use um_config::Platform;

use super::topology::Route;
use super::{Bus, BusError, Publisher};
use crate::machinery::envelope::Envelope;

/// One dead letter as `um dlq ls|show` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterEntry {
    /// The route it was taken from (`to-cx`, `to-guest.telegram`).
    pub route: String,
    pub message_id: String,
    pub tenant: String,
    pub conversation: String,
    pub attempts: i64,
    pub reason: String,
    pub last_error: String,
    /// When it was dead-lettered and when it first failed (ms since the epoch).
    pub dead_at_ms: Option<i64>,
    pub first_failure_ms: Option<i64>,
    /// The envelope, when it decodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<serde_json::Value>,
}

/// Which dead letters a replay or purge takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Tenant(String),
    Ids(Vec<String>),
}

impl Selection {
    fn takes(&self, entry: &DeadLetterEntry) -> bool {
        match self {
            Selection::All => true,
            Selection::Tenant(tenant) => entry.tenant == *tenant,
            Selection::Ids(ids) => ids.contains(&entry.message_id),
        }
    }
}

/// What to do with the selected dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Look,
    Replay,
    Purge,
}

/// Every route of an installation: towards the contact center and towards
/// each platform's guests.
pub fn routes() -> Vec<Route> {
    std::iter::once(Route::ToCx)
        .chain(Platform::ALL.iter().map(|p| Route::ToGuest(*p)))
        .collect()
}

fn header(delivery: &Delivery, name: &str) -> Option<AMQPValue> {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
}

fn text(delivery: &Delivery, name: &str) -> String {
    match header(delivery, name) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    }
}

fn number(delivery: &Delivery, name: &str) -> Option<i64> {
    match header(delivery, name)? {
        AMQPValue::LongLongInt(n) => Some(n),
        AMQPValue::LongInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n.into()),
        _ => None,
    }
}

fn entry(route: &Route, delivery: &Delivery) -> DeadLetterEntry {
    DeadLetterEntry {
        route: route.slug(),
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        tenant: text(delivery, super::TENANT_HEADER),
        conversation: text(delivery, "x-um-conversation"),
        attempts: number(delivery, "x-um-attempts").unwrap_or_default(),
        reason: text(delivery, "x-um-dead-reason"),
        last_error: text(delivery, "x-um-last-error"),
        dead_at_ms: number(delivery, "x-um-dead-at-ms"),
        first_failure_ms: number(delivery, "x-um-first-failure-ms"),
        envelope: serde_json::from_slice(&delivery.data).ok(),
    }
}

/// The dead letters of one installation's bus.
pub struct DeadLetters {
    bus: Bus,
    publisher: Publisher,
}

impl DeadLetters {
    pub fn new(bus: Bus) -> Self {
        Self {
            publisher: Publisher::new(bus.clone()),
            bus,
        }
    }

    /// Every dead letter of every route, oldest first per route.
    pub async fn list(&self) -> Result<Vec<DeadLetterEntry>, BusError> {
        self.each(&Selection::All, Action::Look).await
    }

    /// Publishes the selected dead letters to their routes again; returns
    /// them.
    pub async fn replay(&self, selection: &Selection) -> Result<Vec<DeadLetterEntry>, BusError> {
        self.each(selection, Action::Replay).await
    }

    /// Deletes the selected dead letters; returns them.
    pub async fn purge(&self, selection: &Selection) -> Result<Vec<DeadLetterEntry>, BusError> {
        self.each(selection, Action::Purge).await
    }

    async fn each(
        &self,
        selection: &Selection,
        action: Action,
    ) -> Result<Vec<DeadLetterEntry>, BusError> {
        let mut taken = Vec::new();
        for route in routes() {
            taken.extend(self.each_of(&route, selection, action).await?);
        }
        Ok(taken)
    }

    async fn each_of(
        &self,
        route: &Route,
        selection: &Selection,
        action: Action,
    ) -> Result<Vec<DeadLetterEntry>, BusError> {
        let queue = route.dead_letter_queue(self.bus.namespace());
        let amqp = |step: &'static str| {
            let object = queue.clone();
            move |source| BusError::Amqp {
                step,
                object,
                source,
            }
        };
        let channel = self.bus.channel().await?;
        // A route that never dead-lettered has no queue: nothing to list
        // (the failed passive declare closed that channel).
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if channel
            .queue_declare(&queue, passive, FieldTable::default())
            .await
            .is_err()
        {
            return Ok(Vec::new());
        }
        let mut taken = Vec::new();
        let result = async {
            while let Some(message) = channel
                .basic_get(&queue, BasicGetOptions { no_ack: false })
                .await
                .map_err(amqp("basic.get"))?
            {
                let delivery = message.delivery;
                let found = entry(route, &delivery);
                if !selection.takes(&found) {
                    continue;
                }
                match action {
                    Action::Look => {}
                    Action::Replay => {
                        // Undecodable: nothing to deliver; it stays for `purge`.
                        let Ok(envelope) = serde_json::from_slice::<Envelope>(&delivery.data)
                        else {
                            continue;
                        };
                        self.publisher.republish(route, &envelope).await?;
                        ack(&delivery).await.map_err(amqp("basic.ack"))?;
                    }
                    Action::Purge => ack(&delivery).await.map_err(amqp("basic.ack"))?,
                }
                taken.push(found);
            }
            Ok::<_, BusError>(())
        }
        .await;
        // Everything not acknowledged goes back, in its order.
        let _ = channel.close(200, "dead letters browsed").await;
        result.map(|()| taken)
    }
}

async fn ack(delivery: &Delivery) -> Result<(), lapin::Error> {
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
}
