//! `send_parts` against a real Redis: a retry sends only the parts that did
//! not go out, markers belong to one envelope, the last platform id comes
//! back.

mod machinery_common;

use machinery_common::*;
use um_connector::machinery::parts::{part_id, send_parts};
use um_connector::platform::DeliveryError;

const KIND: &str = "test-sent-part";
const TENANT: &str = "shop.acme";

/// Sends `parts` of `envelope_id`, recording the index of every call; the
/// call at index `fail_at` fails (retryable), every other one answers
/// `id-<part>`.
async fn attempt(
    store: &um_connector::machinery::store::Store,
    envelope_id: &str,
    parts: &[&str],
    fail_at: Option<usize>,
    calls: &mut Vec<usize>,
) -> Result<Option<String>, DeliveryError> {
    send_parts(store, TENANT, KIND, envelope_id, parts, |index, part| {
        calls.push(index);
        async move {
            if fail_at == Some(index) {
                return Err(DeliveryError::retry(format!("{part} refused")));
            }
            Ok(Some(format!("id-{part}")))
        }
    })
    .await
}

#[tokio::test]
async fn a_retry_after_a_failed_part_sends_only_that_part_and_the_rest() {
    let store = store(&unique("t-parts")).await;
    let envelope_id = uuid::Uuid::new_v4().to_string();
    let parts = ["a", "b", "c"];
    let mut calls = Vec::new();

    let failed = attempt(&store, &envelope_id, &parts, Some(1), &mut calls).await;
    assert_eq!(failed, Err(DeliveryError::retry("b refused")));
    assert_eq!(calls, vec![0, 1], "stops at the failed part");

    let retried = attempt(&store, &envelope_id, &parts, None, &mut calls).await;
    assert_eq!(retried, Ok(Some("id-c".to_owned())));
    assert_eq!(calls, vec![0, 1, 1, 2], "part 0 is not sent again");

    // Every part is marked now: a redelivery sends nothing.
    let again = attempt(&store, &envelope_id, &parts, None, &mut calls).await;
    assert_eq!(again, Ok(None));
    assert_eq!(calls.len(), 4);
}

#[tokio::test]
async fn markers_belong_to_one_envelope() {
    let store = store(&unique("t-parts")).await;
    let first = uuid::Uuid::new_v4().to_string();
    let second = uuid::Uuid::new_v4().to_string();
    let parts = ["a", "b"];
    let mut calls = Vec::new();

    attempt(&store, &first, &parts, None, &mut calls)
        .await
        .expect("first envelope sent");
    for index in 0..parts.len() {
        assert!(
            store
                .get(TENANT, KIND, &part_id(&first, index))
                .await
                .expect("Redis reachable")
                .is_some(),
            "part {index} of the first envelope is marked"
        );
    }
    let sent = attempt(&store, &second, &parts, None, &mut calls).await;
    assert_eq!(sent, Ok(Some("id-b".to_owned())));
    assert_eq!(calls, vec![0, 1, 0, 1], "the second envelope sends all");
}

#[tokio::test]
async fn a_single_part_is_marked_too() {
    let store = store(&unique("t-parts")).await;
    let envelope_id = uuid::Uuid::new_v4().to_string();
    let mut calls = Vec::new();

    let sent = attempt(&store, &envelope_id, &["only"], None, &mut calls).await;
    assert_eq!(sent, Ok(Some("id-only".to_owned())));
    // A redelivery after a crash between the send and the ack.
    let again = attempt(&store, &envelope_id, &["only"], None, &mut calls).await;
    assert_eq!(again, Ok(None));
    assert_eq!(calls, vec![0]);
}

#[tokio::test]
async fn the_last_id_is_that_of_the_last_part_that_returned_one() {
    let store = store(&unique("t-parts")).await;
    let envelope_id = uuid::Uuid::new_v4().to_string();
    // Telegram's sendMediaGroup, say, answers without a message id.
    let answers = [Some("m-1"), Some("m-2"), None];
    let last = send_parts(
        &store,
        TENANT,
        KIND,
        &envelope_id,
        &answers,
        |_, answer| async move { Ok(answer.map(str::to_owned)) },
    )
    .await;
    assert_eq!(last, Ok(Some("m-2".to_owned())));
}
