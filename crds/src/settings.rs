//! The non-credential fields of a spec part as flat `field -> text` pairs,
//! the shape `um_config` carries for platforms and storages without a typed
//! configuration (`MessagingConfig::Generic`, `StorageConfig::settings`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Flattens `value`'s serialised fields: nested objects become dotted keys
/// (`switcher.serviceCode`), strings stay as they are, numbers, booleans and
/// lists become their JSON text. Fields at `skip` (the Secret references)
/// are left out.
pub(crate) fn flatten_settings<T: Serialize>(value: &T, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Specs are plain data with string keys; serialising cannot fail.
    if let Ok(Value::Object(fields)) = serde_json::to_value(value) {
        for (name, field) in fields {
            flatten_into(&mut out, name, field, skip);
        }
    }
    out
}

fn flatten_into(out: &mut BTreeMap<String, String>, path: String, value: Value, skip: &[&str]) {
    if skip.contains(&path.as_str()) {
        return;
    }
    match value {
        Value::Null => {}
        Value::String(text) => {
            out.insert(path, text);
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                flatten_into(out, format!("{path}.{name}"), field, skip);
            }
        }
        other => {
            out.insert(path, other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_and_skips_secret_fields() {
        let value = json!({
            "channelId": "123",
            "channelSecret": {"name": "s", "key": "k"},
            "switcher": {"serviceCode": "x", "secret": {"name": "s", "key": "k2"}},
            "allowed": ["a", "b"],
            "poll": 5,
            "flag": true
        });
        let flat = flatten_settings(&value, &["channelSecret", "switcher.secret"]);
        let expected: BTreeMap<String, String> = [
            ("allowed", r#"["a","b"]"#),
            ("channelId", "123"),
            ("flag", "true"),
            ("poll", "5"),
            ("switcher.serviceCode", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(flat, expected);
    }
}
