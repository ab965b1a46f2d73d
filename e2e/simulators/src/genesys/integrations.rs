//! Open Messaging integration CRUD with the asynchronous `createStatus`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::CreateCompletion;
use super::auth::ClientId;
use super::error_body::ErrorBody;
use super::listing::{Paging, page};
use super::state::{CreateState, GenesysState, INTEGRATIONS_PATH, Integration, now_iso};
use super::validate;
use crate::recording::lock;

fn not_found(id: &str) -> Response {
    ErrorBody::not_found(format!("Open integration {id} not found")).into_response()
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(key, value)| {
                    value.as_str().map(|text| (key.clone(), text.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reference(value: Option<&Value>) -> Option<Value> {
    value
        .filter(|reference| reference["id"].is_string())
        .cloned()
}

pub(crate) async fn create(
    State(state): State<Arc<GenesysState>>,
    Extension(ClientId(client_id)): Extension<ClientId>,
    body: Bytes,
) -> Response {
    let body = match validate::object(&body).map(Value::Object) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = validate::integration_request(&body, true) {
        return error.into_response();
    }
    let completion = lock(&state.config).create_completion;
    let failure = lock(&state.create_failures).pop_front();
    let create_state = match (completion, failure) {
        (CreateCompletion::Immediate, None) => CreateState::Completed,
        (CreateCompletion::Immediate, Some(error)) => CreateState::Failed(error),
        (CreateCompletion::AfterGets(gets), outcome) => CreateState::Pending {
            gets_left: gets.max(1),
            ready_at: None,
            outcome,
        },
        (CreateCompletion::After(delay), outcome) => CreateState::Pending {
            gets_left: 0,
            ready_at: Some(Instant::now() + delay),
            outcome,
        },
    };
    let now = now_iso();
    let integration = Integration {
        id: uuid::Uuid::new_v4().to_string(),
        name: body["name"].as_str().unwrap_or_default().to_owned(),
        webhook_url: body["outboundNotificationWebhookUrl"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        secret_token: body["outboundNotificationWebhookSignatureSecretToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        webhook_headers: string_map(body.get("webhookHeaders")),
        supported_content: reference(body.get("supportedContent")),
        messaging_setting: reference(body.get("messagingSetting")),
        recipient_id: uuid::Uuid::new_v4().to_string(),
        created_by: client_id.clone(),
        modified_by: client_id,
        date_created: now.clone(),
        date_modified: now,
        create_state,
    };
    let answer = integration.to_json();
    lock(&state.integrations).push(integration);
    Json(answer).into_response()
}

pub(crate) async fn list(
    State(state): State<Arc<GenesysState>>,
    Query(paging): Query<Paging>,
) -> Response {
    let all: Vec<Value> = lock(&state.integrations)
        .iter()
        .map(Integration::to_json)
        .collect();
    Json(page(all, &paging, INTEGRATIONS_PATH, "")).into_response()
}

pub(crate) async fn get_one(
    State(state): State<Arc<GenesysState>>,
    Path(id): Path<String>,
) -> Response {
    let mut integrations = lock(&state.integrations);
    match integrations
        .iter_mut()
        .find(|integration| integration.id == id)
    {
        Some(integration) => {
            integration.observe();
            Json(integration.to_json()).into_response()
        }
        None => not_found(&id),
    }
}

pub(crate) async fn update(
    State(state): State<Arc<GenesysState>>,
    Extension(ClientId(client_id)): Extension<ClientId>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match validate::object(&body).map(Value::Object) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = validate::integration_request(&body, false) {
        return error.into_response();
    }
    let mut integrations = lock(&state.integrations);
    let Some(integration) = integrations
        .iter_mut()
        .find(|integration| integration.id == id)
    else {
        return not_found(&id);
    };
    if let Some(name) = body["name"].as_str() {
        integration.name = name.to_owned();
    }
    if let Some(url) = body["outboundNotificationWebhookUrl"].as_str() {
        integration.webhook_url = url.to_owned();
    }
    if let Some(token) = body["outboundNotificationWebhookSignatureSecretToken"].as_str() {
        integration.secret_token = token.to_owned();
    }
    if body.get("webhookHeaders").is_some_and(Value::is_object) {
        integration.webhook_headers = string_map(body.get("webhookHeaders"));
    }
    if let Some(supported) = reference(body.get("supportedContent")) {
        integration.supported_content = Some(supported);
    }
    if let Some(setting) = reference(body.get("messagingSetting")) {
        integration.messaging_setting = Some(setting);
    }
    integration.modified_by = client_id;
    integration.date_modified = now_iso();
    Json(integration.to_json()).into_response()
}

pub(crate) async fn delete(
    State(state): State<Arc<GenesysState>>,
    Path(id): Path<String>,
) -> Response {
    let removed = {
        let mut integrations = lock(&state.integrations);
        let position = integrations
            .iter()
            .position(|integration| integration.id == id);
        position.map(|index| integrations.remove(index))
    };
    match removed {
        Some(integration) => {
            lock(&state.deleted).push(integration.id);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(&id),
    }
}
