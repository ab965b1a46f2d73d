//! The standalone host behind `um-sim`: one loopback listener serving the
//! chosen simulators plus a JSON control API under `/__sim/` for shell
//! driven scenarios (create credentials, act as guest or agent, inject
//! faults, read and wait for recordings).

// Handlers short-circuit with a ready Response; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::SimError;
use crate::genesys::{
    CreateCompletion, FaultTarget, GenesysOptions, GenesysRecordKind, GenesysSimulator,
    OutboundContent, OutboundMessageSpec, ResponseSeed, WebhookRetryPolicy,
};
use crate::telegram::{
    ApiError, Guest, RedeliveryPolicy, TelegramOptions, TelegramRecordKind, TelegramSimulator,
    UpdateSpec,
};

/// Which simulators a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Genesys,
    Telegram,
    Both,
    Line,
    Teams,
    Viber,
    Slack,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct RetryConfig {
    pub retries: Option<u32>,
    pub max_attempts: Option<u32>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenesysConfig {
    #[serde(default)]
    pub oauth_clients: BTreeMap<String, String>,
    pub token_lifetime_secs: Option<u64>,
    pub rate_limit_per_minute: Option<u32>,
    /// GETs before `createStatus` becomes Completed (0 = at once).
    pub create_completion_gets: Option<u32>,
    pub webhook_retry: Option<RetryConfig>,
    pub response_seed: Option<ResponseSeed>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TelegramConfig {
    #[serde(default)]
    pub bot_tokens: Vec<String>,
    #[serde(default)]
    pub require_known_chats: bool,
    #[serde(default)]
    pub per_chat_per_second: u32,
    #[serde(default)]
    pub per_bot_per_second: u32,
    pub redelivery: Option<RetryConfig>,
}

/// The `--config` file (JSON).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SimConfig {
    #[serde(default)]
    pub genesys: GenesysConfig,
    #[serde(default)]
    pub telegram: TelegramConfig,
    #[serde(default)]
    pub line: crate::line::control::LineConfig,
    #[serde(default)]
    pub teams: crate::teams::control::TeamsConfig,
    #[serde(default)]
    pub viber: crate::viber::control::ViberConfig,
    #[serde(default)]
    pub slack: crate::slack::control::SlackConfig,
}

fn completion(gets: u32) -> CreateCompletion {
    if gets == 0 {
        CreateCompletion::Immediate
    } else {
        CreateCompletion::AfterGets(gets)
    }
}

fn webhook_retry(base: WebhookRetryPolicy, config: RetryConfig) -> WebhookRetryPolicy {
    WebhookRetryPolicy {
        retries: config.retries.unwrap_or(base.retries),
        interval: config
            .interval_ms
            .map_or(base.interval, Duration::from_millis),
        timeout: config
            .timeout_ms
            .map_or(base.timeout, Duration::from_millis),
    }
}

fn redelivery(base: RedeliveryPolicy, config: RetryConfig) -> RedeliveryPolicy {
    RedeliveryPolicy {
        max_attempts: config.max_attempts.unwrap_or(base.max_attempts),
        interval: config
            .interval_ms
            .map_or(base.interval, Duration::from_millis),
        timeout: config
            .timeout_ms
            .map_or(base.timeout, Duration::from_millis),
    }
}

impl GenesysConfig {
    fn options(&self) -> GenesysOptions {
        let defaults = GenesysOptions::default();
        GenesysOptions {
            oauth_clients: self.oauth_clients.clone(),
            token_lifetime: self
                .token_lifetime_secs
                .map_or(defaults.token_lifetime, Duration::from_secs),
            rate_limit_per_minute: self
                .rate_limit_per_minute
                .unwrap_or(defaults.rate_limit_per_minute),
            create_completion: self
                .create_completion_gets
                .map_or(defaults.create_completion, completion),
            webhook_retry: self.webhook_retry.map_or(defaults.webhook_retry, |c| {
                webhook_retry(defaults.webhook_retry, c)
            }),
            response_seed: self.response_seed.clone().unwrap_or(defaults.response_seed),
            ..defaults
        }
    }
}

impl TelegramConfig {
    fn options(&self) -> TelegramOptions {
        let defaults = TelegramOptions::default();
        TelegramOptions {
            bot_tokens: self.bot_tokens.clone(),
            require_known_chats: self.require_known_chats,
            per_chat_per_second: self.per_chat_per_second,
            per_bot_per_second: self.per_bot_per_second,
            redelivery: self
                .redelivery
                .map_or(defaults.redelivery, |c| redelivery(defaults.redelivery, c)),
            ..defaults
        }
    }
}

/// The simulators one host runs.
pub struct SimHost {
    pub genesys: Option<GenesysSimulator>,
    pub telegram: Option<TelegramSimulator>,
    pub line: Option<Arc<crate::line::LineSimulator>>,
    pub teams: Option<Arc<crate::teams::TeamsSimulator>>,
    pub viber: Option<Arc<crate::viber::ViberSimulator>>,
    pub slack: Option<Arc<crate::slack::SlackSimulator>>,
    addr: SocketAddr,
}

impl SimHost {
    /// Binds `listen` and builds the simulators and the merged router
    /// (simulator routes plus `/__sim/`).
    pub async fn bind(
        mode: Mode,
        config: &SimConfig,
        listen: SocketAddr,
    ) -> Result<(Arc<Self>, TcpListener, Router), SimError> {
        crate::server::ensure_loopback(listen)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let mut router = Router::new();
        let genesys = if matches!(mode, Mode::Genesys | Mode::Both) {
            let (sim, routes) = GenesysSimulator::unserved(config.genesys.options(), addr)?;
            router = router.merge(routes);
            Some(sim)
        } else {
            None
        };
        let telegram = if matches!(mode, Mode::Telegram | Mode::Both) {
            let (sim, routes) = TelegramSimulator::unserved(config.telegram.options(), addr)?;
            router = router.merge(routes);
            Some(sim)
        } else {
            None
        };
        let line = (mode == Mode::Line)
            .then(|| crate::line::LineSimulator::unserved(config.line.options(), addr))
            .transpose()?
            .map(|(sim, routes)| {
                mount(
                    &mut router,
                    "line",
                    sim,
                    routes,
                    crate::line::control::routes,
                )
            });
        let viber = (mode == Mode::Viber)
            .then(|| crate::viber::ViberSimulator::unserved(config.viber.options(), addr))
            .transpose()?
            .map(|(sim, routes)| {
                mount(
                    &mut router,
                    "viber",
                    sim,
                    routes,
                    crate::viber::control::routes,
                )
            });
        let teams = (mode == Mode::Teams)
            .then(|| crate::teams::TeamsSimulator::unserved(config.teams.options(), addr))
            .transpose()?
            .map(|(sim, routes)| {
                mount(
                    &mut router,
                    "teams",
                    sim,
                    routes,
                    crate::teams::control::routes,
                )
            });
        let slack = (mode == Mode::Slack)
            .then(|| crate::slack::SlackSimulator::unserved(config.slack.options(), addr))
            .transpose()?
            .map(|(sim, routes)| {
                mount(
                    &mut router,
                    "slack",
                    sim,
                    routes,
                    crate::slack::control::routes,
                )
            });
        let host = Arc::new(Self {
            teams,
            slack,
            genesys,
            telegram,
            line,
            viber,
            addr,
        });
        let router = router.nest("/__sim", control_router(host.clone()));
        Ok((host, listener, router))
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Merges a platform simulator's API routes and nests its control API
/// under `/__sim/<name>`.
fn mount<S>(
    router: &mut Router,
    name: &str,
    sim: S,
    routes: Router,
    control: fn(Arc<S>) -> Router,
) -> Arc<S> {
    let sim = Arc::new(sim);
    *router = std::mem::take(router)
        .merge(routes)
        .nest(&format!("/__sim/{name}"), control(sim.clone()));
    sim
}

/// Serves a bound host until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

type Host = Arc<SimHost>;

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn genesys(host: &SimHost) -> Result<&GenesysSimulator, Response> {
    host.genesys.as_ref().ok_or_else(|| {
        control_error(
            StatusCode::NOT_FOUND,
            "the Genesys simulator is not running on this host",
        )
    })
}

fn telegram(host: &SimHost) -> Result<&TelegramSimulator, Response> {
    host.telegram.as_ref().ok_or_else(|| {
        control_error(
            StatusCode::NOT_FOUND,
            "the Telegram simulator is not running on this host",
        )
    })
}

fn control_router(host: Host) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/records", get(records))
        .route("/wait", get(wait))
        .route("/clear", post(clear))
        .route("/genesys/clients", post(genesys_client))
        .route("/genesys/integrations", get(genesys_integrations))
        .route("/genesys/agent-message", post(genesys_agent_message))
        .route("/genesys/faults", post(genesys_fault))
        .route("/genesys/revoke-tokens", post(genesys_revoke))
        .route("/genesys/fail-next-create", post(genesys_fail_create))
        .route("/genesys/settings", post(genesys_settings))
        .route("/telegram/bots", post(telegram_bot))
        .route("/telegram/chats", post(telegram_chat))
        .route("/telegram/upload", post(telegram_upload))
        .route("/telegram/update", post(telegram_update))
        .route("/telegram/faults", post(telegram_fault))
        .route("/telegram/settings", post(telegram_settings))
        .with_state(host)
}

async fn health(State(host): State<Host>) -> Json<Value> {
    Json(
        json!({"base_url": host.base_url(), "genesys": host.genesys.is_some(),
               "telegram": host.telegram.is_some(), "line": host.line.is_some(), "teams": host.teams.is_some(), "viber": host.viber.is_some(),
               "slack": host.slack.is_some()}),
    )
}

/// A record kind of either simulator; the names do not overlap.
enum Kind {
    Genesys(GenesysRecordKind),
    Integrations,
    Telegram(TelegramRecordKind),
}

fn parse_kind(text: &str) -> Result<Kind, Response> {
    if text == "integrations" {
        return Ok(Kind::Integrations);
    }
    text.parse::<GenesysRecordKind>()
        .map(Kind::Genesys)
        .or_else(|_| text.parse::<TelegramRecordKind>().map(Kind::Telegram))
        .map_err(|_| {
            control_error(
                StatusCode::BAD_REQUEST,
                format!("unknown record kind '{text}'"),
            )
        })
}

fn to_json<T: serde::Serialize>(items: Vec<T>) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}

fn record_values(host: &SimHost, kind: &Kind) -> Result<Value, Response> {
    Ok(match kind {
        Kind::Integrations => {
            let sim = genesys(host)?;
            json!({"current": sim.integrations(), "deleted": sim.deleted_integration_ids()})
        }
        Kind::Genesys(kind) => {
            let sim = genesys(host)?;
            match kind {
                GenesysRecordKind::InboundMessage => to_json(sim.inbound_messages()),
                GenesysRecordKind::InboundEvent => to_json(sim.inbound_events()),
                GenesysRecordKind::Receipt => to_json(sim.receipts()),
                GenesysRecordKind::StructuredResponse => to_json(sim.structured_responses()),
                GenesysRecordKind::Outbound => to_json(sim.outbound_messages()),
                GenesysRecordKind::WebhookAttempt => to_json(sim.webhook_attempts()),
                GenesysRecordKind::Request => to_json(sim.requests()),
            }
        }
        Kind::Telegram(kind) => {
            let sim = telegram(host)?;
            match kind {
                TelegramRecordKind::Call => to_json(sim.calls()),
                TelegramRecordKind::Sent => to_json(sim.sent_messages()),
                TelegramRecordKind::Update => to_json(sim.updates()),
                TelegramRecordKind::Delivery => to_json(sim.deliveries()),
                TelegramRecordKind::CallbackAnswer => Value::Array(sim.callback_answers()),
            }
        }
    })
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
}

async fn records(State(host): State<Host>, Query(query): Query<KindQuery>) -> Response {
    match parse_kind(&query.kind).and_then(|kind| record_values(&host, &kind)) {
        Ok(values) => Json(values).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct WaitQuery {
    kind: String,
    count: usize,
    timeout_ms: Option<u64>,
}

/// Blocks until `count` records of `kind` exist: 200 when reached, 408
/// with the current count on timeout (default 10 s, at most 10 min).
async fn wait(State(host): State<Host>, Query(query): Query<WaitQuery>) -> Response {
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(10_000).min(600_000));
    let kind = match parse_kind(&query.kind) {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    let (reached, count) = match kind {
        Kind::Integrations => {
            return control_error(StatusCode::BAD_REQUEST, "cannot wait for integrations");
        }
        Kind::Genesys(kind) => match genesys(&host) {
            Ok(sim) => (
                sim.wait_for(kind, query.count, timeout).await,
                sim.count(kind),
            ),
            Err(response) => return response,
        },
        Kind::Telegram(kind) => match telegram(&host) {
            Ok(sim) => (
                sim.wait_for(kind, query.count, timeout).await,
                sim.count(kind),
            ),
            Err(response) => return response,
        },
    };
    let status = if reached {
        StatusCode::OK
    } else {
        StatusCode::REQUEST_TIMEOUT
    };
    (status, Json(json!({"reached": reached, "count": count}))).into_response()
}

async fn clear(State(host): State<Host>) -> StatusCode {
    if let Some(sim) = &host.genesys {
        sim.clear_records();
    }
    if let Some(sim) = &host.telegram {
        sim.clear_records();
    }
    if let Some(sim) = &host.slack {
        sim.clear_records();
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ClientBody {
    client_id: String,
    client_secret: String,
}

async fn genesys_client(State(host): State<Host>, Json(body): Json<ClientBody>) -> Response {
    match genesys(&host) {
        Ok(sim) => {
            sim.add_oauth_client(body.client_id, body.client_secret);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

async fn genesys_integrations(State(host): State<Host>) -> Response {
    match record_values(&host, &Kind::Integrations) {
        Ok(values) => Json(values).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct AgentMessageBody {
    integration_id: String,
    to: String,
    text: Option<String>,
    /// `[[text, payload], ...]`
    #[serde(default)]
    quick_replies: Vec<(String, String)>,
    /// `{mediaType, url, mime, filename?}`
    attachment: Option<Value>,
    /// Raw content items appended as given.
    #[serde(default)]
    content: Vec<Value>,
    typing_ms: Option<u64>,
    #[serde(default)]
    from_bot: bool,
    id: Option<String>,
    /// false: answer 202 at once and deliver in the background.
    wait: Option<bool>,
}

fn agent_spec(body: &AgentMessageBody) -> OutboundMessageSpec {
    let mut spec = match body.typing_ms {
        Some(ms) => OutboundMessageSpec::typing(body.to.clone(), (ms > 0).then_some(ms)),
        None => OutboundMessageSpec::text(body.to.clone(), body.text.clone().unwrap_or_default()),
    };
    if body.text.is_none() {
        spec.text = None;
    }
    for (text, payload) in &body.quick_replies {
        spec.content.push(OutboundContent::QuickReply {
            text: text.clone(),
            payload: payload.clone(),
        });
    }
    if let Some(attachment) = &body.attachment {
        let field = |name: &str| attachment[name].as_str().unwrap_or_default().to_owned();
        spec.content.push(OutboundContent::Attachment {
            media_type: field("mediaType"),
            url: field("url"),
            mime: field("mime"),
            filename: attachment["filename"].as_str().map(str::to_owned),
            text: attachment["text"].as_str().map(str::to_owned),
            content_size_bytes: attachment["contentSizeBytes"].as_u64(),
        });
    }
    spec.content
        .extend(body.content.iter().cloned().map(OutboundContent::Raw));
    if body.from_bot {
        spec = spec.from_bot();
    }
    if let Some(id) = &body.id {
        spec = spec.with_id(id.clone());
    }
    spec
}

async fn genesys_agent_message(
    State(host): State<Host>,
    Json(body): Json<AgentMessageBody>,
) -> Response {
    if let Err(response) = genesys(&host) {
        return response;
    }
    let spec = agent_spec(&body);
    if body.wait == Some(false) {
        let background = host.clone();
        tokio::spawn(async move {
            if let Some(sim) = &background.genesys
                && let Err(error) = sim.send_agent_message(&body.integration_id, spec).await
            {
                tracing::warn!(%error, "background agent message failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    let Some(sim) = &host.genesys else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match sim.send_agent_message(&body.integration_id, spec).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(error) => control_error(StatusCode::NOT_FOUND, error.to_string()),
    }
}

#[derive(Deserialize)]
struct GenesysFaultBody {
    /// `inbound`, `event`, `receipt`, `structured`, `oauth`, `integrations` or a path prefix.
    target: String,
    status: u16,
    #[serde(default = "one")]
    count: u32,
    retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

async fn genesys_fault(State(host): State<Host>, Json(body): Json<GenesysFaultBody>) -> Response {
    match genesys(&host) {
        Ok(sim) => {
            let target = FaultTarget::from(body.target.as_str());
            match body.retry_after {
                Some(secs) => sim.fail_next_with_retry_after(target, body.status, body.count, secs),
                None => sim.fail_next(target, body.status, body.count),
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

async fn genesys_revoke(State(host): State<Host>) -> Response {
    match genesys(&host) {
        Ok(sim) => {
            sim.revoke_tokens();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct MessageBody {
    message: String,
}

async fn genesys_fail_create(State(host): State<Host>, Json(body): Json<MessageBody>) -> Response {
    match genesys(&host) {
        Ok(sim) => {
            sim.fail_next_integration_creation(body.message);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct GenesysSettingsBody {
    rate_limit_per_minute: Option<u32>,
    create_completion_gets: Option<u32>,
    webhook_retry: Option<RetryConfig>,
}

async fn genesys_settings(
    State(host): State<Host>,
    Json(body): Json<GenesysSettingsBody>,
) -> Response {
    match genesys(&host) {
        Ok(sim) => {
            if let Some(limit) = body.rate_limit_per_minute {
                sim.set_rate_limit_per_minute(limit);
            }
            if let Some(gets) = body.create_completion_gets {
                sim.set_create_completion(completion(gets));
            }
            if let Some(retry) = body.webhook_retry {
                sim.set_webhook_retry(webhook_retry(WebhookRetryPolicy::default(), retry));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct BotBody {
    token: String,
}

async fn telegram_bot(State(host): State<Host>, Json(body): Json<BotBody>) -> Response {
    match telegram(&host) {
        Ok(sim) => {
            sim.add_bot(body.token);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize, Clone)]
struct GuestBody {
    id: i64,
    #[serde(default = "default_first_name")]
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
    language_code: Option<String>,
}

fn default_first_name() -> String {
    "Guest".to_owned()
}

impl GuestBody {
    fn guest(&self) -> Guest {
        Guest {
            id: self.id,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            username: self.username.clone(),
            language_code: self.language_code.clone(),
        }
    }
}

#[derive(Deserialize)]
struct ChatBody {
    #[serde(flatten)]
    guest: GuestBody,
    #[serde(default)]
    blocked: bool,
}

async fn telegram_chat(State(host): State<Host>, Json(body): Json<ChatBody>) -> Response {
    match telegram(&host) {
        Ok(sim) => {
            sim.add_chat(&body.guest.guest());
            if body.blocked {
                sim.block_chat(body.guest.id);
            } else {
                sim.unblock_chat(body.guest.id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct UploadBody {
    base64: String,
    mime: String,
    /// true: store as a photo with sizes (answer is the sizes array).
    #[serde(default)]
    photo: bool,
}

fn decode(data: &str) -> Result<Vec<u8>, Response> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|error| control_error(StatusCode::BAD_REQUEST, format!("base64: {error}")))
}

async fn telegram_upload(State(host): State<Host>, Json(body): Json<UploadBody>) -> Response {
    let sim = match telegram(&host) {
        Ok(sim) => sim,
        Err(response) => return response,
    };
    let bytes = match decode(&body.base64) {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    if body.photo {
        Json(sim.upload_photo(bytes, &body.mime)).into_response()
    } else {
        Json(sim.upload_file(bytes, &body.mime)).into_response()
    }
}

/// A guest update: a raw `update`, or `from` plus one of `text`,
/// `photo_base64`, `document_base64`, `location`, `callback_data`.
#[derive(Deserialize)]
struct UpdateBody {
    token: String,
    update: Option<Value>,
    from: Option<GuestBody>,
    text: Option<String>,
    caption: Option<String>,
    photo_base64: Option<String>,
    document_base64: Option<String>,
    file_name: Option<String>,
    mime: Option<String>,
    location: Option<(f64, f64)>,
    callback_data: Option<String>,
    callback_message_id: Option<i64>,
    update_id: Option<i64>,
    /// false: answer 202 at once and deliver in the background.
    wait: Option<bool>,
}

fn update_spec(sim: &TelegramSimulator, body: &UpdateBody) -> Result<UpdateSpec, Response> {
    if let Some(update) = &body.update {
        return Ok(UpdateSpec::raw(update.clone()));
    }
    let guest = body.from.as_ref().map(GuestBody::guest).ok_or_else(|| {
        control_error(
            StatusCode::BAD_REQUEST,
            "either 'update' or 'from' is required",
        )
    })?;
    let mime = body
        .mime
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut spec = if let Some(data) = &body.photo_base64 {
        UpdateSpec::photo(&guest, &sim.upload_photo(decode(data)?, &mime))
    } else if let Some(data) = &body.document_base64 {
        let file = sim.upload_file(decode(data)?, &mime);
        UpdateSpec::document(
            &guest,
            &file,
            body.file_name.clone().unwrap_or_else(|| "file".to_owned()),
        )
    } else if let Some((latitude, longitude)) = body.location {
        UpdateSpec::location(&guest, latitude, longitude)
    } else if let Some(data) = &body.callback_data {
        UpdateSpec::callback_query(&guest, data.clone(), body.callback_message_id)
    } else if let Some(text) = &body.text {
        UpdateSpec::text(&guest, text.clone())
    } else {
        return Err(control_error(
            StatusCode::BAD_REQUEST,
            "nothing to send: give text, photo_base64, document_base64, location or callback_data",
        ));
    };
    if let Some(caption) = &body.caption {
        spec = spec.with_caption(caption.clone());
    }
    if let Some(update_id) = body.update_id {
        spec = spec.with_update_id(update_id);
    }
    Ok(spec)
}

async fn telegram_update(State(host): State<Host>, Json(body): Json<UpdateBody>) -> Response {
    let spec = match telegram(&host).and_then(|sim| update_spec(sim, &body)) {
        Ok(spec) => spec,
        Err(response) => return response,
    };
    if body.wait == Some(false) {
        let background = host.clone();
        tokio::spawn(async move {
            if let Some(sim) = &background.telegram
                && let Err(error) = sim.send_update(&body.token, spec).await
            {
                tracing::warn!(%error, "background update failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    let Some(sim) = &host.telegram else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match sim.send_update(&body.token, spec).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(error) => control_error(StatusCode::CONFLICT, error.to_string()),
    }
}

#[derive(Deserialize)]
struct TelegramFaultBody {
    method: Option<String>,
    error_code: u16,
    description: Option<String>,
    #[serde(default = "one")]
    count: u32,
    retry_after: Option<u64>,
}

async fn telegram_fault(State(host): State<Host>, Json(body): Json<TelegramFaultBody>) -> Response {
    let sim = match telegram(&host) {
        Ok(sim) => sim,
        Err(response) => return response,
    };
    let error = match (body.error_code, body.retry_after) {
        (429, retry) => ApiError::too_many_requests(retry.unwrap_or(1)),
        (code, _) => ApiError::new(
            code,
            body.description
                .clone()
                .unwrap_or_else(|| format!("Simulated error {code}")),
        ),
    };
    sim.inject_error(body.method.as_deref(), error, body.count);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct TelegramSettingsBody {
    require_known_chats: Option<bool>,
    per_chat_per_second: Option<u32>,
    per_bot_per_second: Option<u32>,
    redelivery: Option<RetryConfig>,
}

async fn telegram_settings(
    State(host): State<Host>,
    Json(body): Json<TelegramSettingsBody>,
) -> Response {
    let sim = match telegram(&host) {
        Ok(sim) => sim,
        Err(response) => return response,
    };
    if let Some(required) = body.require_known_chats {
        sim.set_require_known_chats(required);
    }
    if body.per_chat_per_second.is_some() || body.per_bot_per_second.is_some() {
        sim.set_rate_limits(
            body.per_chat_per_second.unwrap_or(0),
            body.per_bot_per_second.unwrap_or(0),
        );
    }
    if let Some(config) = body.redelivery {
        sim.set_redelivery(redelivery(RedeliveryPolicy::default(), config));
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::Mode;

    /// Every platform this version serves can be simulated (`um-sim <mode>`),
    /// so its e2e scenario has a counterpart to talk to.
    #[test]
    fn every_supported_platform_has_a_simulator_mode() {
        for platform in um_config::Platform::supported() {
            assert!(
                Mode::from_str(platform.as_str(), true).is_ok(),
                "no um-sim mode for {platform}"
            );
        }
    }
}
