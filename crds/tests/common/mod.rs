//! Loading of the manifests under `config/samples/`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
}

/// Every YAML document of every `.yaml` file in `config/samples/<dir>`,
/// with the file it came from.
pub fn documents(dir: &str) -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples_dir().join(dir))
        .unwrap_or_else(|err| panic!("cannot list config/samples/{dir}: {err}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        for value in documents {
            if !value.is_null() {
                out.push((file.clone(), value));
            }
        }
    }
    out
}

/// The documents of `kind` in `config/samples/<dir>`.
pub fn objects_of_kind(dir: &str, kind: &str) -> Vec<(PathBuf, Value)> {
    documents(dir)
        .into_iter()
        .filter(|(_, doc)| doc["kind"] == kind)
        .collect()
}

/// The documents of `kind` in `config/samples/<dir>` and in
/// `config/samples/preview/<dir>`, where it exists.
pub fn all_objects_of_kind(dir: &str, kind: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for dir in [dir.to_owned(), format!("preview/{dir}")] {
        if samples_dir().join(&dir).is_dir() {
            out.extend(objects_of_kind(&dir, kind));
        }
    }
    out
}

/// `(secret name, key)` of every Secret document in the samples.
pub fn sample_secret_keys() -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for dir in [
        "secrets",
        "tenants",
        "notifiers",
        "preview/tenants",
        "preview/storages",
    ] {
        for (_, secret) in objects_of_kind(dir, "Secret") {
            let name = secret["metadata"]["name"].as_str().unwrap().to_owned();
            for field in ["stringData", "data"] {
                if let Some(data) = secret[field].as_object() {
                    keys.extend(data.keys().map(|key| (name.clone(), key.clone())));
                }
            }
        }
    }
    keys
}

/// Paths (dotted, from the document root) of every object shaped like a
/// SecretKeyRef: exactly the fields `name` and `key`.
pub fn secret_ref_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(fields) = value {
        let names: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
        if names == BTreeSet::from(["key", "name"]) {
            out.insert(path.to_owned());
            return;
        }
        for (name, field) in fields {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            secret_ref_paths(field, &child, out);
        }
    }
}

/// True when every field of `expected` is present with the same value in
/// `actual` (which may hold more, e.g. defaults): nothing of a sample was
/// dropped or altered by deserialising and serialising it.
pub fn is_contained_in(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().all(|(key, value)| {
            a.get(key)
                .is_some_and(|found| is_contained_in(value, found))
        }),
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}
