//! Shared state of one Genesys simulator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::error_body::ErrorBody;
use super::faults::Faults;
use super::responses::ResponseSeed;
use super::{
    CreateCompletion, GenesysOptions, GenesysRecordKind, InboundRecord, IntegrationRecord,
    OutboundRecord, WebhookAttempt, WebhookRetryPolicy,
};
use crate::SimError;
use crate::recording::{RecordList, RequestRecord};

/// Settings that tests may change while the simulator runs.
pub(crate) struct RuntimeConfig {
    pub token_lifetime: Duration,
    pub rate_limit_per_minute: u32,
    pub create_completion: CreateCompletion,
    pub webhook_retry: WebhookRetryPolicy,
}

pub(crate) struct Token {
    pub client_id: String,
    pub expires_at: Instant,
}

pub(crate) struct RateWindow {
    pub started: Instant,
    pub count: u32,
}

pub(crate) enum CreateState {
    Pending {
        gets_left: u32,
        ready_at: Option<Instant>,
        outcome: Option<ErrorBody>,
    },
    Completed,
    Failed(ErrorBody),
}

pub(crate) struct Integration {
    pub id: String,
    pub name: String,
    pub webhook_url: String,
    pub secret_token: String,
    pub webhook_headers: BTreeMap<String, String>,
    pub supported_content: Option<Value>,
    pub messaging_setting: Option<Value>,
    pub recipient_id: String,
    pub created_by: String,
    pub modified_by: String,
    pub date_created: String,
    pub date_modified: String,
    pub create_state: CreateState,
}

pub(crate) const INTEGRATIONS_PATH: &str = "/api/v2/conversations/messaging/integrations/open";
/// The id of the default supported content profile every org has.
pub(crate) const DEFAULT_SUPPORTED_CONTENT_ID: &str = "5d0fc3b7-0c84-4f5e-9a8c-4b3e2a1d0c01";

impl Integration {
    pub fn create_status(&self) -> &'static str {
        match self.create_state {
            CreateState::Pending { .. } => "Initiated",
            CreateState::Completed => "Completed",
            CreateState::Failed(_) => "Error",
        }
    }

    /// Moves an asynchronous create forward on a GET.
    pub fn observe(&mut self) {
        if let CreateState::Pending {
            gets_left,
            ready_at,
            outcome,
        } = &mut self.create_state
        {
            *gets_left = gets_left.saturating_sub(1);
            let time_ok = ready_at.is_none_or(|at| Instant::now() >= at);
            if *gets_left == 0 && time_ok {
                self.create_state = match outcome.take() {
                    None => CreateState::Completed,
                    Some(error) => CreateState::Failed(error),
                };
            }
        }
    }

    pub fn record(&self) -> IntegrationRecord {
        IntegrationRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            webhook_url: self.webhook_url.clone(),
            secret_token: self.secret_token.clone(),
            webhook_headers: self.webhook_headers.clone(),
            create_status: self.create_status().to_owned(),
            supported_content_id: self
                .supported_content
                .as_ref()
                .and_then(|v| v["id"].as_str())
                .map(str::to_owned),
            messaging_setting_id: self
                .messaging_setting
                .as_ref()
                .and_then(|v| v["id"].as_str())
                .map(str::to_owned),
        }
    }

    /// The `OpenIntegration` JSON.
    pub fn to_json(&self) -> Value {
        let self_uri = format!("{INTEGRATIONS_PATH}/{}", self.id);
        let user = |id: &str| json!({"id": id, "selfUri": format!("/api/v2/users/{id}")});
        let supported = self
            .supported_content
            .clone()
            .unwrap_or_else(|| json!({"id": DEFAULT_SUPPORTED_CONTENT_ID, "name": "Default Supported Content Profile"}));
        let mut body = json!({
            "id": self.id,
            "name": self.name,
            "supportedContent": with_self_uri(supported, "/api/v2/conversations/messaging/supportedcontent"),
            "outboundNotificationWebhookUrl": self.webhook_url,
            "outboundNotificationWebhookSignatureSecretToken": self.secret_token,
            "webhookHeaders": self.webhook_headers,
            "status": "Active",
            "recipient": {"id": self.recipient_id, "selfUri": format!("/api/v2/routing/message/recipients/{}", self.recipient_id)},
            "dateCreated": self.date_created,
            "dateModified": self.date_modified,
            "createdBy": user(&self.created_by),
            "modifiedBy": user(&self.modified_by),
            "createStatus": self.create_status(),
            "selfUri": self_uri,
        });
        if let Some(setting) = &self.messaging_setting {
            body["messagingSetting"] =
                with_self_uri(setting.clone(), "/api/v2/conversations/messaging/settings");
        }
        if let CreateState::Failed(error) = &self.create_state {
            body["createError"] = serde_json::to_value(error).unwrap_or(Value::Null);
        }
        body
    }
}

fn with_self_uri(mut reference: Value, base: &str) -> Value {
    if let Some(id) = reference["id"].as_str().map(str::to_owned) {
        reference["selfUri"] = Value::String(format!("{base}/{id}"));
    }
    reference
}

/// A guest's conversation on one integration.
pub(crate) struct Guest {
    pub conversation_id: String,
    pub id_type: String,
}

pub(crate) struct GenesysState {
    pub config: Mutex<RuntimeConfig>,
    pub clients: Mutex<BTreeMap<String, String>>,
    pub tokens: Mutex<HashMap<String, Token>>,
    pub rate: Mutex<HashMap<String, RateWindow>>,
    pub integrations: Mutex<Vec<Integration>>,
    pub deleted: Mutex<Vec<String>>,
    /// (integration id, guest id) → conversation.
    pub guests: Mutex<HashMap<(String, String), Guest>>,
    /// Outbound message id → integration id, for receipt checking.
    pub outbound_ids: Mutex<HashMap<String, String>>,
    pub faults: Faults,
    pub create_failures: Mutex<VecDeque<ErrorBody>>,
    pub responses: Mutex<ResponseSeed>,
    pub http: reqwest::Client,
    pub inbound_messages: RecordList<InboundRecord>,
    pub inbound_events: RecordList<InboundRecord>,
    pub receipts: RecordList<InboundRecord>,
    pub structured_responses: RecordList<InboundRecord>,
    pub outbound: RecordList<OutboundRecord>,
    pub webhook_attempts: RecordList<WebhookAttempt>,
    pub requests: RecordList<RequestRecord>,
}

impl GenesysState {
    pub fn new(options: GenesysOptions) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(SimError::HttpClient)?;
        Ok(Self {
            config: Mutex::new(RuntimeConfig {
                token_lifetime: options.token_lifetime,
                rate_limit_per_minute: options.rate_limit_per_minute,
                create_completion: options.create_completion,
                webhook_retry: options.webhook_retry,
            }),
            clients: Mutex::new(options.oauth_clients),
            tokens: Mutex::new(HashMap::new()),
            rate: Mutex::new(HashMap::new()),
            integrations: Mutex::new(Vec::new()),
            deleted: Mutex::new(Vec::new()),
            guests: Mutex::new(HashMap::new()),
            outbound_ids: Mutex::new(HashMap::new()),
            faults: Faults::default(),
            create_failures: Mutex::new(VecDeque::new()),
            responses: Mutex::new(options.response_seed),
            http,
            inbound_messages: RecordList::new(),
            inbound_events: RecordList::new(),
            receipts: RecordList::new(),
            structured_responses: RecordList::new(),
            outbound: RecordList::new(),
            webhook_attempts: RecordList::new(),
            requests: RecordList::new(),
        })
    }

    pub fn record_len(&self, kind: GenesysRecordKind) -> usize {
        match kind {
            GenesysRecordKind::InboundMessage => self.inbound_messages.len(),
            GenesysRecordKind::InboundEvent => self.inbound_events.len(),
            GenesysRecordKind::Receipt => self.receipts.len(),
            GenesysRecordKind::StructuredResponse => self.structured_responses.len(),
            GenesysRecordKind::Outbound => self.outbound.len(),
            GenesysRecordKind::WebhookAttempt => self.webhook_attempts.len(),
            GenesysRecordKind::Request => self.requests.len(),
        }
    }

    pub async fn wait_for(&self, kind: GenesysRecordKind, count: usize, timeout: Duration) -> bool {
        match kind {
            GenesysRecordKind::InboundMessage => {
                self.inbound_messages.wait_len(count, timeout).await
            }
            GenesysRecordKind::InboundEvent => self.inbound_events.wait_len(count, timeout).await,
            GenesysRecordKind::Receipt => self.receipts.wait_len(count, timeout).await,
            GenesysRecordKind::StructuredResponse => {
                self.structured_responses.wait_len(count, timeout).await
            }
            GenesysRecordKind::Outbound => self.outbound.wait_len(count, timeout).await,
            GenesysRecordKind::WebhookAttempt => {
                self.webhook_attempts.wait_len(count, timeout).await
            }
            GenesysRecordKind::Request => self.requests.wait_len(count, timeout).await,
        }
    }

    pub fn clear_records(&self) {
        self.inbound_messages.clear();
        self.inbound_events.clear();
        self.receipts.clear();
        self.structured_responses.clear();
        self.outbound.clear();
        self.webhook_attempts.clear();
        self.requests.clear();
    }
}

/// Genesys-style message ids: 32 lowercase hex digits.
pub(crate) fn new_message_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
