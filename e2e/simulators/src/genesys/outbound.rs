//! Agent side: builds `OpenOutboundNormalizedMessage` bodies (pure) and
//! delivers them to the integration's webhook, signed, with Genesys'
//! retry policy.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::error_body::ErrorBody;
use super::state::{GenesysState, Guest, new_message_id, now_iso};
use super::{OutboundRecord, WebhookAttempt};
use crate::SimError;
use crate::recording::lock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum OriginatingEntity {
    #[default]
    Human,
    Bot,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardAction {
    /// `Link` or `Postback`.
    pub kind: String,
    pub text: String,
    pub payload: Option<String>,
    pub url: Option<String>,
}

impl CardAction {
    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            kind: "Link".into(),
            text: text.into(),
            payload: None,
            url: Some(url.into()),
        }
    }
    pub fn postback(text: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            kind: "Postback".into(),
            text: text.into(),
            payload: Some(payload.into()),
            url: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub title: String,
    pub description: Option<String>,
    pub image: Option<String>,
    pub actions: Vec<CardAction>,
}

/// One item of the outbound `content[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum OutboundContent {
    Attachment {
        /// `Image`, `Video`, `Audio`, `File` or `Link`.
        media_type: String,
        url: String,
        mime: String,
        filename: Option<String>,
        text: Option<String>,
        content_size_bytes: Option<u64>,
    },
    QuickReply {
        text: String,
        payload: String,
    },
    Card(Card),
    Carousel(Vec<Card>),
    /// A message template; `body_text` already substituted, as Genesys sends it.
    Notification {
        body_text: String,
        parameters: Vec<(String, String)>,
        header_text: Option<String>,
        footer_text: Option<String>,
    },
    /// Any content item, sent as given (e.g. DatePicker).
    Raw(Value),
}

/// What the agent sends; turned into an `OpenOutboundNormalizedMessage`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessageSpec {
    /// The guest's `from.id` from inbound messages.
    pub to_id: String,
    /// Defaults to the guest's inbound `idType`, else `Opaque`.
    pub to_id_type: Option<String>,
    pub text: Option<String>,
    pub content: Vec<OutboundContent>,
    /// `Some(duration_ms)` makes this a typing event (`type: Event`).
    pub typing: Option<Option<u64>>,
    pub originating_entity: OriginatingEntity,
    /// Overrides the generated message id.
    pub message_id: Option<String>,
}

impl OutboundMessageSpec {
    fn empty(to: impl Into<String>) -> Self {
        Self {
            to_id: to.into(),
            to_id_type: None,
            text: None,
            content: Vec::new(),
            typing: None,
            originating_entity: OriginatingEntity::Human,
            message_id: None,
        }
    }

    pub fn text(to: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::empty(to)
        }
    }

    pub fn attachment(
        to: impl Into<String>,
        media_type: &str,
        url: impl Into<String>,
        mime: impl Into<String>,
        filename: Option<&str>,
    ) -> Self {
        Self::empty(to).with_content(OutboundContent::Attachment {
            media_type: media_type.to_owned(),
            url: url.into(),
            mime: mime.into(),
            filename: filename.map(str::to_owned),
            text: None,
            content_size_bytes: None,
        })
    }

    pub fn quick_replies(
        to: impl Into<String>,
        prompt: impl Into<String>,
        replies: &[(&str, &str)],
    ) -> Self {
        let mut spec = Self::text(to, prompt);
        for (text, payload) in replies {
            spec.content.push(OutboundContent::QuickReply {
                text: (*text).to_owned(),
                payload: (*payload).to_owned(),
            });
        }
        spec
    }

    pub fn card(to: impl Into<String>, card: Card) -> Self {
        Self::empty(to).with_content(OutboundContent::Card(card))
    }

    pub fn carousel(to: impl Into<String>, cards: Vec<Card>) -> Self {
        Self::empty(to).with_content(OutboundContent::Carousel(cards))
    }

    pub fn notification(
        to: impl Into<String>,
        body_text: impl Into<String>,
        parameters: &[(&str, &str)],
    ) -> Self {
        let body_text = body_text.into();
        Self {
            text: Some(body_text.clone()),
            ..Self::empty(to).with_content(OutboundContent::Notification {
                body_text,
                parameters: parameters
                    .iter()
                    .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
                    .collect(),
                header_text: None,
                footer_text: None,
            })
        }
    }

    pub fn typing(to: impl Into<String>, duration_ms: Option<u64>) -> Self {
        Self {
            typing: Some(duration_ms),
            ..Self::empty(to)
        }
    }

    pub fn with_content(mut self, content: OutboundContent) -> Self {
        self.content.push(content);
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn from_bot(mut self) -> Self {
        self.originating_entity = OriginatingEntity::Bot;
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    pub fn with_to_id_type(mut self, id_type: impl Into<String>) -> Self {
        self.to_id_type = Some(id_type.into());
        self
    }

    /// `Event` for typing, `Structured` when any content is not an
    /// attachment, else `Text`.
    pub fn message_type(&self) -> &'static str {
        if self.typing.is_some() {
            "Event"
        } else if self
            .content
            .iter()
            .any(|item| !matches!(item, OutboundContent::Attachment { .. }))
        {
            "Structured"
        } else {
            "Text"
        }
    }
}

fn card_json(card: &Card) -> Value {
    let actions: Vec<Value> = card
        .actions
        .iter()
        .map(|action| {
            let mut item = json!({"type": action.kind, "text": action.text});
            if let Some(payload) = &action.payload {
                item["payload"] = json!(payload);
            }
            if let Some(url) = &action.url {
                item["url"] = json!(url);
            }
            item
        })
        .collect();
    let mut body = json!({"title": card.title, "actions": actions});
    if let Some(description) = &card.description {
        body["description"] = json!(description);
    }
    if let Some(image) = &card.image {
        body["image"] = json!(image);
    }
    if let Some(first) = actions.first() {
        body["defaultAction"] = first.clone();
    }
    body
}

fn content_json(item: &OutboundContent) -> Value {
    match item {
        OutboundContent::Attachment {
            media_type,
            url,
            mime,
            filename,
            text,
            content_size_bytes,
        } => {
            let mut attachment =
                json!({"id": new_message_id(), "mediaType": media_type, "url": url, "mime": mime});
            if let Some(filename) = filename {
                attachment["filename"] = json!(filename);
            }
            if let Some(text) = text {
                attachment["text"] = json!(text);
            }
            if let Some(size) = content_size_bytes {
                attachment["contentSizeBytes"] = json!(size);
            }
            json!({"contentType": "Attachment", "attachment": attachment})
        }
        OutboundContent::QuickReply { text, payload } => {
            json!({"contentType": "QuickReply", "quickReply": {"text": text, "payload": payload, "action": "Message"}})
        }
        OutboundContent::Card(card) => json!({"contentType": "Card", "card": card_json(card)}),
        OutboundContent::Carousel(cards) => {
            json!({"contentType": "Carousel", "carousel": {"cards": cards.iter().map(card_json).collect::<Vec<_>>()}})
        }
        OutboundContent::Notification {
            body_text,
            parameters,
            header_text,
            footer_text,
        } => {
            let parameters: Vec<Value> = parameters
                .iter()
                .map(|(name, text)| json!({"name": name, "text": text}))
                .collect();
            let mut template = json!({"body": {"text": body_text, "parameters": parameters}});
            if let Some(header) = header_text {
                template["header"] = json!({"type": "Text", "text": header, "parameters": []});
            }
            if let Some(footer) = footer_text {
                template["footer"] = json!({"text": footer});
            }
            json!({"contentType": "Notification", "template": template})
        }
        OutboundContent::Raw(value) => value.clone(),
    }
}

/// The webhook body for one agent message (pure; ids and time given).
pub(crate) fn build_body(
    spec: &OutboundMessageSpec,
    integration_id: &str,
    integration_name: &str,
    conversation_id: &str,
    message_id: &str,
    to_id_type: &str,
    time: &str,
) -> Value {
    let mut body = json!({
        "id": message_id,
        "channel": {
            "id": integration_id,
            "platform": "Open",
            "type": "Private",
            "messageId": message_id,
            "to": {"id": spec.to_id, "idType": to_id_type},
            "from": {"nickname": integration_name, "id": integration_id, "idType": "Opaque"},
            "time": time,
        },
        "conversationId": conversation_id,
        "direction": "Outbound",
        "originatingEntity": spec.originating_entity,
        "type": spec.message_type(),
    });
    if let Some(duration) = spec.typing {
        let mut typing = json!({"type": "On"});
        if let Some(ms) = duration {
            typing["duration"] = json!(ms);
        }
        body["events"] = json!([{"eventType": "Typing", "typing": typing}]);
        return body;
    }
    if let Some(text) = &spec.text {
        body["text"] = json!(text);
    }
    body["content"] = Value::Array(spec.content.iter().map(content_json).collect());
    body
}

/// `sha256=` + base64(HMAC-SHA256(key = secret token, raw body)).
pub fn sign_body(secret_token: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_token.as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// One webhook POST's result: an HTTP status or a transport error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl AttemptResult {
    fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// Timeouts and transport errors, 429 and 5xx are retried.
    fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status == 429 || status >= 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOutcome {
    pub message_id: String,
    pub conversation_id: String,
    pub delivered: bool,
    pub attempts: Vec<AttemptResult>,
    /// The exact JSON that was posted.
    pub body: Value,
}

impl WebhookOutcome {
    pub fn final_status(&self) -> Option<u16> {
        self.attempts.last().and_then(|attempt| attempt.status)
    }
}

struct Target {
    url: String,
    name: String,
    secret: String,
    headers: Vec<(String, String)>,
}

pub(crate) async fn send_agent_message(
    state: &Arc<GenesysState>,
    integration_id: &str,
    spec: OutboundMessageSpec,
) -> Result<WebhookOutcome, SimError> {
    let target = {
        let integrations = lock(&state.integrations);
        let integration = integrations
            .iter()
            .find(|integration| integration.id == integration_id)
            .ok_or_else(|| SimError::UnknownIntegration(integration_id.to_owned()))?;
        Target {
            url: integration.webhook_url.clone(),
            name: integration.name.clone(),
            secret: integration.secret_token.clone(),
            headers: integration
                .webhook_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    };
    // A guest without a conversation still gets the message, as with an
    // agentless message, which opens one.
    let (conversation_id, known_id_type) = {
        let mut guests = lock(&state.guests);
        let guest = guests
            .entry((integration_id.to_owned(), spec.to_id.clone()))
            .or_insert_with(|| Guest {
                conversation_id: uuid::Uuid::new_v4().to_string(),
                id_type: "Opaque".to_owned(),
            });
        (guest.conversation_id.clone(), guest.id_type.clone())
    };
    let to_id_type = spec.to_id_type.clone().unwrap_or(known_id_type);
    let message_id = spec.message_id.clone().unwrap_or_else(new_message_id);
    let body = build_body(
        &spec,
        integration_id,
        &target.name,
        &conversation_id,
        &message_id,
        &to_id_type,
        &now_iso(),
    );
    let raw = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    lock(&state.outbound_ids).insert(message_id.clone(), integration_id.to_owned());
    let attempts = deliver(state, integration_id, &message_id, &target, raw).await;
    let outcome = WebhookOutcome {
        delivered: attempts.last().is_some_and(AttemptResult::succeeded),
        message_id: message_id.clone(),
        conversation_id: conversation_id.clone(),
        attempts,
        body: body.clone(),
    };
    state.outbound.push(OutboundRecord {
        integration_id: integration_id.to_owned(),
        message_id,
        conversation_id,
        body,
        outcome: outcome.clone(),
    });
    Ok(outcome)
}

async fn deliver(
    state: &GenesysState,
    integration_id: &str,
    message_id: &str,
    target: &Target,
    raw: Bytes,
) -> Vec<AttemptResult> {
    let policy = lock(&state.config).webhook_retry;
    let signature = sign_body(&target.secret, &raw);
    let mut results = Vec::new();
    for attempt in 0..=policy.retries {
        if attempt > 0 {
            tokio::time::sleep(policy.interval).await;
        }
        let mut request = state
            .http
            .post(&target.url)
            .timeout(policy.timeout)
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", &signature)
            .body(raw.clone());
        for (name, value) in &target.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let result = match request.send().await {
            Ok(response) => AttemptResult {
                status: Some(response.status().as_u16()),
                error: None,
            },
            Err(error) if error.is_timeout() => AttemptResult {
                status: None,
                error: Some(format!("timeout after {:?}", started.elapsed())),
            },
            Err(error) => AttemptResult {
                status: None,
                error: Some(error.to_string()),
            },
        };
        state.webhook_attempts.push(WebhookAttempt {
            integration_id: integration_id.to_owned(),
            message_id: message_id.to_owned(),
            attempt,
            result: result.clone(),
        });
        let done = result.succeeded() || !result.retryable();
        results.push(result);
        if done {
            break;
        }
    }
    results
}

/// `POST /api/v2/conversations/messages/agentless` for open messaging:
/// answers at once and delivers the text to the webhook in the background.
pub(crate) async fn agentless(State(state): State<Arc<GenesysState>>, raw: Bytes) -> Response {
    let body = match super::validate::object(&raw) {
        Ok(body) => Value::Object(body),
        Err(error) => return error.into_response(),
    };
    for field in [
        "fromAddress",
        "toAddress",
        "toAddressMessengerType",
        "textBody",
    ] {
        if !body[field].is_string() {
            return ErrorBody::bad_request(format!("Missing required property '{field}'"))
                .into_response();
        }
    }
    if body["toAddressMessengerType"] != "open" {
        return ErrorBody::bad_request("The simulator supports toAddressMessengerType 'open' only")
            .into_response();
    }
    let integration_id = body["fromAddress"].as_str().unwrap_or_default().to_owned();
    let exists = lock(&state.integrations)
        .iter()
        .any(|integration| integration.id == integration_id);
    if !exists {
        return ErrorBody::not_found(format!("Open integration {integration_id} not found"))
            .into_response();
    }
    let to = body["toAddress"].as_str().unwrap_or_default().to_owned();
    let text = body["textBody"].as_str().unwrap_or_default().to_owned();
    let message_id = new_message_id();
    let spec = OutboundMessageSpec::text(to.clone(), text.clone()).with_id(message_id.clone());
    let conversation_id = {
        let mut guests = lock(&state.guests);
        guests
            .entry((integration_id.clone(), to.clone()))
            .or_insert_with(|| Guest {
                conversation_id: uuid::Uuid::new_v4().to_string(),
                id_type: "Opaque".to_owned(),
            })
            .conversation_id
            .clone()
    };
    let background = state.clone();
    let background_integration = integration_id.clone();
    tokio::spawn(async move {
        if let Err(error) = send_agent_message(&background, &background_integration, spec).await {
            tracing::warn!(%error, "agentless delivery failed");
        }
    });
    Json(json!({
        "id": message_id,
        "conversationId": conversation_id,
        "fromAddress": integration_id,
        "toAddress": to,
        "messengerType": "open",
        "textBody": text,
        "timestamp": now_iso(),
        "selfUri": format!("/api/v2/conversations/messages/agentless/{message_id}"),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_message_body_has_documented_shape() {
        let spec = OutboundMessageSpec::text("U1", "Hello World");
        let body = build_body(
            &spec,
            "int-1",
            "Acme",
            "conv-1",
            "m1",
            "Opaque",
            "2021-02-01T15:04:05.123Z",
        );
        assert_eq!(body["type"], "Text");
        assert_eq!(
            body["channel"]["to"],
            json!({"id": "U1", "idType": "Opaque"})
        );
        assert_eq!(
            body["channel"]["from"],
            json!({"nickname": "Acme", "id": "int-1", "idType": "Opaque"})
        );
        assert_eq!(body["channel"]["messageId"], "m1");
        assert_eq!(body["direction"], "Outbound");
        assert_eq!(body["originatingEntity"], "Human");
        assert_eq!(body["content"], json!([]));
    }

    #[test]
    fn quick_replies_are_structured_with_prompt_in_text() {
        let spec = OutboundMessageSpec::quick_replies("U1", "Pick", &[("Yes", "y"), ("No", "n")])
            .from_bot();
        let body = build_body(&spec, "i", "n", "c", "m", "Opaque", "t");
        assert_eq!(body["type"], "Structured");
        assert_eq!(body["text"], "Pick");
        assert_eq!(body["originatingEntity"], "Bot");
        assert_eq!(
            body["content"][1]["quickReply"],
            json!({"text": "No", "payload": "n", "action": "Message"})
        );
    }

    #[test]
    fn typing_is_an_event_without_content() {
        let body = build_body(
            &OutboundMessageSpec::typing("U1", Some(5000)),
            "i",
            "n",
            "c",
            "m",
            "Opaque",
            "t",
        );
        assert_eq!(body["type"], "Event");
        assert_eq!(
            body["events"],
            json!([{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}])
        );
        assert!(body.get("content").is_none());
    }

    #[test]
    fn signature_is_base64_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let signature = sign_body("Jefe", b"what do ya want for nothing?");
        let expected_hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let expected: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&expected_hex[2 * i..2 * i + 2], 16).unwrap_or_default())
            .collect();
        assert_eq!(
            signature,
            format!(
                "sha256={}",
                base64::engine::general_purpose::STANDARD.encode(expected)
            )
        );
    }
}
