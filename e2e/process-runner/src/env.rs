//! A container's environment as the kubelet builds it: envFrom, then env
//! (later entries win), `$(VAR)` references expanded against what came before.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVarSource, ObjectFieldSelector, Pod};

use crate::lookup::ObjectLookup;

/// What `fieldRef` can read about the Pod.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub node_name: String,
    pub service_account: String,
    pub pod_ip: String,
    pub host_ip: String,
}

impl PodFacts {
    pub fn of(pod: &Pod, node_name: &str, pod_ip: &str, host_ip: &str) -> Self {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        PodFacts {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            node_name: node_name.to_owned(),
            service_account: spec
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            pod_ip: pod_ip.to_owned(),
            host_ip: host_ip.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("env {var}: secret {name:?} not found")]
    SecretMissing { var: String, name: String },
    #[error("env {var}: key {key:?} not found in secret {name:?}")]
    SecretKeyMissing {
        var: String,
        name: String,
        key: String,
    },
    #[error("env {var}: configmap {name:?} not found")]
    ConfigMapMissing { var: String, name: String },
    #[error("env {var}: key {key:?} not found in configmap {name:?}")]
    ConfigMapKeyMissing {
        var: String,
        name: String,
        key: String,
    },
    #[error("env {var}: secret {name:?} key {key:?} is not UTF-8")]
    NotUtf8 {
        var: String,
        name: String,
        key: String,
    },
    #[error("env {var}: unsupported fieldRef {path:?}")]
    UnsupportedField { var: String, path: String },
    #[error("env {var}: resourceFieldRef is not supported by the process runner")]
    UnsupportedResourceField { var: String },
    #[error("envFrom: secret {0:?} not found")]
    EnvFromSecretMissing(String),
    #[error("envFrom: configmap {0:?} not found")]
    EnvFromConfigMapMissing(String),
}

/// Reads a downward-API field (env `fieldRef` and downwardAPI volumes).
pub fn field_value(facts: &PodFacts, path: &str) -> Option<String> {
    let bracketed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
    };
    Some(match path {
        "metadata.name" => facts.name.clone(),
        "metadata.namespace" => facts.namespace.clone(),
        "metadata.uid" => facts.uid.clone(),
        "spec.nodeName" => facts.node_name.clone(),
        "spec.serviceAccountName" => facts.service_account.clone(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "metadata.labels" => format_map(&facts.labels),
        "metadata.annotations" => format_map(&facts.annotations),
        _ => {
            if let Some(key) = bracketed("metadata.labels") {
                facts.labels.get(key).cloned().unwrap_or_default()
            } else if let Some(key) = bracketed("metadata.annotations") {
                facts.annotations.get(key).cloned().unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

/// The kubelet's `key="value"` lines for whole label/annotation maps.
fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `$(VAR)` from `vars`; `$$` escapes `$`; unknown references stay
/// as written (Kubernetes semantics).
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn secret_string(
    lookup: &dyn ObjectLookup,
    var: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let Some(secret) = lookup.secret(name) else {
        return if optional {
            Ok(None)
        } else {
            Err(EnvError::SecretMissing {
                var: var.into(),
                name: name.into(),
            })
        };
    };
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone());
    let from_string = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.clone().into_bytes());
    match from_data.or(from_string) {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| EnvError::NotUtf8 {
                var: var.into(),
                name: name.into(),
                key: key.into(),
            }),
        None if optional => Ok(None),
        None => Err(EnvError::SecretKeyMissing {
            var: var.into(),
            name: name.into(),
            key: key.into(),
        }),
    }
}

fn config_map_string(
    lookup: &dyn ObjectLookup,
    var: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let Some(cm) = lookup.config_map(name) else {
        return if optional {
            Ok(None)
        } else {
            Err(EnvError::ConfigMapMissing {
                var: var.into(),
                name: name.into(),
            })
        };
    };
    match cm.data.as_ref().and_then(|d| d.get(key)) {
        Some(v) => Ok(Some(v.clone())),
        None if optional => Ok(None),
        None => Err(EnvError::ConfigMapKeyMissing {
            var: var.into(),
            name: name.into(),
            key: key.into(),
        }),
    }
}

fn value_from(
    var: &str,
    source: &EnvVarSource,
    facts: &PodFacts,
    lookup: &dyn ObjectLookup,
) -> Result<Option<String>, EnvError> {
    if let Some(r) = &source.secret_key_ref {
        return secret_string(lookup, var, &r.name, &r.key, r.optional.unwrap_or(false));
    }
    if let Some(r) = &source.config_map_key_ref {
        return config_map_string(lookup, var, &r.name, &r.key, r.optional.unwrap_or(false));
    }
    if let Some(ObjectFieldSelector { field_path, .. }) = &source.field_ref {
        return field_value(facts, field_path).map(Some).ok_or_else(|| {
            EnvError::UnsupportedField {
                var: var.into(),
                path: field_path.clone(),
            }
        });
    }
    if source.resource_field_ref.is_some() {
        return Err(EnvError::UnsupportedResourceField { var: var.into() });
    }
    Ok(None)
}

/// The container's environment. `base` holds what the runtime adds first
/// (KUBERNETES_SERVICE_HOST, ...); the Pod's own variables override it.
pub fn resolve_env(
    container: &Container,
    facts: &PodFacts,
    lookup: &dyn ObjectLookup,
    base: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EnvError> {
    let mut vars = base.clone();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.secret_ref {
            match lookup.secret(&r.name) {
                Some(secret) => {
                    for (k, v) in secret.data.iter().flatten() {
                        if let Ok(s) = String::from_utf8(v.0.clone()) {
                            vars.insert(format!("{prefix}{k}"), s);
                        }
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(EnvError::EnvFromSecretMissing(r.name.clone())),
            }
        }
        if let Some(r) = &from.config_map_ref {
            match lookup.config_map(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        vars.insert(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(EnvError::EnvFromConfigMapMissing(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            Some(source) => value_from(&var.name, source, facts, lookup)?,
            None => Some(expand(var.value.as_deref().unwrap_or(""), &vars)),
        };
        if let Some(value) = value {
            vars.insert(var.name.clone(), value);
        }
    }
    Ok(vars)
}

/// command + args with `$(VAR)` expanded; `entrypoint` stands in for an
/// empty `command` (the image's entrypoint is the mapped binary).
pub fn command_line(
    container: &Container,
    entrypoint: &str,
    vars: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut argv: Vec<String> = match &container.command {
        Some(cmd) if !cmd.is_empty() => cmd.iter().map(|c| expand(c, vars)).collect(),
        _ => vec![entrypoint.to_owned()],
    };
    argv.extend(container.args.iter().flatten().map(|a| expand(a, vars)));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::MapLookup;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, Secret,
        SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lookup() -> MapLookup {
        let mut l = MapLookup::default();
        l.secrets.insert(
            "creds".into(),
            Secret {
                metadata: ObjectMeta::default(),
                data: Some(
                    [("token".to_string(), ByteString(b"s3cret".to_vec()))]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
        );
        l.config_maps.insert(
            "settings".into(),
            ConfigMap {
                data: Some(
                    [
                        ("LEVEL".to_string(), "debug".to_string()),
                        ("REGION".to_string(), "eu".to_string()),
                    ]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            },
        );
        l
    }

    fn facts() -> PodFacts {
        PodFacts {
            name: "op-1".into(),
            namespace: "um".into(),
            node_name: "um-local".into(),
            pod_ip: "127.0.1.7".into(),
            labels: [("app".to_string(), "op".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn literal(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(source),
        }
    }

    fn field(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_every_source_in_kubelet_order() {
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                secret_ref: None,
            }]),
            env: Some(vec![
                literal("CFG_LEVEL", "info"),
                from(
                    "TOKEN",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "creds".into(),
                            key: "token".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "REGION",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "settings".into(),
                            key: "REGION".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from("POD_NAME", field("metadata.name")),
                from("POD_NAMESPACE", field("metadata.namespace")),
                from("POD_IP", field("status.podIP")),
                from("NODE", field("spec.nodeName")),
                from("APP", field("metadata.labels['app']")),
                literal("URL", "http://$(POD_IP):8080/$(MISSING)/$$(POD_IP)"),
            ]),
            ..Default::default()
        };
        let base = [(
            "KUBERNETES_SERVICE_HOST".to_string(),
            "127.0.0.1".to_string(),
        )]
        .into_iter()
        .collect();
        let env = resolve_env(&container, &facts(), &lookup(), &base).unwrap();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "127.0.0.1");
        assert_eq!(env["CFG_LEVEL"], "info", "env overrides envFrom");
        assert_eq!(env["CFG_REGION"], "eu");
        assert_eq!(env["TOKEN"], "s3cret");
        assert_eq!(env["REGION"], "eu");
        assert_eq!(env["POD_NAME"], "op-1");
        assert_eq!(env["POD_NAMESPACE"], "um");
        assert_eq!(env["POD_IP"], "127.0.1.7");
        assert_eq!(env["NODE"], "um-local");
        assert_eq!(env["APP"], "op");
        assert_eq!(env["URL"], "http://127.0.1.7:8080/$(MISSING)/$(POD_IP)");
    }

    #[test]
    fn missing_references_fail_unless_optional() {
        let secret_ref = |optional| EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "absent".into(),
                key: "k".into(),
                optional,
            }),
            ..Default::default()
        };
        let mut container = Container {
            name: "c".into(),
            env: Some(vec![from("X", secret_ref(None))]),
            ..Default::default()
        };
        let err = resolve_env(&container, &facts(), &lookup(), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            EnvError::SecretMissing {
                var: "X".into(),
                name: "absent".into()
            }
        );
        container.env = Some(vec![from("X", secret_ref(Some(true)))]);
        let env = resolve_env(&container, &facts(), &lookup(), &BTreeMap::new()).unwrap();
        assert!(!env.contains_key("X"));

        container.env = Some(vec![from(
            "Y",
            EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "creds".into(),
                    key: "nope".into(),
                    optional: None,
                }),
                ..Default::default()
            },
        )]);
        assert!(matches!(
            resolve_env(&container, &facts(), &lookup(), &BTreeMap::new()),
            Err(EnvError::SecretKeyMissing { .. })
        ));
        container.env = Some(vec![from("Z", field("spec.nope"))]);
        assert!(matches!(
            resolve_env(&container, &facts(), &lookup(), &BTreeMap::new()),
            Err(EnvError::UnsupportedField { .. })
        ));
    }

    #[test]
    fn command_line_uses_entrypoint_when_command_is_empty() {
        let vars: BTreeMap<String, String> = [("PORT".to_string(), "8080".to_string())]
            .into_iter()
            .collect();
        let mut c = Container {
            name: "c".into(),
            args: Some(vec!["--port=$(PORT)".into()]),
            ..Default::default()
        };
        assert_eq!(
            command_line(&c, "/bin/server", &vars),
            vec!["/bin/server", "--port=8080"]
        );
        c.command = Some(vec!["sh".into(), "-c".into()]);
        assert_eq!(
            command_line(&c, "/bin/server", &vars),
            vec!["sh", "-c", "--port=8080"]
        );
    }

    #[test]
    fn expand_edge_cases() {
        let vars = BTreeMap::new();
        assert_eq!(expand("a$b", &vars), "a$b");
        assert_eq!(expand("$(unterminated", &vars), "$(unterminated");
        assert_eq!(expand("$$", &vars), "$");
        assert_eq!(expand("end$", &vars), "end$");
    }
}
