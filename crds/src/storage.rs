//! Storage: where attachments without a public URL are copied so the other
//! side can fetch them, purged after the conversation ends plus the purge
//! delay.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SecretKeyRef;
use crate::secret_ref::{HTTP_URL, SecretRefs, secret_refs};
use crate::settings::flatten_settings;

/// Storage provider kinds; the key of the settings object must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StorageType {
    S3,
    AzureBlob,
    Gcs,
    Box,
    Dropbox,
}

impl From<StorageType> for um_config::StorageKind {
    fn from(kind: StorageType) -> Self {
        match kind {
            StorageType::S3 => um_config::StorageKind::S3,
            StorageType::AzureBlob => um_config::StorageKind::AzureBlob,
            StorageType::Gcs => um_config::StorageKind::Gcs,
            StorageType::Box => um_config::StorageKind::Box,
            StorageType::Dropbox => um_config::StorageKind::Dropbox,
        }
    }
}

impl StorageType {
    pub const ALL: [StorageType; 5] = [
        StorageType::S3,
        StorageType::AzureBlob,
        StorageType::Gcs,
        StorageType::Box,
        StorageType::Dropbox,
    ];

    /// As written in `spec.type` and in `um_config::StorageConfig::kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::S3 => "s3",
            StorageType::AzureBlob => "azureBlob",
            StorageType::Gcs => "gcs",
            StorageType::Box => "box",
            StorageType::Dropbox => "dropbox",
        }
    }
}

/// Attachment storage. Set `type` and the settings object of the same name
/// (`type: s3` with `s3: {...}`). At most one Storage per namespace may be
/// `default: true`; the operator reports a conflict with the condition
/// DefaultConflict.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "messaging.universal-messaging.io",
    version = "v1alpha1",
    kind = "Storage",
    namespaced,
    status = "StorageStatus",
    derive = "PartialEq",
    shortname = "umstorage",
    shortname = "umst",
    category = "universal-messaging",
    doc = "Attachment storage for Tenants: s3, azureBlob, gcs, box or dropbox. Credentials are references to keys of Secrets in the Storage's namespace.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Default", type_ = "boolean", json_path = ".spec.default"),
    printcolumn(
        name = "Purge Delay",
        type_ = "integer",
        json_path = ".spec.purgeDelaySeconds"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = storage_rules()))]
pub struct StorageSpec {
    #[serde(rename = "type")]
    pub storage_type: StorageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_blob: Option<AzureBlobStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "box")]
    pub box_: Option<BoxStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropbox: Option<DropboxStorage>,
    /// Seconds after a conversation ends before its attachments are
    /// deleted (default one day, so agents can still open them from the
    /// transcript).
    #[serde(default = "default_purge_delay")]
    #[schemars(range(min = 0, max = 31_536_000))]
    pub purge_delay_seconds: i64,
    /// Used by Tenants that name no Storage.
    #[serde(default)]
    pub default: bool,
}

fn default_purge_delay() -> i64 {
    86_400
}

/// For every type: its settings object is set exactly when `type` names it.
fn storage_rules() -> Vec<serde_json::Value> {
    StorageType::ALL
        .iter()
        .flat_map(|kind| {
            let key = kind.as_str();
            [
                crate::cel::rule(
                    &format!("self.type != '{key}' || has(self.{key})"),
                    &format!("{key} settings are required when type is {key}"),
                    Some(&format!(".{key}")),
                    Some(crate::cel::Reason::Required),
                ),
                crate::cel::rule(
                    &format!("self.type == '{key}' || !has(self.{key})"),
                    &format!("{key} settings are only allowed when type is {key}"),
                    Some(&format!(".{key}")),
                    Some(crate::cel::Reason::Forbidden),
                ),
            ]
        })
        .collect()
}

impl StorageSpec {
    /// The settings of the selected type, flattened, without credentials:
    /// `um_config::StorageConfig::settings`.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let skip: Vec<&str> = self
            .secret_refs()
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        let value = serde_json::to_value(self).unwrap_or_default();
        match value.get(self.storage_type.as_str()) {
            Some(fields) => flatten_settings(fields, &skip),
            None => BTreeMap::new(),
        }
    }
}

impl SecretRefs for StorageSpec {
    /// The selected type's references; paths are relative to its settings
    /// object (`secretAccessKey`).
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        match self.storage_type {
            StorageType::S3 => self.s3.as_ref().map(SecretRefs::secret_refs),
            StorageType::AzureBlob => self.azure_blob.as_ref().map(SecretRefs::secret_refs),
            StorageType::Gcs => self.gcs.as_ref().map(SecretRefs::secret_refs),
            StorageType::Box => self.box_.as_ref().map(SecretRefs::secret_refs),
            StorageType::Dropbox => self.dropbox.as_ref().map(SecretRefs::secret_refs),
        }
        .unwrap_or_default()
    }
}

/// Amazon S3 or an S3-compatible service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    crate::cel::rule(
        "has(self.accessKeyId) == has(self.secretAccessKey)",
        "accessKeyId and secretAccessKey go together (or neither, for the pod's own identity)",
        Some(".secretAccessKey"),
        None,
    )
]))]
pub struct S3Storage {
    /// AWS region of the bucket (`eu-west-1`).
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: String,
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    )]
    pub bucket: String,
    /// Key prefix of every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// CloudFront distribution URL handed out instead of presigned S3 URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub cloud_front_url: Option<String>,
    /// Endpoint of an S3-compatible service; absent: AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub force_path_style: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretKeyRef>,
}

impl SecretRefs for S3Storage {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["accessKeyId" => &self.access_key_id, "secretAccessKey" => &self.secret_access_key]
    }
}

/// Azure Blob Storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureBlobStorage {
    #[schemars(length(min = 3, max = 24), regex(pattern = r"^[a-z0-9]+$"))]
    pub account_name: String,
    #[schemars(length(min = 3, max = 63))]
    pub container: String,
    /// Blob service endpoint; absent: `https://<account>.blob.core.windows.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub endpoint: Option<String>,
    pub account_key: SecretKeyRef,
}

impl SecretRefs for AzureBlobStorage {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["accountKey" => &self.account_key]
    }
}

/// Google Cloud Storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcsStorage {
    #[schemars(length(min = 3, max = 222))]
    pub bucket: String,
    /// Endpoint of a GCS-compatible service; absent: Google.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTP_URL))]
    pub endpoint: Option<String>,
    /// Service-account JSON key; absent: the pod's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<SecretKeyRef>,
}

impl SecretRefs for GcsStorage {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["serviceAccountKey" => &self.service_account_key]
    }
}

/// Box (JWT server authentication app).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoxStorage {
    /// Folder that receives the attachments.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub folder_id: String,
    /// The app's JSON configuration (keypair included) as Box exports it.
    pub config: SecretKeyRef,
}

impl SecretRefs for BoxStorage {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["config" => &self.config]
    }
}

/// Dropbox (app with a long-lived refresh token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropboxStorage {
    /// Folder path that receives the attachments (`/attachments`).
    #[schemars(regex(pattern = r"^/.*$"))]
    pub path: String,
    #[schemars(length(min = 1))]
    pub app_key: String,
    pub app_secret: SecretKeyRef,
    pub refresh_token: SecretKeyRef,
}

impl SecretRefs for DropboxStorage {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)> {
        secret_refs!["appSecret" => &self.app_secret, "refreshToken" => &self.refresh_token]
    }
}

/// What the operator observed for a Storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
