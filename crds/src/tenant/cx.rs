//! `spec.cx`: the contact-center platform agents answer from.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::one_of::one_of_enum;
use crate::secret_ref::{HTTP_URL, SecretRefs, secret_refs};
use crate::{GenesysRegion, SecretKeyRef};

one_of_enum! {
    /// The contact-center platform of a Tenant: exactly one key.
    pub enum CxSpec (what = "contact-center platform under spec.cx") {
        GenesysCloud(GenesysCloudSpec) = "genesysCloud",
        PureConnect(PureConnectSpec) = "pureConnect",
    }
}

impl CxSpec {
    pub fn genesys_cloud(&self) -> Option<&GenesysCloudSpec> {
        match self {
            CxSpec::GenesysCloud(spec) => Some(spec),
            CxSpec::PureConnect(_) => None,
        }
    }

    pub fn pure_connect(&self) -> Option<&PureConnectSpec> {
        match self {
            CxSpec::PureConnect(spec) => Some(spec),
            CxSpec::GenesysCloud(_) => None,
        }
    }
}

impl SecretRefs for CxSpec {
    /// Field paths are relative to the variant (`oauthClient.clientSecret`).
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        match self {
            CxSpec::GenesysCloud(spec) => spec.secret_refs(),
            CxSpec::PureConnect(spec) => spec.secret_refs(),
        }
    }
}

/// Genesys Cloud CX through its Open Messaging API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenesysCloudSpec {
    /// Region of the Genesys Cloud organisation.
    pub region: GenesysRegion,
    /// OAuth client (client credentials grant) with the permissions to
    /// manage Open Messaging integrations and send messages.
    pub oauth_client: GenesysOAuthClient,
    /// The Open Messaging integration the operator creates for this Tenant.
    pub integration: OpenMessagingIntegrationSpec,
    /// Added to every inbound message as custom attributes (participant
    /// data), next to the platform's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_data: BTreeMap<String, String>,
    /// Name shown to guests for agent messages; absent: the agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Agent commands and canned responses. Not implemented in this
    /// version: agent messages are relayed as text whatever they start with.
    #[serde(default)]
    pub commander: CommanderSpec,
    /// Map previews of locations for the agent. Not implemented in this
    /// version: locations reach the agent without a preview image.
    #[serde(default)]
    pub google_maps: GoogleMapsSpec,
}

impl SecretRefs for GenesysCloudSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "oauthClient.clientSecret" => &self.oauth_client.client_secret,
            "integration.webhookToken" => &self.integration.webhook_token,
            "googleMaps.apiKey" => &self.google_maps.api_key,
        ]
    }
}

/// A Genesys Cloud OAuth client of type client credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenesysOAuthClient {
    /// Client id (a UUID in Genesys Cloud); not a secret.
    #[schemars(length(min = 1, max = 128))]
    pub client_id: String,
    pub client_secret: SecretKeyRef,
}

/// The Open Messaging integration of this Tenant in Genesys Cloud.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenMessagingIntegrationSpec {
    /// Integration name shown in Genesys Cloud admin.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Token Genesys signs its outbound webhook with (more than 15
    /// characters; the operator checks the length once it reads the Secret).
    pub webhook_token: SecretKeyRef,
    /// Supported content profile id; absent: the organisation's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_content_id: Option<String>,
}

/// Agent commands (`> send "Response" with key="value"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommanderSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Use the cluster's default commander settings (operator
    /// configuration) rather than this Tenant's prefix.
    #[serde(default = "default_true")]
    pub use_default: bool,
    /// Agent messages starting with this are commands.
    #[serde(default = "default_commander_prefix")]
    #[schemars(length(min = 1, max = 16), regex(pattern = r"^\S+$"))]
    pub prefix: String,
}

impl Default for CommanderSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            use_default: true,
            prefix: default_commander_prefix(),
        }
    }
}

impl From<&CommanderSpec> for um_config::CommanderConfig {
    fn from(spec: &CommanderSpec) -> Self {
        um_config::CommanderConfig {
            enabled: spec.enabled,
            use_default: spec.use_default,
            prefix: spec.prefix.clone(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_commander_prefix() -> String {
    ">".to_owned()
}

/// Location messages get a map preview image (Google Static Maps) for the
/// agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "!self.enabled || has(self.apiKey)",
        "apiKey is required when googleMaps.enabled is true",
        Some(".apiKey"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct GoogleMapsSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Google Maps Platform API key (Static Maps API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeyRef>,
    /// Zoom level of the preview; absent: 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 21))]
    pub zoom: Option<i32>,
    /// Preview size in pixels, `<width>x<height>`; absent: `600x300`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}$"))]
    pub size: Option<String>,
}

/// Which PureConnect API carries the chats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PureConnectApi {
    /// Interaction Web Tools chat API (`/websvcs`).
    #[default]
    Iwt,
    /// ICWS web chat (needs an ICWS user).
    IcwsWebchat,
}

/// Kind of queue a PureConnect chat is routed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PureConnectTargetType {
    Workgroup,
    User,
    Station,
}

/// Where PureConnect routes the chats of this Tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PureConnectTarget {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(rename = "type")]
    pub target_type: PureConnectTargetType,
}

/// A PureConnect routing context (skill-based routing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutingContext {
    pub category: String,
    pub context: String,
}

/// Genesys PureConnect (CIC) through Interaction Web Tools.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason `CxNotSupported`
/// and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.api != 'icwsWebchat' || (has(self.icwsUser) && has(self.icwsPassword))",
        "icwsUser and icwsPassword are required when api is icwsWebchat",
        Some(".icwsPassword"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct PureConnectSpec {
    /// Base URL of the primary web-services server.
    #[schemars(pattern(HTTP_URL))]
    pub primary_url: String,
    /// Base URL of the backup server, used on switchover (HTTP 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub backup_url: Option<String>,
    #[serde(default)]
    pub api: PureConnectApi,
    /// PEM CA certificate that signs the servers' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<SecretKeyRef>,
    /// Proxy for this Tenant's PureConnect calls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub proxy_url: Option<String>,
    pub target: PureConnectTarget,
    /// Chat language (`en-US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub transcript_required: bool,
    /// Chat attributes, values are templates (`{{.Guest.ID}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_info_template: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing_contexts: Vec<RoutingContext>,
    /// Template of the guest's name shown to agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name_template: Option<String>,
    /// Poll interval floor of the IWT API.
    #[serde(default = "default_min_poll_interval_ms")]
    #[schemars(range(min = 1000, max = 60000))]
    pub min_poll_interval_ms: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icws_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icws_password: Option<SecretKeyRef>,
}

fn default_min_poll_interval_ms() -> i32 {
    1000
}

impl SecretRefs for PureConnectSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["caCert" => &self.ca_cert, "icwsPassword" => &self.icws_password]
    }
}
