//! Handling one delivery: attempts with back-off in place, done markers,
//! giving up, dead letters. The session ([`super::consumer`]) decides when
//! a delivery starts and sends the acknowledgement this asks for.

use std::time::Duration;

use lapin::message::Delivery;
use lapin::types::AMQPValue;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::consumer::{HandlerError, Shared};
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
        tenant: Some(tenant.clone()).filter(|t| !t.is_empty()),
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

/// Handles one delivery until it is finished (`true`: acknowledge it) or
/// the session ends (`false`: leave it to the broker to redeliver).
pub(super) async fn process(
    shared: &Shared,
    session: &CancellationToken,
    delivery: &Delivery,
) -> bool {
    shared.metrics.consumed(&shared.group);
    let previous = delivery_count(delivery);
    let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::error!(error = %error, "undecodable message, dead-lettering");
            // Rare and large: kept out of every message's task.
            return Box::pin(dead_letter(
                shared,
                session,
                delivery,
                &format!("undecodable: {error}"),
                previous + 1,
            ))
            .await;
        }
    };
    let span = tracing::info_span!("envelope", id = %envelope.id, tenant = %envelope.tenant);
    process_envelope(shared, session, delivery, envelope, previous)
        .instrument(span)
        .await
}

async fn process_envelope(
    shared: &Shared,
    session: &CancellationToken,
    delivery: &Delivery,
    envelope: Envelope,
    previous: u32,
) -> bool {
    let redelivered = delivery.redelivered || previous > 0;
    match already_done(shared, session, &envelope, redelivered).await {
        None => return false,
        Some(true) => {
            tracing::debug!("already handled, acknowledging the redelivery");
            shared.metrics.delivery("duplicate", Duration::ZERO);
            return true;
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
                return true;
            }
            Err(error @ HandlerError::Permanent { .. }) => {
                tracing::warn!(error = %error, attempt, "giving up");
                if !give_up(shared, session, &envelope, &error).await {
                    return false;
                }
                mark_done(shared, &envelope).await;
                return true;
            }
            Err(error @ HandlerError::Retry { .. }) if attempt >= shared.options.max_attempts => {
                tracing::warn!(error = %error, attempt, "attempts exhausted, dead-lettering");
                let moved = give_up(shared, session, &envelope, &error).await
                    && Box::pin(dead_letter(
                        shared,
                        session,
                        delivery,
                        &error.to_string(),
                        attempt,
                    ))
                    .await;
                if !moved {
                    return false;
                }
                mark_done(shared, &envelope).await;
                return true;
            }
            Err(HandlerError::Retry { after, detail }) => {
                shared.metrics.retried(&shared.group);
                let wait = after
                    .map(|a| a.min(Duration::from_secs(300)))
                    .unwrap_or_else(|| shared.options.backoff(attempt));
                tracing::info!(attempt, retry_in_ms = wait.as_millis() as u64, detail = %detail, "retrying in place");
                if !pause(session, wait).await {
                    return false;
                }
                attempt += 1;
            }
        }
    }
}
