use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One key of a Secret in the same namespace as the object that refers to it.
/// The only way any resource of this API names a credential.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

impl SecretKeyRef {
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for SecretKeyRef {
    /// `secret/<name>[<key>]`: safe to log, it names the place, not the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret/{}[{}]", self.name, self.key)
    }
}

/// Every Secret reference of a part of a spec, with its field path inside
/// that part (camelCase and dotted as in YAML: `botToken`,
/// `oauthClient.clientSecret`). The operator resolves these to build the
/// connectors' configuration and watches the Secrets they name.
pub trait SecretRefs {
    fn secret_refs(&self) -> Vec<(&'static str, &SecretKeyRef)>;
}

/// Lets [`secret_refs!`] take required and optional references alike.
pub(crate) trait PushSecretRef<'a> {
    fn push_into(self, field: &'static str, out: &mut Vec<(&'static str, &'a SecretKeyRef)>);
}

impl<'a> PushSecretRef<'a> for &'a SecretKeyRef {
    fn push_into(self, field: &'static str, out: &mut Vec<(&'static str, &'a SecretKeyRef)>) {
        out.push((field, self));
    }
}

impl<'a> PushSecretRef<'a> for &'a Option<SecretKeyRef> {
    fn push_into(self, field: &'static str, out: &mut Vec<(&'static str, &'a SecretKeyRef)>) {
        if let Some(secret) = self {
            out.push((field, secret));
        }
    }
}

/// `secret_refs!["botToken" => &self.bot_token, "caCert" => &self.ca_cert]`
macro_rules! secret_refs {
    ($($field:literal => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut refs: Vec<(&'static str, &$crate::SecretKeyRef)> = Vec::new();
        $( $crate::secret_ref::PushSecretRef::push_into($value, $field, &mut refs); )*
        refs
    }};
}

pub(crate) use secret_refs;

/// Pattern for URL fields: an absolute http(s) URL without spaces.
pub(crate) const HTTP_URL: &str = r"^https?://[^\s]+$";
