//! Resolving Secret references to values, purely: the caller hands in what
//! the Secret watch cached, so this is tested without a cluster. Errors name
//! the field, the Secret and the key, never the value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use um_config::Secret;

/// Read access to the Secrets of one namespace.
pub trait SecretSource {
    /// The `data` of Secret `name`, None when there is no such Secret.
    fn secret_data(&self, name: &str) -> Option<BTreeMap<String, ByteString>>;
}

impl SecretSource for BTreeMap<String, BTreeMap<String, ByteString>> {
    fn secret_data(&self, name: &str) -> Option<BTreeMap<String, ByteString>> {
        self.get(name).cloned()
    }
}

/// Why a reference did not resolve; each variant is a condition reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{field}: Secret {namespace}/{name} not found")]
    SecretNotFound {
        field: String,
        namespace: String,
        name: String,
    },
    #[error("{field}: Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyNotFound {
        field: String,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("{field}: key {key:?} of Secret {namespace}/{name} {problem}")]
    InvalidSecretValue {
        field: String,
        namespace: String,
        name: String,
        key: String,
        problem: String,
    },
}

impl ResolveError {
    /// The `CredentialsResolved` reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::SecretNotFound { .. } => "SecretNotFound",
            ResolveError::SecretKeyNotFound { .. } => "SecretKeyNotFound",
            ResolveError::InvalidSecretValue { .. } => "InvalidSecretValue",
        }
    }

    /// The Secret this error is about (for Events and the Secret watch).
    pub fn secret_name(&self) -> &str {
        match self {
            ResolveError::SecretNotFound { name, .. }
            | ResolveError::SecretKeyNotFound { name, .. }
            | ResolveError::InvalidSecretValue { name, .. } => name,
        }
    }
}

/// Resolves references of one object, collecting every failure so the
/// condition lists all that is missing, not only the first.
pub struct Resolver<'a, S: SecretSource + ?Sized> {
    source: &'a S,
    namespace: &'a str,
    errors: Vec<ResolveError>,
}

impl<'a, S: SecretSource + ?Sized> Resolver<'a, S> {
    pub fn new(source: &'a S, namespace: &'a str) -> Self {
        Self {
            source,
            namespace,
            errors: Vec::new(),
        }
    }

    /// The value of `name[key]`, or None after recording why not.
    pub fn resolve(&mut self, field: &str, name: &str, key: &str) -> Option<Secret> {
        let Some(data) = self.source.secret_data(name) else {
            self.errors.push(ResolveError::SecretNotFound {
                field: field.to_owned(),
                namespace: self.namespace.to_owned(),
                name: name.to_owned(),
            });
            return None;
        };
        let Some(bytes) = data.get(key) else {
            self.errors.push(ResolveError::SecretKeyNotFound {
                field: field.to_owned(),
                namespace: self.namespace.to_owned(),
                name: name.to_owned(),
                key: key.to_owned(),
            });
            return None;
        };
        let problem = match std::str::from_utf8(&bytes.0) {
            Err(_) => Some("is not UTF-8 text"),
            Ok(text) if text.trim().is_empty() => Some("is empty"),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            self.invalid(field, name, key, problem);
            return None;
        }
        // Secrets edited by hand often end with a newline; no credential
        // format this project reads has meaningful surrounding whitespace.
        let text = String::from_utf8_lossy(&bytes.0).trim().to_owned();
        Some(Secret::new(text))
    }

    /// Records a value that resolved but cannot be used.
    pub fn invalid(&mut self, field: &str, name: &str, key: &str, problem: &str) {
        self.errors.push(ResolveError::InvalidSecretValue {
            field: field.to_owned(),
            namespace: self.namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
            problem: problem.to_owned(),
        });
    }

    pub fn finish(self) -> Vec<ResolveError> {
        self.errors
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn secrets(
        entries: &[(&str, &[(&str, &str)])],
    ) -> BTreeMap<String, BTreeMap<String, ByteString>> {
        entries
            .iter()
            .map(|(name, data)| {
                let data = data
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect();
                ((*name).to_owned(), data)
            })
            .collect()
    }

    #[test]
    fn resolves_and_trims() {
        let source = secrets(&[("tg", &[("token", "123:ABC\n")])]);
        let mut resolver = Resolver::new(&source, "shop");
        assert_eq!(
            resolver
                .resolve("botToken", "tg", "token")
                .unwrap()
                .expose(),
            "123:ABC"
        );
        assert!(resolver.finish().is_empty());
    }

    #[test]
    fn every_failure_is_named_without_the_value() {
        let source = secrets(&[("tg", &[("token", "  "), ("other", "hidden-value")])]);
        let mut resolver = Resolver::new(&source, "shop");
        assert!(resolver.resolve("a", "missing", "k").is_none());
        assert!(resolver.resolve("b", "tg", "nokey").is_none());
        assert!(resolver.resolve("c", "tg", "token").is_none());
        let errors = resolver.finish();
        let reasons: Vec<_> = errors.iter().map(ResolveError::reason).collect();
        assert_eq!(
            reasons,
            ["SecretNotFound", "SecretKeyNotFound", "InvalidSecretValue"]
        );
        assert_eq!(errors[0].to_string(), "a: Secret shop/missing not found");
        assert_eq!(
            errors[1].to_string(),
            "b: Secret shop/tg has no key \"nokey\""
        );
        assert!(errors[2].to_string().contains("is empty"));
        assert!(
            errors
                .iter()
                .all(|e| !e.to_string().contains("hidden-value"))
        );
    }
}
