//! Handling one delivery of a shard: admission (done before? conversation
//! parked?), a few attempts in place, then parking ([`super::park`]) or
//! giving up and dead-lettering. The session ([`super::consumer`]) decides
//! when a delivery starts and sends the acknowledgement this asks for; the
//! steps shared with the release of parked conversations
//! ([`super::release`]) live here too.

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, LongString, ShortString};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::consumer::{HandlerError, Shared};
use super::park::{Admission, Failure, now_ms};
use crate::machinery::envelope::Envelope;
use crate::machinery::notify::{Notice, TOPIC_SUBSCRIPTIONS};

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

/// Sleeps unless `token` is cancelled first; `false` if it was.
pub(super) async fn pause(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

/// Why a message goes to the dead letters, with what the administrator
/// needs to decide on a replay.
pub(super) struct DeadLetter<'a> {
    /// `undecodable`, `retry budget spent`, ...
    pub(super) reason: &'a str,
    pub(super) last_error: &'a str,
    pub(super) attempts: u32,
    /// The ordering key (tenant + conversation).
    pub(super) conversation: &'a str,
    /// First failure, ms since the epoch.
    pub(super) since: u64,
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Publishes to the route's dead letters (confirmed), retrying until the
/// broker took it or `token` is cancelled (`false`).
pub(super) async fn dead_letter(
    shared: &Shared,
    token: &CancellationToken,
    data: &[u8],
    properties: &BasicProperties,
    dead: &DeadLetter<'_>,
) -> bool {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(
        ShortString::from("x-um-last-error"),
        long_string(dead.last_error),
    );
    headers.insert(
        ShortString::from("x-um-conversation"),
        long_string(dead.conversation),
    );
    headers.insert(
        ShortString::from("x-um-first-failure-ms"),
        AMQPValue::LongLongInt(i64::try_from(dead.since).unwrap_or(i64::MAX)),
    );
    headers.insert(
        ShortString::from("x-um-dead-at-ms"),
        AMQPValue::LongLongInt(i64::try_from(now_ms()).unwrap_or(i64::MAX)),
    );
    let properties = properties.clone().with_headers(headers);
    let mut attempt = 1;
    loop {
        match shared
            .publisher
            .dead_letter(&shared.route, data, &properties, dead.reason, dead.attempts)
            .await
        {
            Ok(()) => {
                shared
                    .metrics
                    .dead_lettered(&shared.group, dead_reason_label(dead.reason));
                notify_dead_letter(shared, &properties, dead);
                return true;
            }
            Err(error) => {
                tracing::error!(error = %error, "dead-lettering failed, keeping the message");
            }
        }
        if !pause(token, shared.options.backoff(attempt)).await {
            return false;
        }
        attempt += 1;
    }
}

fn header_text(properties: &BasicProperties, name: &str) -> String {
    properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
        .and_then(|v| match v {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Tells the administrators, in the background (best effort).
fn notify_dead_letter(shared: &Shared, properties: &BasicProperties, dead: &DeadLetter<'_>) {
    let Some((notifier, source)) = shared.notifier.clone() else {
        return;
    };
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let tenant = header_text(properties, super::TENANT_HEADER);
    let queue = shared.route.dead_letter_queue(&shared.namespace);
    let notice = Notice {
        topic: TOPIC_SUBSCRIPTIONS,
        tenant: Some(tenant.clone()).filter(|t| !t.is_empty()),
        summary: format!(
            "message {message_id} of tenant {tenant} was moved to {queue} after {} attempts ({}): {}",
            dead.attempts, dead.reason, dead.last_error
        ),
        source,
        severity: "error",
        details: serde_json::json!({
            "messageId": message_id,
            "tenant": tenant,
            "conversation": dead.conversation,
            "queue": queue,
            "attempts": dead.attempts,
            "reason": dead.reason,
            "lastError": dead.last_error,
        }),
    };
    tokio::spawn(async move {
        notifier.notify(&notice).await;
    });
}

pub(super) const UNDECODABLE: &str = "undecodable";
pub(super) const BUDGET_SPENT: &str = "retry budget spent";

fn dead_reason_label(reason: &str) -> &'static str {
    if reason == UNDECODABLE {
        "undecodable"
    } else {
        "exhausted"
    }
}

/// Runs the handler's `given_up` hook until it succeeds (`false`: `token`
/// was cancelled first).
pub(super) async fn give_up(
    shared: &Shared,
    token: &CancellationToken,
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
        if !pause(token, shared.options.backoff(attempt)).await {
            return false;
        }
        attempt += 1;
    }
}

/// Set by a replay of a dead letter (`um dlq replay`).
pub const REPLAYED_HEADER: &str = "x-um-replayed";

/// Remembers that a dead-lettered envelope was finished here, unless it is
/// replayed ([`REPLAYED_HEADER`]).
async fn mark_dead(shared: &Shared, envelope: &Envelope) {
    if let Some(store) = &shared.store
        && let Err(error) = store
            .mark_dead(&envelope.tenant, &envelope.id, shared.options.done_ttl)
            .await
    {
        tracing::warn!(envelope = %envelope.id, error = %error, "dead marker not written");
    }
}

pub(super) async fn mark_done(shared: &Shared, envelope: &Envelope) {
    if let Some(store) = &shared.store
        && let Err(error) = store
            .mark_done(&envelope.tenant, &envelope.id, shared.options.done_ttl)
            .await
    {
        tracing::warn!(envelope = %envelope.id, error = %error, "done marker not written");
    }
}

/// One call of the handler, bounded by the handler timeout.
pub(super) async fn attempt_once(
    shared: &Shared,
    envelope: &Envelope,
    attempt: u32,
) -> Result<(), HandlerError> {
    match tokio::time::timeout(
        shared.options.handler_timeout,
        shared.handler.handle(envelope, attempt),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(HandlerError::retry(format!(
            "handler did not finish within {} s",
            shared.options.handler_timeout.as_secs()
        ))),
    }
}

/// Whether a message that first failed at `since` and was tried `attempts`
/// times may not be tried again.
pub(super) fn budget_spent(shared: &Shared, since: u64, attempts: u32) -> bool {
    let spent = Duration::from_millis(now_ms().saturating_sub(since));
    spent >= shared.options.retry_for || attempts >= shared.options.max_attempts
}

/// How long to wait before the next attempt.
pub(super) fn next_wait(shared: &Shared, after: Option<Duration>, attempt: u32) -> Duration {
    after
        .map(|a| a.min(shared.options.backoff_max))
        .unwrap_or_else(|| shared.options.backoff(attempt))
}

/// Gives up for good after a permanent error or a spent budget: the
/// handler's hook, the dead letters for a spent budget, the done marker.
/// `false`: `token` was cancelled first.
pub(super) async fn finish_failed(
    shared: &Shared,
    token: &CancellationToken,
    envelope: &Envelope,
    data: &[u8],
    properties: &BasicProperties,
    error: &HandlerError,
    dead: Option<DeadLetter<'_>>,
) -> bool {
    if !give_up(shared, token, envelope, error).await {
        return false;
    }
    match dead {
        Some(dead) => {
            if !Box::pin(dead_letter(shared, token, data, properties, &dead)).await {
                return false;
            }
            mark_dead(shared, envelope).await;
        }
        None => mark_done(shared, envelope).await,
    }
    true
}

/// Handles one delivery until it is finished or parked (`true`: acknowledge
/// it) or the session ends (`false`: leave it to the broker to redeliver).
pub(super) async fn process(
    shared: &Arc<Shared>,
    session: &CancellationToken,
    delivery: &Delivery,
) -> bool {
    shared.metrics.consumed(&shared.group);
    let previous = delivery_count(delivery);
    let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::error!(error = %error, "undecodable message, dead-lettering");
            let detail = error.to_string();
            // Rare and large: kept out of every message's task.
            return Box::pin(dead_letter(
                shared,
                session,
                &delivery.data,
                &delivery.properties,
                &DeadLetter {
                    reason: UNDECODABLE,
                    last_error: &detail,
                    attempts: previous + 1,
                    conversation: delivery.routing_key.as_str(),
                    since: now_ms(),
                },
            ))
            .await;
        }
    };
    let span = tracing::info_span!("envelope", id = %envelope.id, tenant = %envelope.tenant);
    process_envelope(shared, session, delivery, envelope, previous)
        .instrument(span)
        .await
}

/// Asks Redis whether the message was finished before or waits behind a
/// parked one; `None` if the session ended while Redis did not answer.
async fn admit(
    shared: &Shared,
    session: &CancellationToken,
    envelope: &Envelope,
    conversation: &str,
    redelivered: bool,
    replayed: bool,
) -> Option<Admission> {
    let mut attempt = 1;
    loop {
        let answer = match &shared.lot {
            Some(lot) => {
                lot.admit(&envelope.tenant, &envelope.id, conversation, replayed)
                    .await
            }
            None => Ok(Admission::Go),
        };
        match answer {
            Ok(admission) => return Some(admission),
            // Without Redis a first delivery goes on when nothing was parked
            // on this route at the last look: it cannot overtake anything.
            Err(error) if !redelivered && shared.nothing_parked() => {
                tracing::warn!(error = %error, "Redis not readable; first delivery and nothing parked, going on");
                return Some(Admission::Go);
            }
            Err(error) => {
                tracing::warn!(error = %error, "Redis not readable, waiting")
            }
        }
        if !pause(session, shared.options.backoff(attempt)).await {
            return None;
        }
        attempt += 1;
    }
}

/// Appends the message behind its parked conversation, retrying Redis.
async fn park(
    shared: &Shared,
    session: &CancellationToken,
    tenant: &str,
    conversation: &str,
    data: &[u8],
    due_ms: u64,
) -> bool {
    let Some(lot) = &shared.lot else {
        return false;
    };
    let mut attempt = 1;
    loop {
        match lot.park(tenant, conversation, data, None, due_ms).await {
            Ok(()) => {
                shared.metrics.parked(&shared.group);
                shared.wake_release.notify_one();
                return true;
            }
            Err(error) => tracing::warn!(error = %error, "parking failed, retrying"),
        }
        if !pause(session, shared.options.backoff(attempt)).await {
            return false;
        }
        attempt += 1;
    }
}

async fn process_envelope(
    shared: &Arc<Shared>,
    session: &CancellationToken,
    delivery: &Delivery,
    envelope: Envelope,
    previous: u32,
) -> bool {
    let redelivered = delivery.redelivered || previous > 0;
    let conversation = delivery.routing_key.as_str();
    let replayed = delivery
        .properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().contains_key(REPLAYED_HEADER));
    match admit(
        shared,
        session,
        &envelope,
        conversation,
        redelivered,
        replayed,
    )
    .await
    {
        None => return false,
        Some(Admission::Done) => {
            tracing::debug!("already handled, acknowledging the redelivery");
            shared.metrics.delivery("duplicate", Duration::ZERO);
            return true;
        }
        Some(Admission::Parked) => {
            tracing::debug!("conversation parked, waiting behind it");
            return park(
                shared,
                session,
                &envelope.tenant,
                conversation,
                &delivery.data,
                now_ms(),
            )
            .await;
        }
        Some(Admission::Go) => {}
    }
    let mut attempt = previous + 1;
    let mut since = None;
    loop {
        let error = match attempt_once(shared, &envelope, attempt).await {
            Ok(()) => {
                mark_done(shared, &envelope).await;
                shared.delivered(&envelope.tenant);
                return true;
            }
            Err(error @ HandlerError::Permanent { .. }) => {
                tracing::warn!(error = %error, attempt, "giving up");
                return finish_failed(
                    shared,
                    session,
                    &envelope,
                    &delivery.data,
                    &delivery.properties,
                    &error,
                    None,
                )
                .await;
            }
            Err(error) => error,
        };
        let HandlerError::Retry { after, detail } = &error else {
            unreachable!("permanent errors returned above")
        };
        let first_failure = *since.get_or_insert_with(now_ms);
        if budget_spent(shared, first_failure, attempt) {
            tracing::warn!(error = %error, attempt, "retry budget spent, dead-lettering");
            return finish_failed(
                shared,
                session,
                &envelope,
                &delivery.data,
                &delivery.properties,
                &error,
                Some(DeadLetter {
                    reason: BUDGET_SPENT,
                    last_error: detail,
                    attempts: attempt,
                    conversation,
                    since: first_failure,
                }),
            )
            .await;
        }
        shared.metrics.retried(&shared.group);
        let wait = next_wait(shared, *after, attempt);
        if let Some(lot) = &shared.lot
            && (attempt >= shared.options.park_after || wait >= shared.options.park_wait)
        {
            let failure = Failure {
                attempts: attempt,
                since: first_failure,
                error: detail.clone(),
            };
            let due = now_ms() + wait.as_millis() as u64;
            match lot
                .park(
                    &envelope.tenant,
                    conversation,
                    &delivery.data,
                    Some(&failure),
                    due,
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(attempt, retry_in_ms = wait.as_millis() as u64, detail = %detail, "conversation parked");
                    shared.metrics.parked(&shared.group);
                    shared.failing(&envelope.tenant);
                    shared.wake_release.notify_one();
                    return true;
                }
                // Redis full or away: the message waits in place instead.
                Err(park_error) => {
                    tracing::warn!(error = %park_error, "parking failed, retrying in place")
                }
            }
        }
        tracing::info!(attempt, retry_in_ms = wait.as_millis() as u64, detail = %detail, "retrying in place");
        if !pause(session, wait).await {
            return false;
        }
        attempt += 1;
    }
}
