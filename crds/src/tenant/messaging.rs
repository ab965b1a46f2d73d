//! `spec.messaging`: the one messaging platform of a Tenant, with the
//! settings and credentials its connector needs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use um_config::Platform;

use super::one_of::one_of_enum;
use crate::SecretKeyRef;
use crate::secret_ref::{HTTP_URL, SecretRefs, secret_refs};

/// Declares [`MessagingSpec`] from one list: each variant is named as its
/// [`Platform`] and keyed by the platform's name, so `platform()` and the
/// Secret references follow from the list (a test checks the list against
/// [`Platform::ALL`]).
macro_rules! messaging_specs {
    ($( $variant:ident($spec:ty) = $key:literal, )*) => {
        one_of_enum! {
            /// The messaging platform of a Tenant: exactly one key, named as the
            /// platform's service (`telegram`, `line`, ...).
            pub enum MessagingSpec (what = "messaging platform under spec.messaging") {
                $( $variant($spec) = $key, )*
            }
        }

        impl MessagingSpec {
            /// The platform this spec is for.
            pub fn platform(&self) -> Platform {
                match self {
                    $( MessagingSpec::$variant(_) => Platform::$variant, )*
                }
            }

            fn variant_secret_refs(&self) -> &dyn SecretRefs {
                match self {
                    $( MessagingSpec::$variant(s) => s, )*
                }
            }
        }
    };
}

messaging_specs! {
    Telegram(TelegramSpec) = "telegram",
    Line(LineSpec) = "line",
    Slack(SlackSpec) = "slack",
    Teams(TeamsSpec) = "teams",
    Viber(ViberSpec) = "viber",
    Wechat(WechatSpec) = "wechat",
    Zalo(ZaloSpec) = "zalo",
    AppleBusinessChat(AppleBusinessChatSpec) = "appleBusinessChat",
    GoogleChat(GoogleChatSpec) = "googleChat",
    GoogleBusinessMessages(GoogleBusinessMessagesSpec) = "googleBusinessMessages",
    KakaoBizm(KakaoBizmSpec) = "kakaoBizm",
    KakaoInfobank(KakaoInfobankSpec) = "kakaoInfobank",
    Disqus(DisqusSpec) = "disqus",
    Media4u(Media4uSpec) = "media4u",
    PlusMessage(PlusMessageSpec) = "plusMessage",
    Bedore(BedoreSpec) = "bedore",
}

impl SecretRefs for MessagingSpec {
    /// The variant's references; field paths are relative to the variant
    /// (`botToken`, not `telegram.botToken`).
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        self.variant_secret_refs().secret_refs()
    }
}

/// Telegram Bot API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramSpec {
    /// The bot token from BotFather (`123456:ABC-...`).
    pub bot_token: SecretKeyRef,
    /// The `secret_token` registered with setWebhook and sent back in
    /// `X-Telegram-Bot-Api-Secret-Token` (1-256 of `A-Za-z0-9_-`). When
    /// absent, the connector derives one from the bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_token: Option<SecretKeyRef>,
}

impl SecretRefs for TelegramSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["botToken" => &self.bot_token, "webhookSecretToken" => &self.webhook_secret_token]
    }
}

/// LINE Messaging API channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "has(self.channelAccessToken) || has(self.channelId)",
        "set channelAccessToken (long-lived token) or channelId (to issue tokens with the channel secret)",
        Some(".channelAccessToken"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct LineSpec {
    /// Channel ID (needed to issue short-lived tokens when no long-lived
    /// channel access token is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub channel_id: Option<String>,
    /// Channel secret: verifies `X-Line-Signature`.
    pub channel_secret: SecretKeyRef,
    /// Long-lived channel access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_access_token: Option<SecretKeyRef>,
    /// Hand the user to another bot destination when the chat ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switcher: Option<LineSwitcherSpec>,
}

/// LINE Switcher API settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineSwitcherSpec {
    #[schemars(length(min = 1))]
    pub service_code: String,
    pub destination_id: String,
    pub secret: SecretKeyRef,
}

impl SecretRefs for LineSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        let mut refs = secret_refs![
            "channelSecret" => &self.channel_secret,
            "channelAccessToken" => &self.channel_access_token,
        ];
        if let Some(switcher) = &self.switcher {
            refs.push(("switcher.secret", &switcher.secret));
        }
        refs
    }
}

/// Slack app (Events API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "has(self.clientId) == has(self.clientSecret)",
        "clientId and clientSecret go together (both for OAuth installs, or neither)",
        Some(".clientSecret"),
        None,
    )
]))]
pub struct SlackSpec {
    /// Signing secret: verifies `X-Slack-Signature`.
    pub signing_secret: SecretKeyRef,
    /// Bot token (`xoxb-...`) used to post messages and fetch files.
    pub bot_token: SecretKeyRef,
    /// App id (`A0...`), to ignore events from our own bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// OAuth client id, for installs into more workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeyRef>,
}

impl SecretRefs for SlackSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "signingSecret" => &self.signing_secret,
            "botToken" => &self.bot_token,
            "clientSecret" => &self.client_secret,
        ]
    }
}

/// Microsoft Teams bot (Bot Framework).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamsSpec {
    /// The bot's Microsoft App ID: the audience of inbound tokens.
    #[schemars(length(min = 1))]
    pub app_id: String,
    /// The bot's client secret, for outbound tokens.
    pub app_password: SecretKeyRef,
    /// Entra ID tenant of a single-tenant bot; absent: `botframework.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_tenant_id: Option<String>,
    /// How the Teams app package the connector builds (served at
    /// `<webhookUrl>/register`) presents the bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<TeamsAppSpec>,
}

/// The Teams app package's presentation; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamsAppSpec {
    /// Short name of the app (at most 30 characters); absent: the
    /// Tenant's displayName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 30))]
    pub bot_name: Option<String>,
    /// Accent colour of the app and its icons (`#RRGGBB`); absent: `#0078D4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub accent_color: Option<String>,
    /// Short description (at most 80 characters); absent: `Chat with <name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub description: Option<String>,
    /// Developer website; absent: the origin of the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub website_url: Option<String>,
    /// Privacy statement; absent: the website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub privacy_url: Option<String>,
    /// Terms of use; absent: the website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub terms_url: Option<String>,
}

impl SecretRefs for TeamsSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["appPassword" => &self.app_password]
    }
}

/// Viber bot (REST Bot API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViberSpec {
    /// Auth token: `X-Viber-Auth-Token` and the signature key.
    pub auth_token: SecretKeyRef,
    /// Sender name shown with every message (at most 28 characters).
    #[schemars(length(min = 1, max = 28))]
    pub sender_name: String,
    /// Sender avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub sender_avatar: Option<String>,
}

impl SecretRefs for ViberSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["authToken" => &self.auth_token]
    }
}

/// WeChat message encryption mode of the Official Account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WechatEncryptMode {
    #[default]
    Plain,
    Compat,
    Safe,
}

/// WeChat Official Account.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.encryptMode == 'plain' || has(self.encodingAesKey)",
        "encodingAesKey is required when encryptMode is compat or safe",
        Some(".encodingAesKey"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct WechatSpec {
    /// AppID (`wx...`).
    #[schemars(length(min = 1))]
    pub app_id: String,
    /// AppSecret, to obtain access tokens.
    pub app_secret: SecretKeyRef,
    /// Server token used in the `signature` check.
    pub token: SecretKeyRef,
    /// EncodingAESKey (43 characters) for compat and safe modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_aes_key: Option<SecretKeyRef>,
    #[serde(default)]
    pub encrypt_mode: WechatEncryptMode,
    /// Original id (`gh_...`) of the account, to route inbound messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^gh_[0-9a-zA-Z]+$"))]
    pub original_id: Option<String>,
    /// Customer-service account agents' replies are sent as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kf_account: Option<String>,
}

impl SecretRefs for WechatSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "appSecret" => &self.app_secret,
            "token" => &self.token,
            "encodingAesKey" => &self.encoding_aes_key,
        ]
    }
}

/// Zalo Official Account (OA API v3).
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZaloSpec {
    /// Zalo app id.
    #[schemars(length(min = 1))]
    pub app_id: String,
    /// App secret key (OAuth `secret_key` header).
    pub app_secret: SecretKeyRef,
    /// Official Account id.
    #[schemars(length(min = 1))]
    pub oa_id: String,
    /// OA secret key: verifies `X-ZEvent-Signature`.
    pub oa_secret_key: SecretKeyRef,
    /// The initial refresh token from the OA authorisation. Refresh tokens
    /// are single-use; the connector keeps the rotated one in Redis.
    pub refresh_token: SecretKeyRef,
    /// Redirect URI registered for the OA authorisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub redirect_uri: Option<String>,
}

impl SecretRefs for ZaloSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "appSecret" => &self.app_secret,
            "oaSecretKey" => &self.oa_secret_key,
            "refreshToken" => &self.refresh_token,
        ]
    }
}

/// Apple Messages for Business, with us as the messaging service provider.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppleBusinessChatSpec {
    /// MSP id: issuer of the JWTs both ways.
    #[schemars(length(min = 1))]
    pub msp_id: String,
    /// MSP secret (base64, as Apple issues it): signs and verifies the JWTs.
    pub msp_secret: SecretKeyRef,
    /// Business id (`destination-id` of inbound messages).
    #[schemars(length(min = 1))]
    pub business_id: String,
}

impl SecretRefs for AppleBusinessChatSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["mspSecret" => &self.msp_secret]
    }
}

/// What Google Chat puts in the `aud` claim of its bearer token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GoogleChatAudience {
    #[default]
    ProjectNumber,
    EndpointUrl,
}

/// Shape of the events Google Chat sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GoogleChatEventFormat {
    #[default]
    ChatApi,
    WorkspaceAddon,
}

/// Google Chat app (HTTP endpoint).
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.authAudience != 'endpointUrl' || has(self.endpointUrl)",
        "endpointUrl is required when authAudience is endpointUrl",
        Some(".endpointUrl"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct GoogleChatSpec {
    /// Google Cloud project number (the token audience by default).
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub project_number: String,
    #[serde(default)]
    pub auth_audience: GoogleChatAudience,
    /// The exact URL configured in the Chat app, when it is the audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub endpoint_url: Option<String>,
    /// Signer of inbound tokens; absent: `chat@system.gserviceaccount.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_signer_email: Option<String>,
    #[serde(default)]
    pub event_format: GoogleChatEventFormat,
    /// Service-account JSON key (scope `chat.bot`) to post messages.
    pub service_account_key: SecretKeyRef,
    /// Spaces (`spaces/...`) the app answers in; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_spaces: Vec<String>,
}

impl SecretRefs for GoogleChatSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["serviceAccountKey" => &self.service_account_key]
    }
}

/// Google Business Messages. Google retired it in 2024; kept for existing
/// configurations (legacy).
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoogleBusinessMessagesSpec {
    /// Client token: verifies `X-Goog-Signature`.
    pub client_token: SecretKeyRef,
    /// Service-account JSON key to send messages.
    pub service_account_key: SecretKeyRef,
    /// Agent id (`brands/.../agents/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Representative name shown with agent messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representative_name: Option<String>,
}

impl SecretRefs for GoogleBusinessMessagesSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "clientToken" => &self.client_token,
            "serviceAccountKey" => &self.service_account_key,
        ]
    }
}

/// KakaoTalk through BizM. BizM publishes only its AlimTalk/FriendTalk send
/// API; inbound messages use the project's provider contract (bearer token
/// plus HMAC signature, see the connector documentation).
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KakaoBizmSpec {
    /// BizM API base URL; absent: `https://alimtalk-api.bizmsg.kr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub base_url: Option<String>,
    /// Kakao channel sender profile key (40 hex characters). An
    /// identifier, not a credential.
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{40}$"))]
    pub sender_key: String,
    /// BizM account id (`userid` header).
    #[schemars(length(min = 1))]
    pub user_id: String,
    /// BizM `userkey` for the admin APIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<SecretKeyRef>,
    /// Bearer token the provider sends with inbound events.
    pub inbound_token: SecretKeyRef,
    /// HMAC key of `X-Bridge-Signature` on inbound events.
    pub inbound_signing_secret: SecretKeyRef,
    /// Sender number for the SMS fallback of notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_fallback_sender: Option<String>,
    /// Source networks inbound events may come from (CIDR); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_source_cidrs: Vec<String>,
}

impl SecretRefs for KakaoBizmSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "userKey" => &self.user_key,
            "inboundToken" => &self.inbound_token,
            "inboundSigningSecret" => &self.inbound_signing_secret,
        ]
    }
}

/// Which Infobank API a tenant uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InfobankApi {
    /// Bizgo Communication API (current; includes 상담톡).
    #[default]
    Bizgo,
    /// OMNI v1 (legacy).
    Omni,
}

/// KakaoTalk 상담톡 through Infobank.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "self.api != 'bizgo' || has(self.apiKey)",
        "apiKey is required when api is bizgo",
        Some(".apiKey"),
        Some(crate::cel::Reason::Required),
    ),
    crate::cel::rule(
        "self.api != 'omni' || (has(self.clientId) && has(self.clientPassword))",
        "clientId and clientPassword are required when api is omni",
        Some(".clientPassword"),
        Some(crate::cel::Reason::Required),
    )
]))]
pub struct KakaoInfobankSpec {
    #[serde(default)]
    pub api: InfobankApi,
    /// API base URL; absent: `https://mars.ibapi.kr` (Bizgo) or
    /// `https://omni.ibapi.kr` (OMNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub base_url: Option<String>,
    /// Kakao channel sender profile key (40 hex characters).
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{40}$"))]
    pub sender_key: String,
    /// Bizgo API key (`Authorization` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeyRef>,
    /// OMNI client id (`X-IB-Client-Id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OMNI client password (`X-IB-Client-Passwd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_password: Option<SecretKeyRef>,
    /// HMAC key of `X-IB-Signature` on report webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_signing_secret: Option<SecretKeyRef>,
    /// Source networks 상담톡 webhooks may come from (they carry no
    /// signature); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_source_cidrs: Vec<String>,
}

impl SecretRefs for KakaoInfobankSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "apiKey" => &self.api_key,
            "clientPassword" => &self.client_password,
            "reportSigningSecret" => &self.report_signing_secret,
        ]
    }
}

/// Disqus forum, polled (Disqus has no webhooks).
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisqusSpec {
    /// Forum short name.
    #[schemars(length(min = 1))]
    pub forum: String,
    /// Application public key.
    pub api_key: SecretKeyRef,
    /// Application secret key.
    pub api_secret: SecretKeyRef,
    /// Access token of the account that posts replies.
    pub access_token: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretKeyRef>,
    /// Our own account, whose posts are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_username: Option<String>,
    #[serde(default = "default_disqus_poll_interval")]
    #[schemars(range(min = 5, max = 3600))]
    pub poll_interval_seconds: i32,
    /// Also relay posts still waiting for moderation.
    #[serde(default)]
    pub include_unapproved: bool,
}

fn default_disqus_poll_interval() -> i32 {
    30
}

impl SecretRefs for DisqusSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "apiKey" => &self.api_key,
            "apiSecret" => &self.api_secret,
            "accessToken" => &self.access_token,
            "refreshToken" => &self.refresh_token,
        ]
    }
}

/// Media4U MediaSMS. Its send API authenticates with account and password;
/// replies arrive through the project's provider contract.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Media4uSpec {
    /// MediaSMS API base URL.
    #[schemars(pattern(HTTP_URL))]
    pub base_url: String,
    /// Account name (2-20 characters).
    #[schemars(length(min = 2, max = 20))]
    pub username: String,
    pub password: SecretKeyRef,
    /// Template registered in the MediaSMS console (`smstextid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Sender display on the international route (`smstitle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_display: Option<String>,
    /// Bearer token the provider sends with inbound events.
    pub inbound_token: SecretKeyRef,
    /// HMAC key of `X-Bridge-Signature` on inbound events.
    pub inbound_signing_secret: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_source_cidrs: Vec<String>,
}

impl SecretRefs for Media4uSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "password" => &self.password,
            "inboundToken" => &self.inbound_token,
            "inboundSigningSecret" => &self.inbound_signing_secret,
        ]
    }
}

/// NTT DOCOMO +Message official account, through an aggregator.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlusMessageSpec {
    /// Aggregator API base URL.
    #[schemars(pattern(HTTP_URL))]
    pub base_url: String,
    /// Aggregator client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// Bot (official account) id.
    #[schemars(length(min = 1))]
    pub bot_id: String,
    /// Aggregator API token (`x-token`).
    pub api_token: SecretKeyRef,
    /// Bearer token the aggregator sends with inbound events.
    pub inbound_token: SecretKeyRef,
    /// HMAC key of `X-Bridge-Signature` on inbound events.
    pub inbound_signing_secret: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_source_cidrs: Vec<String>,
}

impl SecretRefs for PlusMessageSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "apiToken" => &self.api_token,
            "inboundToken" => &self.inbound_token,
            "inboundSigningSecret" => &self.inbound_signing_secret,
        ]
    }
}

/// Bedore chatbot hand-off: the bot hands a conversation (with its
/// transcript) to an agent and gets it back when the agent leaves.
///
/// Preview: not implemented in this version. The API accepts it; the
/// operator reports the Tenant `Ready=False` with reason
/// `PlatformNotSupported` and runs nothing for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BedoreSpec {
    /// Endpoint that receives agent messages and the end of the hand-off.
    #[schemars(pattern(HTTP_URL))]
    pub base_url: String,
    #[schemars(length(min = 1))]
    pub bot_id: String,
    /// Token sent to the bot vendor with outbound calls.
    pub api_token: SecretKeyRef,
    /// Bearer token the bot vendor sends with hand-off events.
    pub inbound_token: SecretKeyRef,
    /// HMAC key of `X-Bridge-Signature` on inbound events.
    pub inbound_signing_secret: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_source_cidrs: Vec<String>,
}

impl SecretRefs for BedoreSpec {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs![
            "apiToken" => &self.api_token,
            "inboundToken" => &self.inbound_token,
            "inboundSigningSecret" => &self.inbound_signing_secret,
        ]
    }
}
