//! Sending the parts of one delivery exactly once across retries.
//!
//! One agent message can take several platform calls (long text split, one
//! call per attachment, a card per message). The consumer retries a whole
//! envelope in place when a call fails; without a record of what already
//! went out, the guest would see the earlier parts twice. Each part that the
//! platform accepted leaves a marker in Redis (`<envelope id>#<index>`), and
//! a retry skips the marked parts.
//!
//! The marker is written for every part, even when there is only one: a
//! single-part delivery retried after a crash between the send and the ack
//! is then not repeated either, and one rule is simpler than two. The cost
//! is one Redis GET and one SET per part.

use std::future::Future;

use crate::machinery::store::{DEFAULT_DONE_TTL, Store};
use crate::platform::DeliveryError;

/// The marker id of one part of an envelope.
pub fn part_id(envelope_id: &str, index: usize) -> String {
    format!("{envelope_id}#{index}")
}

/// Sends every part of envelope `envelope_id` not yet marked as sent (store
/// kind `kind`: each platform keeps its own), in order, with `send(index,
/// part)`, which returns the platform's id of what it sent, if any.
///
/// Returns the id of the last part sent now that returned one (parts
/// skipped as already sent have no id to give). Stops at the first error of
/// `send` and returns it as is; the parts before it stay marked. A store
/// that cannot be read is a retryable error; a marker that cannot be
/// written only logs, since the part did go out.
pub async fn send_parts<'p, P, F, Fut>(
    store: &Store,
    tenant: &str,
    kind: &str,
    envelope_id: &str,
    parts: &'p [P],
    mut send: F,
) -> Result<Option<String>, DeliveryError>
where
    F: FnMut(usize, &'p P) -> Fut,
    Fut: Future<Output = Result<Option<String>, DeliveryError>>,
{
    let mut last_id = None;
    for (index, part) in parts.iter().enumerate() {
        let part_id = part_id(envelope_id, index);
        let marked = store.get(tenant, kind, &part_id).await.map_err(|error| {
            DeliveryError::retry(format!("sent-part marker {part_id}: {error}"))
        })?;
        if marked.is_some() {
            continue;
        }
        if let Some(id) = send(index, part).await? {
            last_id = Some(id);
        }
        if let Err(error) = store
            .set(tenant, kind, &part_id, "1", DEFAULT_DONE_TTL)
            .await
        {
            tracing::warn!(tenant, part = %part_id, error = %error, "sent-part marker not written");
        }
    }
    Ok(last_id)
}
