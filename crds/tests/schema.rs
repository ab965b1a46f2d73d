//! Properties of the generated schemas: no field can hold a literal
//! credential, `secret_refs` knows every reference of every variant, and
//! the CEL rules are where they must be and name fields that exist.

mod common;

use std::collections::BTreeSet;

use common::secret_ref_paths;
use kube::CustomResourceExt;
use serde_json::{Value, json};
use um_crds::{
    CxSpec, MessagingSpec, NotifierDestination, SecretRefs, Storage, StorageSpec, Tenant,
};

fn open_api_schema<K: CustomResourceExt>() -> Value {
    let crd = serde_json::to_value(K::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn spec_schema<K: CustomResourceExt>() -> Value {
    open_api_schema::<K>()["properties"]["spec"].clone()
}

fn is_secret_key_ref_schema(schema: &Value) -> bool {
    let props: BTreeSet<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["type"] == "object" && props == BTreeSet::from(["key", "name"]) && required == props
}

/// Words that mark a field as a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "accesskey",
    "accountkey",
    "aeskey",
    "privatekey",
    "routingkey",
    "credential",
];

fn walk_properties(schema: &Value, path: &str, visit: &mut dyn FnMut(&str, &str, &Value)) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, child) in props {
            let child_path = format!("{path}.{name}");
            visit(&child_path, name, child);
            walk_properties(child, &child_path, visit);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if schema[nested].is_object() {
            walk_properties(&schema[nested], &format!("{path}[]"), visit);
        }
    }
}

#[test]
fn no_spec_field_can_hold_a_literal_credential() {
    let mut checked = 0;
    for (kind, spec) in [
        ("Tenant", spec_schema::<Tenant>()),
        ("Storage", spec_schema::<Storage>()),
        ("NotifierDestination", spec_schema::<NotifierDestination>()),
    ] {
        walk_properties(&spec, kind, &mut |path, name, schema| {
            let lower = name.to_ascii_lowercase();
            if CREDENTIAL_WORDS.iter().any(|word| lower.contains(word)) {
                checked += 1;
                assert!(
                    is_secret_key_ref_schema(schema),
                    "{path} looks like a credential but is not a SecretKeyRef: {schema:#}"
                );
            }
            // Free-form maps could smuggle credentials in under any name.
            if schema["additionalProperties"]["type"] == "string" {
                assert!(
                    ["customData", "attributes"].contains(&name),
                    "{path} is a free-form map; only customData and attributes may be"
                );
            }
        });
    }
    // Sanity: the walk really visited the credential fields.
    assert!(checked > 40, "only {checked} credential fields found");
}

/// A value for `schema` with every optional field filled in; Secret
/// references get `key` = their path so they can be told apart.
fn maximal_instance(schema: &Value, path: &str) -> Value {
    if is_secret_key_ref_schema(schema) {
        return json!({"name": "s", "key": path});
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            if let Some(props) = schema["properties"].as_object() {
                let fields = props
                    .iter()
                    .map(|(name, child)| {
                        let child_path = if path.is_empty() {
                            name.clone()
                        } else {
                            format!("{path}.{name}")
                        };
                        (name.clone(), maximal_instance(child, &child_path))
                    })
                    .collect();
                Value::Object(fields)
            } else {
                json!({"k": "v"})
            }
        }
        Some("array") => json!([maximal_instance(&schema["items"], path)]),
        Some("integer") => json!(schema["minimum"].as_f64().unwrap_or(1.0) as i64),
        Some("boolean") => json!(true),
        _ => json!("x"),
    }
}

fn paths_of_refs(refs: Vec<(&'static str, &um_crds::SecretKeyRef)>) -> BTreeSet<String> {
    refs.into_iter()
        .map(|(field, secret)| {
            assert_eq!(
                secret.key, field,
                "the reference at {field} was reported under another name"
            );
            field.to_owned()
        })
        .collect()
}

#[test]
fn secret_refs_know_every_reference_of_every_messaging_platform() {
    let messaging = spec_schema::<Tenant>()["properties"]["messaging"].clone();
    assert_eq!(MessagingSpec::KEYS.len(), 16);
    for key in MessagingSpec::KEYS {
        let variant = maximal_instance(&messaging["properties"][key], "");
        let mut expected = BTreeSet::new();
        secret_ref_paths(&variant, "", &mut expected);
        assert!(!expected.is_empty(), "{key} has no credential at all");
        let spec: MessagingSpec = serde_json::from_value(json!({ *key: variant })).unwrap();
        assert_eq!(spec.key(), *key);
        assert_eq!(paths_of_refs(spec.secret_refs()), expected, "{key}");
    }
}

#[test]
fn the_messaging_one_of_is_the_platform_table() {
    let names: Vec<&str> = um_config::Platform::ALL
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(MessagingSpec::KEYS, names.as_slice());
}

/// A description with its line breaks (doc comments wrap) as spaces.
fn one_line(description: &Value) -> String {
    description
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What this version does not serve says so where `kubectl explain` shows it.
#[test]
fn preview_platforms_and_unused_settings_are_marked_not_implemented() {
    let spec = spec_schema::<Tenant>();
    let messaging = &spec["properties"]["messaging"]["properties"];
    for platform in um_config::Platform::ALL {
        let description = one_line(&messaging[platform.as_str()]["description"]);
        assert_eq!(
            description.contains("not implemented in this version"),
            !platform.is_supported(),
            "{platform}: {description}"
        );
    }
    let genesys = &spec["properties"]["cx"]["properties"]["genesysCloud"]["properties"];
    for (path, schema) in [
        (
            "cx.pureConnect",
            &spec["properties"]["cx"]["properties"]["pureConnect"],
        ),
        ("cx.genesysCloud.commander", &genesys["commander"]),
        ("cx.genesysCloud.googleMaps", &genesys["googleMaps"]),
        ("apiAuth", &spec["properties"]["apiAuth"]),
        ("storageRef", &spec["properties"]["storageRef"]),
        (
            "messagingOptions.showSystemMessages",
            &spec["properties"]["messagingOptions"]["properties"]["showSystemMessages"],
        ),
    ] {
        let description = one_line(&schema["description"]);
        assert!(
            description
                .to_lowercase()
                .contains("not implemented in this version"),
            "{path}: {description}"
        );
    }
}

#[test]
fn secret_refs_know_every_reference_of_every_cx_platform() {
    let cx = spec_schema::<Tenant>()["properties"]["cx"].clone();
    for key in CxSpec::KEYS {
        let variant = maximal_instance(&cx["properties"][key], "");
        let mut expected = BTreeSet::new();
        secret_ref_paths(&variant, "", &mut expected);
        let spec: CxSpec = serde_json::from_value(json!({ *key: variant })).unwrap();
        assert_eq!(paths_of_refs(spec.secret_refs()), expected, "{key}");
    }
}

#[test]
fn secret_refs_know_every_reference_of_every_storage_type() {
    let schema = spec_schema::<Storage>();
    for storage_type in um_crds::StorageType::ALL {
        let key = storage_type.as_str();
        let settings = maximal_instance(&schema["properties"][key], "");
        let mut expected = BTreeSet::new();
        secret_ref_paths(&settings, "", &mut expected);
        let spec: StorageSpec =
            serde_json::from_value(json!({"type": key, key: settings})).unwrap();
        assert_eq!(paths_of_refs(spec.secret_refs()), expected, "{key}");
    }
}

fn rules_at(schema: &Value) -> Vec<Value> {
    schema["x-kubernetes-validations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn one_of_rules_sit_on_messaging_and_cx() {
    let spec = spec_schema::<Tenant>();
    let messaging = rules_at(&spec["properties"]["messaging"]);
    assert_eq!(messaging.len(), 2);
    for key in MessagingSpec::KEYS {
        assert!(
            messaging[0]["rule"]
                .as_str()
                .unwrap()
                .contains(&format!("has(self.{key})"))
        );
        assert!(
            messaging[1]["rule"]
                .as_str()
                .unwrap()
                .contains(&format!("has(self.{key})"))
        );
    }
    assert!(
        messaging[1]["rule"]
            .as_str()
            .unwrap()
            .ends_with(".filter(x, x).size() <= 1")
    );
    let cx = rules_at(&spec["properties"]["cx"]);
    assert_eq!(
        cx[0]["rule"],
        "has(self.genesysCloud) || has(self.pureConnect)"
    );
    assert_eq!(
        cx[1]["rule"],
        "[has(self.genesysCloud), has(self.pureConnect)].filter(x, x).size() <= 1"
    );
    // The variants themselves are plain objects: no oneOf/anyOf, which a
    // structural schema would not allow with differing properties.
    let text = serde_json::to_string(&spec).unwrap();
    assert!(!text.contains("\"oneOf\"") && !text.contains("\"anyOf\""));
}

#[test]
fn every_rule_has_a_message_and_a_field_path_that_exists() {
    let mut count = 0;
    for (kind, root) in [
        ("Tenant", open_api_schema::<Tenant>()),
        ("Storage", open_api_schema::<Storage>()),
        (
            "NotifierDestination",
            open_api_schema::<NotifierDestination>(),
        ),
    ] {
        let mut check = |path: &str, schema: &Value| {
            for rule in rules_at(schema) {
                count += 1;
                assert!(
                    rule["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{path}: {rule}"
                );
                if let Some(field_path) = rule["fieldPath"].as_str() {
                    let field = field_path.strip_prefix('.').unwrap();
                    assert!(
                        schema["properties"][field].is_object(),
                        "{path}: fieldPath {field_path} names no property"
                    );
                }
            }
        };
        check(kind, &root);
        walk_properties(&root, kind, &mut |path, _, schema| check(path, schema));
    }
    assert!(count >= 25, "only {count} rules");
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    for status in [
        open_api_schema::<Tenant>()["properties"]["status"].clone(),
        open_api_schema::<Storage>()["properties"]["status"].clone(),
        open_api_schema::<NotifierDestination>()["properties"]["status"].clone(),
    ] {
        let conditions = &status["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        assert!(status["properties"]["observedGeneration"].is_object());
    }
    let tenant_status = &open_api_schema::<Tenant>()["properties"]["status"]["properties"];
    for field in ["webhookUrl", "integrationId", "platform", "cx"] {
        assert!(tenant_status[field].is_object(), "{field}");
    }
}

#[test]
fn tenant_printer_columns() {
    let crd = serde_json::to_value(Tenant::crd()).unwrap();
    let columns: Vec<(String, String)> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"].is_null())
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["jsonPath"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Platform", ".status.platform"),
        ("CX", ".status.cx"),
        ("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
        ("Webhook URL", ".status.webhookUrl"),
        ("Age", ".metadata.creationTimestamp"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(columns, expected);
    assert_eq!(
        crd["spec"]["names"]["categories"],
        json!(["universal-messaging"])
    );
    assert_eq!(crd["spec"]["group"], um_crds::GROUP);
}
