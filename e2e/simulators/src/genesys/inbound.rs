//! Inbound Open Messaging endpoints: message, typing event, receipt and
//! structured (button) response.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::InboundRecord;
use super::error_body::ErrorBody;
use super::state::{GenesysState, Guest, new_message_id};
use super::validate;
use crate::recording::lock;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InboundQuery {
    #[serde(default)]
    prefetch_conversation_id: bool,
}

/// Checks the integration exists and parses the body as an object.
fn accept(state: &GenesysState, integration_id: &str, raw: &[u8]) -> Result<Value, ErrorBody> {
    let exists = lock(&state.integrations)
        .iter()
        .any(|integration| integration.id == integration_id);
    if !exists {
        return Err(ErrorBody::not_found(format!(
            "Open integration {integration_id} not found"
        )));
    }
    validate::object(raw).map(Value::Object)
}

/// The conversation a guest's messages join on this integration.
fn conversation_for(state: &GenesysState, integration_id: &str, from: &Value) -> String {
    let guest_id = from["id"].as_str().unwrap_or_default().to_owned();
    let id_type = from["idType"].as_str().unwrap_or("Opaque").to_owned();
    let mut guests = lock(&state.guests);
    guests
        .entry((integration_id.to_owned(), guest_id))
        .or_insert_with(|| Guest {
            conversation_id: uuid::Uuid::new_v4().to_string(),
            id_type,
        })
        .conversation_id
        .clone()
}

/// The `channel` of an answer: the request's, completed by the platform.
fn answer_channel(integration_id: &str, request_channel: &Value) -> Value {
    let mut channel = request_channel.clone();
    if !channel.is_object() {
        channel = json!({});
    }
    channel["id"] = json!(integration_id);
    channel["platform"] = json!("Open");
    channel["type"] = json!("Private");
    if channel.get("to").is_none() {
        channel["to"] = json!({"id": integration_id});
    }
    channel
}

pub(crate) async fn message(
    State(state): State<Arc<GenesysState>>,
    Path(integration_id): Path<String>,
    Query(query): Query<InboundQuery>,
    raw: Bytes,
) -> Response {
    let body = match accept(&state, &integration_id, &raw)
        .and_then(|body| validate::inbound_message(&body).map(|()| body))
    {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let conversation_id = conversation_for(&state, &integration_id, &body["channel"]["from"]);
    let message_id = new_message_id();
    let mut answer = json!({
        "id": message_id,
        "channel": answer_channel(&integration_id, &body["channel"]),
        "type": "Text",
        "direction": "Inbound",
    });
    for key in ["text", "content", "metadata"] {
        if let Some(value) = body.get(key) {
            answer[key] = value.clone();
        }
    }
    if query.prefetch_conversation_id {
        answer["conversationId"] = json!(conversation_id);
    }
    state.inbound_messages.push(InboundRecord {
        integration_id,
        message_id,
        conversation_id: Some(conversation_id),
        body,
    });
    Json(answer).into_response()
}

pub(crate) async fn event(
    State(state): State<Arc<GenesysState>>,
    Path(integration_id): Path<String>,
    raw: Bytes,
) -> Response {
    let body = match accept(&state, &integration_id, &raw)
        .and_then(|body| validate::inbound_event(&body).map(|()| body))
    {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let conversation_id = lock(&state.guests)
        .get(&(
            integration_id.clone(),
            body["channel"]["from"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
        .map(|guest| guest.conversation_id.clone());
    let message_id = new_message_id();
    let answer = json!({
        "id": message_id,
        "channel": answer_channel(&integration_id, &body["channel"]),
        "type": "Event",
        "events": body["events"],
    });
    state.inbound_events.push(InboundRecord {
        integration_id,
        message_id,
        conversation_id,
        body,
    });
    Json(answer).into_response()
}

pub(crate) async fn receipt(
    State(state): State<Arc<GenesysState>>,
    Path(integration_id): Path<String>,
    raw: Bytes,
) -> Response {
    let checked = accept(&state, &integration_id, &raw)
        .and_then(|body| validate::inbound_receipt(&body).map(|id| (body, id)));
    let (body, id) = match checked {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let known = lock(&state.outbound_ids)
        .get(&id)
        .is_some_and(|owner| *owner == integration_id);
    if !known {
        let mut error = ErrorBody::bad_request(format!(
            "Message {id} was not sent through integration {integration_id}"
        ));
        error
            .details
            .push(json!({"fieldName": "id", "errorCode": "invalid.value"}));
        return error.into_response();
    }
    let conversation_id = lock(&state.guests)
        .get(&(
            integration_id.clone(),
            body["channel"]["to"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
        .map(|guest| guest.conversation_id.clone());
    let mut answer = json!({
        "id": id,
        "channel": answer_channel(&integration_id, &body["channel"]),
        "type": "Receipt",
        "status": body["status"],
        "direction": "Outbound",
        "isFinalReceipt": body.get("isFinalReceipt").cloned().unwrap_or(json!(false)),
    });
    if let Some(reasons) = body.get("reasons") {
        answer["reasons"] = reasons.clone();
    }
    state.receipts.push(InboundRecord {
        integration_id,
        message_id: id,
        conversation_id,
        body,
    });
    Json(answer).into_response()
}

pub(crate) async fn structured_response(
    State(state): State<Arc<GenesysState>>,
    Path(integration_id): Path<String>,
    raw: Bytes,
) -> Response {
    let body = match accept(&state, &integration_id, &raw)
        .and_then(|body| validate::structured_response(&body).map(|()| body))
    {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let conversation_id = conversation_for(&state, &integration_id, &body["channel"]["from"]);
    let message_id = new_message_id();
    let mut answer = json!({
        "id": message_id,
        "channel": answer_channel(&integration_id, &body["channel"]),
        "type": "Structured",
        "direction": "Inbound",
        "content": [{"contentType": "ButtonResponse", "buttonResponse": body["buttonResponse"]}],
    });
    if let Some(metadata) = body.get("metadata") {
        answer["metadata"] = metadata.clone();
    }
    state.structured_responses.push(InboundRecord {
        integration_id,
        message_id,
        conversation_id: Some(conversation_id),
        body,
    });
    Json(answer).into_response()
}

/// Participant data (`channel.metadata.customAttributes`) per conversation,
/// merged over all inbound messages, as Genesys keeps it.
pub(crate) fn participant_data(
    records: &[InboundRecord],
    conversation_id: &str,
) -> HashMap<String, String> {
    let mut data = HashMap::new();
    for record in records
        .iter()
        .filter(|record| record.conversation_id.as_deref() == Some(conversation_id))
    {
        if let Some(attributes) = record.body["channel"]["metadata"]["customAttributes"].as_object()
        {
            for (key, value) in attributes {
                if let Some(text) = value.as_str() {
                    data.insert(key.clone(), text.to_owned());
                }
            }
        }
    }
    data
}
