//! The schemas' CEL rules, evaluated client-side with kube-cel: every
//! sample passes, and each broken manifest fails with the message and field
//! the administrator should see. (The e2e stage 20-crds.sh checks the same
//! against the real apiserver.)

mod common;

use common::all_objects_of_kind;
use kube::CustomResourceExt;
use serde_json::{Value, json};
use um_crds::{NotifierDestination, Storage, Tenant};

fn schema<K: CustomResourceExt>() -> Value {
    let crd = serde_json::to_value(K::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// `(field path, message)` of every failing rule.
fn failures<K: CustomResourceExt>(object: &Value) -> Vec<(String, String)> {
    match kube::core::cel::Validator::new().validate(&schema::<K>(), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| (e.field_path, e.message))
            .collect(),
    }
}

fn sample(dir: &str, kind: &str, name: &str) -> Value {
    all_objects_of_kind(dir, kind)
        .into_iter()
        .map(|(_, doc)| doc)
        .find(|doc| doc["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no sample {kind} {name}"))
}

fn assert_refused<K: CustomResourceExt>(object: &Value, field: &str, message_part: &str) {
    let found = failures::<K>(object);
    assert!(
        found
            .iter()
            .any(|(path, message)| path == field && message.contains(message_part)),
        "expected a failure at {field} containing {message_part:?}, got {found:?}"
    );
}

#[test]
fn every_sample_passes_the_rules() {
    for (file, doc) in all_objects_of_kind("tenants", "Tenant") {
        assert_eq!(failures::<Tenant>(&doc), vec![], "{}", file.display());
    }
    for (file, doc) in all_objects_of_kind("storages", "Storage") {
        assert_eq!(failures::<Storage>(&doc), vec![], "{}", file.display());
    }
    for (file, doc) in all_objects_of_kind("notifiers", "NotifierDestination") {
        assert_eq!(
            failures::<NotifierDestination>(&doc),
            vec![],
            "{}",
            file.display()
        );
    }
}

#[test]
fn two_messaging_platforms_are_refused() {
    let mut tenant = sample("tenants", "Tenant", "acme-telegram");
    tenant["spec"]["messaging"]["line"] =
        sample("tenants", "Tenant", "acme-line")["spec"]["messaging"]["line"].clone();
    assert_refused::<Tenant>(&tenant, "spec.messaging", "set only one messaging platform");
}

#[test]
fn no_messaging_platform_is_refused() {
    let mut tenant = sample("tenants", "Tenant", "acme-telegram");
    tenant["spec"]["messaging"] = json!({});
    assert_refused::<Tenant>(
        &tenant,
        "spec.messaging",
        "set one messaging platform under spec.messaging",
    );
}

#[test]
fn two_or_no_cx_platforms_are_refused() {
    let mut tenant = sample("tenants", "Tenant", "acme-telegram");
    tenant["spec"]["cx"]["pureConnect"] =
        sample("tenants", "Tenant", "acme-bedore")["spec"]["cx"]["pureConnect"].clone();
    assert_refused::<Tenant>(&tenant, "spec.cx", "set only one contact-center platform");
    tenant["spec"]["cx"] = json!({});
    assert_refused::<Tenant>(&tenant, "spec.cx", "set one contact-center platform");
}

#[test]
fn basic_api_auth_needs_a_password_and_none_allows_none() {
    let mut tenant = sample("tenants", "Tenant", "acme-bedore");
    tenant["spec"]["apiAuth"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    assert_refused::<Tenant>(
        &tenant,
        "spec.apiAuth.password",
        "required when type is basic",
    );
    let mut tenant = sample("tenants", "Tenant", "acme-bedore");
    tenant["spec"]["apiAuth"]["type"] = json!("none");
    assert_refused::<Tenant>(
        &tenant,
        "spec.apiAuth.password",
        "only allowed when type is basic",
    );
}

#[test]
fn cross_field_rules_of_variants() {
    let mut tenant = sample("tenants", "Tenant", "acme-telegram");
    tenant["spec"]["cx"]["genesysCloud"]["googleMaps"] = json!({"enabled": true});
    assert_refused::<Tenant>(
        &tenant,
        "spec.cx.genesysCloud.googleMaps.apiKey",
        "apiKey is required",
    );

    let mut tenant = sample("tenants", "Tenant", "acme-wechat");
    tenant["spec"]["messaging"]["wechat"]
        .as_object_mut()
        .unwrap()
        .remove("encodingAesKey");
    assert_refused::<Tenant>(
        &tenant,
        "spec.messaging.wechat.encodingAesKey",
        "encodingAesKey is required",
    );

    let mut tenant = sample("tenants", "Tenant", "acme-kakao-infobank");
    tenant["spec"]["messaging"]["kakaoInfobank"]["api"] = json!("omni");
    assert_refused::<Tenant>(
        &tenant,
        "spec.messaging.kakaoInfobank.clientPassword",
        "required when api is omni",
    );

    let mut tenant = sample("tenants", "Tenant", "acme-line");
    let line = tenant["spec"]["messaging"]["line"].as_object_mut().unwrap();
    line.remove("channelAccessToken");
    line.remove("channelId");
    assert_refused::<Tenant>(
        &tenant,
        "spec.messaging.line.channelAccessToken",
        "set channelAccessToken",
    );
}

#[test]
fn storage_settings_must_match_the_type() {
    let mut storage = sample("storages", "Storage", "s3");
    storage["spec"]["type"] = json!("gcs");
    assert_refused::<Storage>(
        &storage,
        "spec.gcs",
        "gcs settings are required when type is gcs",
    );
    assert_refused::<Storage>(
        &storage,
        "spec.s3",
        "s3 settings are only allowed when type is s3",
    );

    let mut storage = sample("storages", "Storage", "s3");
    storage["spec"]["s3"]
        .as_object_mut()
        .unwrap()
        .remove("accessKeyId");
    assert_refused::<Storage>(&storage, "spec.s3.secretAccessKey", "go together");
}

#[test]
fn notifier_target_must_match_the_type() {
    let mut pagerduty = sample("notifiers", "NotifierDestination", "pagerduty");
    pagerduty["spec"]
        .as_object_mut()
        .unwrap()
        .remove("routingKey");
    assert_refused::<NotifierDestination>(&pagerduty, "spec.routingKey", "routingKey is required");

    let mut slack = sample("notifiers", "NotifierDestination", "slack");
    slack["spec"]["routingKey"] = json!({"name": "x", "key": "y"});
    assert_refused::<NotifierDestination>(
        &slack,
        "spec.routingKey",
        "only allowed when type is pagerDuty",
    );
    slack["spec"].as_object_mut().unwrap().remove("url");
    assert_refused::<NotifierDestination>(&slack, "spec.url", "url is required");
}
