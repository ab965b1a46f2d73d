//! Tenant: one business relationship, one messaging platform joined to one
//! contact-center platform.

mod cx;
mod messaging;
mod one_of;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use um_config::Platform;

pub use cx::*;
pub use messaging::*;

use crate::SecretKeyRef;
use crate::secret_ref::{SecretRefs, secret_refs};

/// A Tenant joins one messaging platform (`spec.messaging`) to one
/// contact-center platform (`spec.cx`).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "messaging.universal-messaging.io",
    version = "v1alpha1",
    kind = "Tenant",
    namespaced,
    status = "TenantStatus",
    derive = "PartialEq",
    shortname = "umtenant",
    shortname = "umtn",
    category = "universal-messaging",
    doc = "A Tenant joins one messaging platform (spec.messaging) to one contact-center platform (spec.cx). Every credential is a reference to a key of a Secret in the Tenant's namespace.",
    printcolumn(
        name = "Platform",
        type_ = "string",
        json_path = ".status.platform",
        description = "Messaging platform"
    ),
    printcolumn(
        name = "CX",
        type_ = "string",
        json_path = ".status.cx",
        description = "Contact-center platform"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Webhook URL",
        type_ = "string",
        json_path = ".status.webhookUrl",
        description = "URL to configure at the messaging platform"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Integration",
        type_ = "string",
        json_path = ".status.integrationId",
        description = "Open Messaging integration id",
        priority = "1"
    ),
    printcolumn(
        name = "Add Friend QR",
        type_ = "string",
        json_path = ".status.links.addFriendQrCode",
        description = "LINE: QR code customers scan to add the account as a friend",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Name shown to agents for this Tenant.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,
    /// Subscription identifier of the business (sent to the CX platform as
    /// a custom attribute and in notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub subscription_id: Option<String>,
    /// Authentication of the IVR REST API (`/api/v1/messages`) for this
    /// Tenant. Not implemented in this version: there is no `api` service
    /// yet; the setting is validated and kept for when there is.
    #[serde(default)]
    pub api_auth: ApiAuthSpec,
    /// The contact-center platform: exactly one of genesysCloud, pureConnect.
    pub cx: CxSpec,
    /// The messaging platform: exactly one of telegram, line, slack, teams,
    /// viber, wechat, zalo, appleBusinessChat, googleChat,
    /// googleBusinessMessages, kakaoBizm, kakaoInfobank, disqus, media4u,
    /// plusMessage, bedore.
    pub messaging: MessagingSpec,
    #[serde(default)]
    pub messaging_options: MessagingOptions,
    /// Storage (same namespace) for attachments; absent: the Storage marked
    /// default. Not implemented in this version: attachments are handed
    /// over through the connectors' own signed URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_ref: Option<StorageRef>,
}

impl TenantSpec {
    pub fn platform(&self) -> Platform {
        self.messaging.platform()
    }

    /// Every Secret reference of the Tenant with its full field path
    /// (`spec.messaging.telegram.botToken`), for resolving, for watching
    /// Secrets, and for conditions that name the field.
    pub fn secret_refs(&self) -> Vec<(String, &SecretKeyRef)> {
        let messaging = self
            .messaging
            .secret_refs()
            .into_iter()
            .map(|(field, secret)| {
                (
                    format!("spec.messaging.{}.{field}", self.messaging.key()),
                    secret,
                )
            });
        let cx = self
            .cx
            .secret_refs()
            .into_iter()
            .map(|(field, secret)| (format!("spec.cx.{}.{field}", self.cx.key()), secret));
        let api = self
            .api_auth
            .secret_refs()
            .into_iter()
            .map(|(field, secret)| (format!("spec.apiAuth.{field}"), secret));
        messaging.chain(cx).chain(api).collect()
    }
}

impl Tenant {
    /// `<namespace>.<name>`: the Tenant's key in URLs, Redis and the bus.
    pub fn tenant_key(&self) -> String {
        um_config::tenant_key(&self.namespace().unwrap_or_default(), &self.name_any())
    }
}

/// How IVRs authenticate to the REST API for this Tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApiAuthType {
    #[default]
    None,
    Basic,
}

/// IVR REST API authentication: `none`, or `basic` with a username and a
/// password Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.type != 'basic' || (has(self.username) && has(self.password))",
        "username and password are required when type is basic",
        Some(".password"),
        Some(crate::cel::Reason::Required),
    ),
    crate::cel::rule(
        "self.type != 'none' || (!has(self.username) && !has(self.password))",
        "username and password are only allowed when type is basic",
        Some(".password"),
        Some(crate::cel::Reason::Forbidden),
    )
]))]
pub struct ApiAuthSpec {
    #[serde(rename = "type", default)]
    pub auth_type: ApiAuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeyRef>,
}

impl SecretRefs for ApiAuthSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["password" => &self.password]
    }
}

/// How agent messages are presented on the messaging platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagingOptions {
    /// Relay system messages (agent joined, transferred, ...) to the guest.
    /// Not implemented in this version: system messages are not relayed.
    #[serde(default)]
    pub show_system_messages: bool,
    /// Prefix agent messages with the agent's name.
    #[serde(default)]
    pub prefix_agent_name: bool,
}

impl From<&MessagingOptions> for um_config::MessagingOptions {
    fn from(options: &MessagingOptions) -> Self {
        um_config::MessagingOptions {
            show_system_messages: options.show_system_messages,
            prefix_agent_name: options.prefix_agent_name,
        }
    }
}

/// A Storage in the Tenant's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorageRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator observed and did for a Tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Kubernetes conditions, one per type: Ready, CredentialsResolved,
    /// IntegrationRegistered, ConnectorAvailable, StorageResolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The messaging platform key of spec.messaging (for printer columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The contact-center key of spec.cx (for printer columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cx: Option<String>,
    /// The URL to configure at the messaging platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The URL registered in Genesys Cloud for agent messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_messaging_webhook_url: Option<String>,
    /// Id of the Open Messaging integration in Genesys Cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// Pages the Tenant's connector serves for administrators, when its
    /// platform has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<TenantLinks>,
}

/// Pages the connector serves for a Tenant's administrators, all under
/// `status.webhookUrl`. None of them shows a credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantLinks {
    /// LINE: the QR code (SVG) customers scan to add the LINE Official
    /// Account as a friend; `qr.png` beside it is the same code as PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_friend_qr_code: Option<String>,
    /// LINE: the add-friend link as JSON (`basicId`, `url`, `qrCode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_friend_link: Option<String>,
    /// Microsoft Teams: the bot's registration page (app id, messaging
    /// endpoint, app package download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn add_friend_qr_code_is_a_wide_column_and_an_optional_status_link() {
        let crd = serde_json::to_value(Tenant::crd()).unwrap();
        let version = &crd["spec"]["versions"][0];
        let column = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "Add Friend QR")
            .expect("the Add Friend QR column");
        assert_eq!(column["jsonPath"], ".status.links.addFriendQrCode");
        assert_eq!(column["priority"], 1, "only in -o wide");
        let links =
            &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["links"];
        for field in ["addFriendQrCode", "addFriendLink", "registration"] {
            assert_eq!(links["properties"][field]["type"], "string", "{field}");
        }
        assert!(links.get("required").is_none(), "every link is optional");
        // A status written before links existed still reads.
        let old: TenantStatus =
            serde_json::from_value(serde_json::json!({"webhookUrl": "https://x/line/a.b"}))
                .unwrap();
        assert_eq!(old.links, None);
    }
}
