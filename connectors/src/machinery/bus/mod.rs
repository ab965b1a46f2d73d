//! The RabbitMQ bus between connector services.
//!
//! # Topology (declared by the services at start, idempotently)
//!
//! Names below use the default namespace `um` (`UM_BUS_NAMESPACE`; tests
//! use their own so they never share queues).
//!
//! | name | kind | what |
//! |---|---|---|
//! | `um.to-cx` | exchange `x-consistent-hash`, durable | guest → agent envelopes and receipts of agent messages, consumed by gcloudcx |
//! | `um.to-cx.<n>` (n = 0..shards) | quorum queue, `x-single-active-consumer` | one shard, bound with weight `1` |
//! | `um.to-guest.<platform>` | exchange `x-consistent-hash`, durable | agent → guest envelopes for one platform, consumed by that platform's connector |
//! | `um.to-guest.<platform>.<n>` | quorum queue, `x-single-active-consumer` | one shard |
//! | `um.dead` | exchange `direct`, durable | dead letters |
//! | `um.dead.<route>` (`um.dead.to-cx`, `um.dead.to-guest.<platform>`) | durable classic queue | what could not be processed, for an operator to inspect and replay (`um dlq`) |
//!
//! Messages are persistent JSON [`Envelope`](crate::machinery::envelope::Envelope)s;
//! the routing key is [`Envelope::ordering_key`](crate::machinery::envelope::Envelope::ordering_key)
//! (tenant + conversation), so the consistent-hash exchange sends one
//! conversation always to the same shard; `message_id` is the envelope id;
//! header `x-um-tenant` the tenant key. Every publish waits for the broker's
//! confirm ([`Publisher`]).
//!
//! # Order and retries
//!
//! One active consumer per shard (single-active-consumer: other replicas are
//! standbys that take over). Within a shard the [`Consumer`] processes
//! different conversations concurrently (prefetch well above 1) and one
//! conversation strictly in sequence. A failed attempt is retried in place
//! a few times (the later messages of that conversation wait behind it);
//! then the conversation is *parked* in Redis ([`park`]) and the message
//! acknowledged, so a conversation waiting on a failing delivery holds no
//! prefetch; its later messages are appended behind it as they arrive, and
//! every replica's release loop ([`release`]) retries due heads with capped
//! back-off and jitter for `retry_for` (24 h by default). Only then is the
//! envelope published to `um.dead` (confirmed, with its reason,
//! conversation, attempts and last error) and given up. The shard queues
//! carry `x-max-length` with `reject-publish` (a full shard refuses new
//! messages: the webhook answers 503) and `x-delivery-limit` dead-lettering
//! to `um.dead`, a safety net for a message that crashes its consumer
//! again and again. [`dead_letters`] lists, replays and purges dead letters
//! (`um dlq`).
//!
//! The number of shards (`UM_BUS_SHARDS`) may grow between deployments but
//! must not shrink while the removed shards still hold messages.

mod acks;
mod connection;
mod consumer;
pub mod dead_letters;
mod handling;
mod lanes;
mod park;
mod publisher;
mod release;
mod topology;

pub use connection::{Bus, BusSettings, DEFAULT_FRAME_MAX};
pub use consumer::{Consumer, ConsumerOptions, DEFAULT_RETRY_FOR, EnvelopeHandler, HandlerError};
pub use handling::REPLAYED_HEADER;
pub use publisher::Publisher;
pub use topology::{
    DEFAULT_NAMESPACE, DEFAULT_SHARD_MAX_LENGTH, Route, TENANT_HEADER, dead_letter_exchange,
};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker URL {url} is not usable: {detail}")]
    Url { url: String, detail: String },
    #[error("cannot connect to the broker at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },
    #[error("broker {step} on {object}: {source}")]
    Amqp {
        step: &'static str,
        object: String,
        #[source]
        source: lapin::Error,
    },
    #[error("broker refused (nack) the message {message_id} published to {exchange}")]
    Nacked {
        exchange: String,
        message_id: String,
    },
    /// The broker refused (basic.nack) an envelope: its shard queue holds
    /// `x-max-length` ready messages and rejects new ones (`x-overflow:
    /// reject-publish`, declared in the topology) until its consumer
    /// catches up. Not retried by the publisher: the caller's source keeps
    /// the message (a webhook answers 503 and the platform redelivers).
    #[error(
        "broker refused (nack) the message {message_id} published to {exchange}: its queue is full (x-max-length with reject-publish) until its consumer catches up"
    )]
    QueueFull {
        exchange: String,
        message_id: String,
    },
    #[error("message {message_id} published to {exchange} was not routed to any queue")]
    Unroutable {
        exchange: String,
        message_id: String,
    },
    #[error(
        "publishing {message_id} to {exchange} did not succeed within {seconds} s: {last_error}"
    )]
    Timeout {
        exchange: String,
        message_id: String,
        seconds: u64,
        last_error: String,
    },
    #[error("a message handler on {queue} panicked: {detail}")]
    HandlerPanicked { queue: String, detail: String },
    #[error("envelope cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}
