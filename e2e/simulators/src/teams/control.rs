//! The Teams part of the `um-sim` control API, nested under `/__sim/teams`.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `POST /bots` | `{app_id, password, name}` | 204 |
//! | `POST /endpoint` | `{app_id, url}` (Azure Bot messaging endpoint) | 204 |
//! | `POST /activities` | `{app_id, conversation_id, scope?=personal, user_id, user_name, text?, value?, image_base64?+mime?, id?, token_fault?}` (an image is an inline attachment the channel serves) | `ActivityDelivery` (409 without endpoint) |
//! | `POST /keys/rotate` | | `{kid}` |
//! | `POST /keys/retire` | | 204 |
//! | `POST /faults` | `{status, retry_after?, count?=1}` | 204 |
//! | `POST /block` | `{conversation_id}` | 204 |
//! | `GET /records?kind=sent\|tokens\|deliveries\|downloads\|key_fetches` | | JSON array |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActivitySpec, TeamsConversation, TeamsOptions, TeamsSimulator, TeamsUser, TokenFault};
use crate::SimError;

/// The `teams` section of the `um-sim --config` file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TeamsConfig {
    #[serde(default)]
    pub bots: Vec<BotSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BotSpec {
    pub app_id: String,
    pub password: String,
    #[serde(default)]
    pub name: String,
}

impl TeamsConfig {
    pub fn options(&self) -> TeamsOptions {
        self.bots
            .iter()
            .fold(TeamsOptions::default(), |options, bot| {
                options.with_bot(&bot.app_id, &bot.password, &bot.name)
            })
    }
}

type Sim = Arc<TeamsSimulator>;

pub fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/bots", post(add_bot))
        .route("/endpoint", post(set_endpoint))
        .route("/activities", post(send_activity))
        .route("/keys/rotate", post(rotate))
        .route("/keys/retire", post(retire))
        .route("/faults", post(fault))
        .route("/block", post(block))
        .route("/records", get(records))
        .with_state(sim)
}

async fn add_bot(State(sim): State<Sim>, Json(bot): Json<BotSpec>) -> StatusCode {
    sim.add_bot(&bot.app_id, &bot.password, &bot.name);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct EndpointBody {
    app_id: String,
    url: String,
}

async fn set_endpoint(State(sim): State<Sim>, Json(body): Json<EndpointBody>) -> StatusCode {
    sim.set_messaging_endpoint(&body.app_id, &body.url);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ActivityBody {
    app_id: String,
    conversation_id: String,
    #[serde(default)]
    scope: Option<String>,
    user_id: String,
    user_name: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    value: Option<Value>,
    /// An inline image the user pastes (served by the channel's
    /// attachment endpoint, which needs the bot's token).
    #[serde(default)]
    image_base64: Option<String>,
    #[serde(default)]
    mime: Option<String>,
    #[serde(default)]
    id: Option<String>,
    /// `expired`, `wrong_audience`, `wrong_issuer`, `bad_signature`,
    /// `service_url_mismatch`, `not_endorsed`, `unknown_key`, `missing`.
    #[serde(default)]
    token_fault: Option<String>,
}

fn token_fault(name: Option<&str>) -> Result<TokenFault, String> {
    Ok(match name {
        None | Some("none") => TokenFault::None,
        Some("missing") => TokenFault::Missing,
        Some("expired") => TokenFault::Expired,
        Some("wrong_audience") => TokenFault::WrongAudience,
        Some("wrong_issuer") => TokenFault::WrongIssuer,
        Some("bad_signature") => TokenFault::BadSignature,
        Some("service_url_mismatch") => TokenFault::ServiceUrlMismatch,
        Some("not_endorsed") => TokenFault::NotEndorsed,
        Some("unknown_key") => TokenFault::UnknownKey,
        Some(other) => return Err(format!("unknown token_fault {other:?}")),
    })
}

async fn send_activity(State(sim): State<Sim>, Json(body): Json<ActivityBody>) -> Response {
    let fault = match token_fault(body.token_fault.as_deref()) {
        Ok(fault) => fault,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
        }
    };
    let conversation = match body.scope.as_deref() {
        Some("groupChat") => TeamsConversation::group_chat(&body.conversation_id),
        Some("channel") => TeamsConversation::channel(&body.conversation_id, "Team", "General"),
        _ => TeamsConversation::personal(&body.conversation_id),
    };
    let user = TeamsUser::new(&body.user_id, &body.user_name);
    let mut spec = match body.value {
        Some(value) => ActivitySpec::submit(&conversation, &user, value),
        None => ActivitySpec::message(
            &conversation,
            &user,
            body.text.as_deref().unwrap_or_default(),
        ),
    };
    if let Some(data) = &body.image_base64 {
        match base64::engine::general_purpose::STANDARD.decode(data) {
            Ok(bytes) => {
                let mime = body.mime.as_deref().unwrap_or("image/png");
                spec = spec.with_attachment(sim.upload_inline_image(bytes, mime));
            }
            Err(error) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("image_base64: {error}")})),
                )
                    .into_response();
            }
        }
    }
    if let Some(id) = &body.id {
        spec = spec.with_id(id);
    }
    match sim.send_activity_with(&body.app_id, spec, fault).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(error @ (SimError::NoWebhook(_) | SimError::UnknownBot(_))) => (
            StatusCode::CONFLICT,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
}

async fn rotate(State(sim): State<Sim>) -> Response {
    match sim.rotate_keys() {
        Ok(kid) => Json(json!({"kid": kid})).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
}

async fn retire(State(sim): State<Sim>) -> StatusCode {
    sim.retire_old_keys();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct FaultBody {
    status: u16,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    count: Option<u32>,
}

async fn fault(State(sim): State<Sim>, Json(body): Json<FaultBody>) -> StatusCode {
    sim.inject_fault(
        body.status,
        body.retry_after,
        body.count.unwrap_or(1).max(1),
    );
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct BlockBody {
    conversation_id: String,
}

async fn block(State(sim): State<Sim>, Json(body): Json<BlockBody>) -> StatusCode {
    sim.block_conversation(&body.conversation_id);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
}

async fn records(State(sim): State<Sim>, Query(query): Query<KindQuery>) -> Response {
    let records = match query.kind.as_str() {
        "sent" => json!(sim.sent_activities()),
        "tokens" => json!(sim.token_requests()),
        "deliveries" => json!(sim.deliveries()),
        "downloads" => json!(sim.downloads()),
        "key_fetches" => json!(sim.key_fetches()),
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("unknown kind {other:?}")})),
            )
                .into_response();
        }
    };
    Json(records).into_response()
}
