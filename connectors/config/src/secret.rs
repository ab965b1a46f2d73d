use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A credential. It never prints: `Debug` and `Display` show `[REDACTED]`,
/// so a secret cannot reach a log line, an Event, a status or an error by
/// accident. Reading the value takes an explicit [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The clear value, for the one place that must send it (an HTTP header,
    /// an HMAC key, the rendered Secret data).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Configuration comparison (did anything change?), not authentication:
        // signature checks use constant-time comparison elsewhere.
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

/// Serialising writes the clear value: the only serialiser of a [`Secret`] is
/// the operator rendering the service configuration into a Kubernetes Secret.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let holder = format!(
            "{:?}",
            Holder {
                token: secret.clone()
            }
        );
        assert!(!holder.contains("very-secret"), "{holder}");
        assert_eq!(secret.expose(), "xoxb-very-secret");
    }

    #[test]
    fn round_trips_through_json() {
        let secret = Secret::new("s3cr3t");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"s3cr3t\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
    }
}
