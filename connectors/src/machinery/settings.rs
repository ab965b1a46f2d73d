//! Process settings from the environment (the operator renders these into
//! the Deployment). Everything per tenant comes from the service
//! configuration instead ([`crate::machinery::config_watch`]): a file, or the
//! service's configuration Secrets ([`crate::machinery::config_kube`]).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `UM_SERVICE` (or the first argument) | — | `gcloudcx`, `telegram`, ... |
//! | `UM_CONFIG_SOURCE` | `file` | `file`: the file below; `kubernetes`: watch the service's configuration Secrets ([`um_config::layout`]) |
//! | `UM_CONFIG_DIR` | `/etc/um` | `file` source: directory holding `service.json` (or the file) |
//! | `UM_INSTANCE` | — | `kubernetes` source, required: installation name (label `messaging.universal-messaging.io/instance`) |
//! | `POD_NAMESPACE` | — | `kubernetes` source, required: namespace of the configuration Secrets |
//! | `UM_AMQP_URL` | `amqp://127.0.0.1:5672/%2f` | broker |
//! | `UM_REDIS_URL` | `redis://127.0.0.1:6379/` | Redis |
//! | `UM_LOG_LEVEL` | `INFO` | `LEVEL;LEVEL:{topic:scope,...}` ([`crate::logging`]) |
//! | `UM_LOG_FORMAT` | `bunyan` | `bunyan` (JSON) or `pretty` |
//! | `POD_IP` | `0.0.0.0` | bind address of the HTTP server |
//! | `UM_HTTP_PORT` | `8080` | its port (`0`: any free port) |
//! | `UM_BUS_SHARDS` | `4` | shard queues per route |
//! | `UM_BUS_NAMESPACE` | `um` | first part of every exchange and queue name |
//! | `UM_PREFETCH` | `256` | unacknowledged messages per shard |
//! | `UM_RETRY_FOR_SECONDS` | `86400` | how long a failing delivery is retried (parked after a few attempts) before it is dead-lettered |
//! | `UM_CONFIG_RELOAD_SECONDS` | `2` | `file` source: how often the file is re-read |
//! | `UM_MEDIA_SIGNING_KEY` | — | optional key mixed into media URL signatures |
//! | `UM_MEDIA_URL_TTL_SECONDS` | `86400` | lifetime of a signed media URL |
//! | `UM_MAX_INFLIGHT_REQUESTS` | `64` | requests the service's own routes (webhooks, media, ...) handle at once; more are answered 503 with `Retry-After` at once, before their body is read ([`crate::machinery::server`]) |
//! | `UM_FETCH_ALLOW` | — | CIDRs, addresses and host names that URLs from outside may be fetched from although they are loopback, private, ... ([`crate::machinery::url_policy`]) |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use um_config::Secret;

use crate::machinery::url_policy::FetchAllow;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "no service named: set UM_SERVICE or pass it as the first argument (gcloudcx, telegram, ...)"
    )]
    NoService,
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("environment variable {name} is required: {reason}")]
    Missing {
        name: &'static str,
        reason: &'static str,
    },
}

/// Where the service configuration comes from (`UM_CONFIG_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `service.json` in this directory (or this file), re-read on an interval.
    File(PathBuf),
    /// The Secrets labelled for `instance` and the service in `namespace`,
    /// watched through the Kubernetes API.
    Kubernetes { namespace: String, instance: String },
}

impl ConfigSource {
    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let source = get("UM_CONFIG_SOURCE").unwrap_or_default();
        match source.trim() {
            "" | "file" => Ok(ConfigSource::File(PathBuf::from(
                get("UM_CONFIG_DIR")
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| "/etc/um".to_owned()),
            ))),
            "kubernetes" => Ok(ConfigSource::Kubernetes {
                namespace: required(
                    get,
                    "POD_NAMESPACE",
                    "the namespace of the configuration Secrets (UM_CONFIG_SOURCE=kubernetes)",
                    is_dns_label,
                    "not a namespace name (lower-case letters, digits and '-', at most 63)",
                )?,
                instance: required(
                    get,
                    "UM_INSTANCE",
                    "the installation whose configuration Secrets to read (UM_CONFIG_SOURCE=kubernetes)",
                    is_label_value,
                    "not a label value (letters, digits, '-', '_', '.', at most 63)",
                )?,
            }),
            _ => Err(SettingsError::Invalid {
                name: "UM_CONFIG_SOURCE",
                value: source,
                reason: "expected file or kubernetes".to_owned(),
            }),
        }
    }
}

/// A non-empty variable that passes `check`.
fn required(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    missing: &'static str,
    check: fn(&str) -> bool,
    invalid: &str,
) -> Result<String, SettingsError> {
    let value = get(name).unwrap_or_default();
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SettingsError::Missing {
            name,
            reason: missing,
        });
    }
    if !check(trimmed) {
        return Err(SettingsError::Invalid {
            name,
            value,
            reason: invalid.to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

/// RFC 1123 label, as namespace names are.
fn is_dns_label(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// Kubernetes label value. Checked because the instance goes into a label
/// selector: a ',' or '=' in it would select other Secrets than intended.
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub service: String,
    pub config_source: ConfigSource,
    pub amqp_url: Secret,
    pub redis_url: Secret,
    pub log_level: String,
    pub log_format: LogFormat,
    pub listen: SocketAddr,
    pub shards: u16,
    pub bus_namespace: String,
    pub prefetch: u16,
    pub retry_for: Duration,
    pub config_reload: Duration,
    pub media_signing_key: Option<Secret>,
    pub media_url_ttl: Duration,
    pub fetch_allow: FetchAllow,
    pub max_inflight_requests: usize,
}

pub use um_telemetry::LogFormat;

fn parse<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    check: impl Fn(&T) -> bool,
) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<T>() {
            Ok(parsed) if check(&parsed) => Ok(parsed),
            Ok(_) => Err(SettingsError::Invalid {
                name,
                value,
                reason: "out of range".to_owned(),
            }),
            Err(e) => Err(SettingsError::Invalid {
                name,
                value,
                reason: e.to_string(),
            }),
        },
    }
}

impl Settings {
    pub fn from_env(first_arg: Option<String>) -> Result<Self, SettingsError> {
        Self::from_lookup(first_arg, &|name| std::env::var(name).ok())
    }

    /// Reads through `get` (tests pass a map).
    pub fn from_lookup(
        first_arg: Option<String>,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let service = first_arg
            .filter(|s| !s.is_empty())
            .or_else(|| get("UM_SERVICE").filter(|s| !s.is_empty()))
            .ok_or(SettingsError::NoService)?;
        let log_format = get("UM_LOG_FORMAT")
            .unwrap_or_default()
            .parse::<LogFormat>()
            .map_err(|reason| SettingsError::Invalid {
                name: "UM_LOG_FORMAT",
                value: get("UM_LOG_FORMAT").unwrap_or_default(),
                reason,
            })?;
        let ip = parse(get, "POD_IP", IpAddr::V4(Ipv4Addr::UNSPECIFIED), |_| true)?;
        let port = parse(get, "UM_HTTP_PORT", 8080u16, |_| true)?;
        Ok(Self {
            service,
            config_source: ConfigSource::from_lookup(get)?,
            amqp_url: Secret::new(
                get("UM_AMQP_URL").unwrap_or_else(|| "amqp://127.0.0.1:5672/%2f".to_owned()),
            ),
            redis_url: Secret::new(
                get("UM_REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned()),
            ),
            log_level: get("UM_LOG_LEVEL").unwrap_or_else(|| "INFO".to_owned()),
            log_format,
            listen: SocketAddr::new(ip, port),
            shards: parse(get, "UM_BUS_SHARDS", 4u16, |n| (1..=64).contains(n))?,
            bus_namespace: get("UM_BUS_NAMESPACE")
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| crate::machinery::bus::DEFAULT_NAMESPACE.to_owned()),
            prefetch: parse(get, "UM_PREFETCH", 256u16, |n| *n >= 1)?,
            retry_for: Duration::from_secs(parse(
                get,
                "UM_RETRY_FOR_SECONDS",
                crate::machinery::bus::DEFAULT_RETRY_FOR.as_secs(),
                |n| *n >= 1,
            )?),
            config_reload: Duration::from_secs(parse(
                get,
                "UM_CONFIG_RELOAD_SECONDS",
                2u64,
                |n| *n >= 1,
            )?),
            media_signing_key: get("UM_MEDIA_SIGNING_KEY")
                .filter(|k| !k.is_empty())
                .map(Secret::new),
            media_url_ttl: Duration::from_secs(parse(
                get,
                "UM_MEDIA_URL_TTL_SECONDS",
                86_400u64,
                |n| *n >= 1,
            )?),
            max_inflight_requests: parse(
                get,
                "UM_MAX_INFLIGHT_REQUESTS",
                crate::machinery::server::DEFAULT_MAX_INFLIGHT_REQUESTS,
                |n| (1..=crate::machinery::server::MAX_INFLIGHT_REQUESTS_LIMIT).contains(n),
            )?,
            fetch_allow: get("UM_FETCH_ALLOW")
                .unwrap_or_default()
                .parse()
                .map_err(|reason| SettingsError::Invalid {
                    name: "UM_FETCH_ALLOW",
                    value: get("UM_FETCH_ALLOW").unwrap_or_default(),
                    reason,
                })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_lookup(Some("telegram".into()), &lookup(&[])).unwrap();
        assert_eq!(s.service, "telegram");
        assert_eq!(s.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.shards, 4);
        assert_eq!(s.log_format, LogFormat::Bunyan);
        let s = Settings::from_lookup(
            None,
            &lookup(&[
                ("UM_SERVICE", "gcloudcx"),
                ("POD_IP", "127.0.0.1"),
                ("UM_HTTP_PORT", "0"),
                ("UM_BUS_SHARDS", "8"),
                ("UM_LOG_FORMAT", "pretty"),
                ("UM_AMQP_URL", "amqp://u:hunter2@h:5672/%2f"),
            ]),
        )
        .unwrap();
        assert_eq!(s.service, "gcloudcx");
        assert_eq!(s.listen.to_string(), "127.0.0.1:0");
        assert_eq!(s.shards, 8);
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_bad_values_with_the_variable_name() {
        let err = Settings::from_lookup(Some("x".into()), &lookup(&[("UM_BUS_SHARDS", "0")]))
            .unwrap_err();
        assert!(err.to_string().contains("UM_BUS_SHARDS"), "{err}");
        let err = Settings::from_lookup(Some("x".into()), &lookup(&[("UM_PREFETCH", "many")]))
            .unwrap_err();
        assert!(err.to_string().contains("UM_PREFETCH"), "{err}");
        assert!(matches!(
            Settings::from_lookup(None, &lookup(&[])),
            Err(SettingsError::NoService)
        ));
    }

    #[test]
    fn max_inflight_requests_is_bounded() {
        let s = Settings::from_lookup(Some("x".into()), &lookup(&[])).unwrap();
        assert_eq!(
            s.max_inflight_requests,
            crate::machinery::server::DEFAULT_MAX_INFLIGHT_REQUESTS
        );
        let s = Settings::from_lookup(
            Some("x".into()),
            &lookup(&[("UM_MAX_INFLIGHT_REQUESTS", "8")]),
        )
        .unwrap();
        assert_eq!(s.max_inflight_requests, 8);
        for bad in ["0", "-1", "lots"] {
            let err = Settings::from_lookup(
                Some("x".into()),
                &lookup(&[("UM_MAX_INFLIGHT_REQUESTS", bad)]),
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("UM_MAX_INFLIGHT_REQUESTS"),
                "{err}"
            );
        }
    }

    #[test]
    fn fetch_allow_is_a_list_of_addresses_and_names() {
        let s = Settings::from_lookup(Some("x".into()), &lookup(&[])).unwrap();
        assert!(s.fetch_allow.is_empty());
        let s = Settings::from_lookup(
            Some("x".into()),
            &lookup(&[("UM_FETCH_ALLOW", "127.0.0.1, 10.20.0.0/16")]),
        )
        .unwrap();
        assert!(s.fetch_allow.allows_address("10.20.1.1".parse().unwrap()));
        let err = Settings::from_lookup(
            Some("x".into()),
            &lookup(&[("UM_FETCH_ALLOW", "10.0.0.0/99")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("UM_FETCH_ALLOW"), "{err}");
    }

    fn source(pairs: &[(&str, &str)]) -> Result<ConfigSource, SettingsError> {
        Settings::from_lookup(Some("telegram".into()), &lookup(pairs)).map(|s| s.config_source)
    }

    #[test]
    fn config_source_is_the_file_by_default() {
        assert_eq!(
            source(&[]).unwrap(),
            ConfigSource::File(PathBuf::from("/etc/um"))
        );
        assert_eq!(
            source(&[("UM_CONFIG_SOURCE", "file"), ("UM_CONFIG_DIR", "/tmp/x")]).unwrap(),
            ConfigSource::File(PathBuf::from("/tmp/x"))
        );
        // The kubernetes variables mean nothing to the file source.
        assert_eq!(
            source(&[("UM_CONFIG_SOURCE", ""), ("UM_INSTANCE", "um")]).unwrap(),
            ConfigSource::File(PathBuf::from("/etc/um"))
        );
    }

    #[test]
    fn config_source_kubernetes_needs_instance_and_namespace() {
        assert_eq!(
            source(&[
                ("UM_CONFIG_SOURCE", "kubernetes"),
                ("UM_INSTANCE", "um"),
                ("POD_NAMESPACE", "messaging"),
                ("UM_CONFIG_DIR", "/ignored"),
            ])
            .unwrap(),
            ConfigSource::Kubernetes {
                namespace: "messaging".into(),
                instance: "um".into(),
            }
        );
        let err = source(&[
            ("UM_CONFIG_SOURCE", "kubernetes"),
            ("POD_NAMESPACE", "messaging"),
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                SettingsError::Missing {
                    name: "UM_INSTANCE",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("UM_INSTANCE"), "{err}");
        let err = source(&[
            ("UM_CONFIG_SOURCE", "kubernetes"),
            ("UM_INSTANCE", "um"),
            ("POD_NAMESPACE", " "),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("POD_NAMESPACE"), "{err}");
    }

    #[test]
    fn config_source_refuses_unknown_sources_and_bad_names() {
        let err = source(&[("UM_CONFIG_SOURCE", "etcd")]).unwrap_err();
        assert!(err.to_string().contains("UM_CONFIG_SOURCE"), "{err}");
        // A selector injected through the instance name is refused.
        let err = source(&[
            ("UM_CONFIG_SOURCE", "kubernetes"),
            ("UM_INSTANCE", "um,messaging.universal-messaging.io/service"),
            ("POD_NAMESPACE", "messaging"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("UM_INSTANCE"), "{err}");
        let err = source(&[
            ("UM_CONFIG_SOURCE", "kubernetes"),
            ("UM_INSTANCE", "um"),
            ("POD_NAMESPACE", "Messaging"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("POD_NAMESPACE"), "{err}");
    }
}
