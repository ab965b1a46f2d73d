//! Releasing parked conversations ([`super::park`]): claim the due ones,
//! retry each one's head, and once it went through deliver the messages
//! that waited behind it, in order. Every replica runs this loop; a claim
//! is a lease in the due set, so two replicas never work one conversation
//! at the same time unless a lease ran out (a handler slower than the
//! lease), and then the done markers keep the second from sending again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::consumer::{HandlerError, Shared};
use super::handling::{
    BUDGET_SPENT, DeadLetter, UNDECODABLE, attempt_once, budget_spent, dead_letter, finish_failed,
    mark_done, next_wait,
};
use super::park::{Failure, Head, ParkingLot, now_ms};
use super::publisher::envelope_properties;
use crate::machinery::envelope::Envelope;

/// How often the due set is looked at when nothing wakes the loop.
const POLL: Duration = Duration::from_millis(500);
/// Conversations released at the same time by one replica.
const CONCURRENCY: usize = 64;

pub(super) async fn release(shared: Arc<Shared>, lot: ParkingLot, shutdown: CancellationToken) {
    // Longer than one attempt can take, so a live claim does not run out.
    let lease = shared.options.handler_timeout * 2 + Duration::from_secs(30);
    let token = shutdown.child_token();
    let mut work = JoinSet::new();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = work.join_next() => {}
            _ = shared.wake_release.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        let room = CONCURRENCY.saturating_sub(work.len());
        if room == 0 {
            continue;
        }
        match lot.claim(room, lease).await {
            Ok((parked, due)) => {
                failing = false;
                shared.parked_seen.store(parked, Ordering::Relaxed);
                shared.metrics.parked_conversations(&shared.group, parked);
                for conversation in due {
                    let span = tracing::info_span!("parked", conversation = %conversation);
                    work.spawn(
                        drain(
                            shared.clone(),
                            lot.clone(),
                            conversation,
                            token.clone(),
                            lease,
                        )
                        .instrument(span),
                    );
                }
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(error = %error, "parked conversations not readable");
            }
            Err(_) => {}
        }
    }
    token.cancel();
    while work.join_next().await.is_some() {}
}

/// Works one claimed conversation: its head, then (after a success) the
/// next, until one fails (rescheduled) or none is left.
async fn drain(
    shared: Arc<Shared>,
    lot: ParkingLot,
    conversation: String,
    token: CancellationToken,
    lease: Duration,
) {
    while !token.is_cancelled() {
        let head = match lot.head(&conversation).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(error) => {
                // The lease runs out and the conversation is tried again.
                tracing::warn!(error = %error, "parked head not readable");
                return;
            }
        };
        let Some(tenant) = release_head(&shared, &lot, &conversation, &head, &token, lease).await
        else {
            return;
        };
        match lot.pop(&tenant, &conversation, &head.data).await {
            // The last one: the conversation is no longer parked, and a
            // message parked from now on starts a new claim (another
            // releaser's), which this one must not work too.
            Ok(Some(0)) => return,
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!("parked head changed under us; another replica took over");
                return;
            }
            Err(error) => {
                tracing::warn!(error = %error, "parked head not removed; it is skipped as done later");
                return;
            }
        }
    }
}

/// Tries the head once; its Tenant if it is finished (delivered, given up
/// or dead-lettered) and may be removed, `None` if it stays (rescheduled,
/// or stopped).
async fn release_head(
    shared: &Arc<Shared>,
    lot: &ParkingLot,
    conversation: &str,
    head: &Head,
    token: &CancellationToken,
    lease: Duration,
) -> Option<String> {
    let envelope: Envelope = match serde_json::from_slice(&head.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            let detail = error.to_string();
            let moved = dead_letter(
                shared,
                token,
                &head.data,
                &lapin::BasicProperties::default(),
                &DeadLetter {
                    reason: UNDECODABLE,
                    last_error: &detail,
                    attempts: head.attempts,
                    conversation,
                    since: head.since.unwrap_or_else(now_ms),
                },
            )
            .await;
            return moved.then(String::new);
        }
    };
    let finished = |done: bool| done.then(|| envelope.tenant.clone());
    // Finished by a releaser that stopped before removing it.
    if let Some(store) = &shared.store
        && let Ok(true) = store.is_done(&envelope.tenant, &envelope.id).await
    {
        return finished(true);
    }
    let attempt = head.attempts + 1;
    let _ = lot.hold(conversation, lease).await;
    let properties = envelope_properties(&envelope);
    let error = match attempt_once(shared, &envelope, attempt).await {
        Ok(()) => {
            mark_done(shared, &envelope).await;
            shared.metrics.released(&shared.group);
            if head.attempts > 0 {
                shared.delivered(&envelope.tenant);
            }
            return finished(true);
        }
        Err(error @ HandlerError::Permanent { .. }) => {
            tracing::warn!(error = %error, attempt, "giving up a parked message");
            let done = finish_failed(
                shared,
                token,
                &envelope,
                &head.data,
                &properties,
                &error,
                None,
            )
            .await;
            return finished(done);
        }
        Err(error) => error,
    };
    let HandlerError::Retry { after, detail } = &error else {
        unreachable!("permanent errors returned above")
    };
    let since = head.since.unwrap_or_else(now_ms);
    if budget_spent(shared, since, attempt) {
        tracing::warn!(error = %error, attempt, "retry budget spent, dead-lettering");
        let done = finish_failed(
            shared,
            token,
            &envelope,
            &head.data,
            &properties,
            &error,
            Some(DeadLetter {
                reason: BUDGET_SPENT,
                last_error: detail,
                attempts: attempt,
                conversation,
                since,
            }),
        )
        .await;
        return finished(done);
    }
    shared.metrics.retried(&shared.group);
    let wait = next_wait(shared, *after, attempt);
    let failure = Failure {
        attempts: attempt,
        since,
        error: detail.clone(),
    };
    if let Err(error) = lot
        .reschedule(conversation, &failure, now_ms() + wait.as_millis() as u64)
        .await
    {
        // The lease runs out and the head is tried again then.
        tracing::warn!(error = %error, "parked head not rescheduled");
    }
    shared.failing(&envelope.tenant);
    None
}
