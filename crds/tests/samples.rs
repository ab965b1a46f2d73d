//! The manifests under `config/samples/` are what the types accept, cover
//! every platform and storage/notifier type, and every Secret reference in
//! them is listed by `secret_refs` and backed by a sample Secret.

mod common;

use std::collections::BTreeSet;

use common::{is_contained_in, objects_of_kind, sample_secret_keys, secret_ref_paths};
use serde_json::Value;
use um_config::Platform;
use um_crds::{NotifierDestination, NotifierType, SecretRefs, Storage, StorageType, Tenant};

/// Supported platforms' samples, then the preview ones.
fn sample_tenants() -> Vec<(Value, Tenant)> {
    tenants_in("tenants")
        .into_iter()
        .chain(tenants_in("preview/tenants"))
        .collect()
}

fn tenants_in(dir: &str) -> Vec<(Value, Tenant)> {
    objects_of_kind(dir, "Tenant")
        .into_iter()
        .map(|(file, doc)| {
            let tenant: Tenant = serde_json::from_value(doc.clone())
                .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
            (doc, tenant)
        })
        .collect()
}

#[test]
fn one_sample_tenant_per_platform() {
    let platforms: Vec<Platform> = sample_tenants()
        .iter()
        .map(|(_, t)| t.spec.platform())
        .collect();
    let distinct: BTreeSet<Platform> = platforms.iter().copied().collect();
    assert_eq!(platforms.len(), Platform::ALL.len(), "{platforms:?}");
    assert_eq!(distinct, Platform::ALL.iter().copied().collect());
}

#[test]
fn samples_are_split_into_supported_and_preview() {
    let platforms = |dir: &str| -> BTreeSet<Platform> {
        tenants_in(dir)
            .iter()
            .map(|(_, t)| t.spec.platform())
            .collect()
    };
    assert_eq!(platforms("tenants"), Platform::supported().collect());
    assert_eq!(
        platforms("preview/tenants"),
        Platform::ALL
            .iter()
            .copied()
            .filter(|p| !p.is_supported())
            .collect()
    );
}

#[test]
fn sample_tenants_round_trip_without_losing_a_field() {
    for (doc, tenant) in sample_tenants() {
        let serialised = serde_json::to_value(&tenant).unwrap();
        assert!(
            is_contained_in(&doc, &serialised),
            "{} lost or changed a field:\n{doc:#}\nbecame\n{serialised:#}",
            tenant.metadata.name.as_deref().unwrap_or_default()
        );
        let again: Tenant = serde_json::from_value(serialised).unwrap();
        assert_eq!(again, tenant);
        // The variant key and the platform agree with um_config's names.
        assert_eq!(tenant.spec.messaging.key(), tenant.spec.platform().as_str());
    }
}

#[test]
fn secret_refs_list_every_secret_reference_of_each_sample_tenant() {
    let secrets = sample_secret_keys();
    for (doc, tenant) in sample_tenants() {
        let mut in_manifest = BTreeSet::new();
        secret_ref_paths(&doc["spec"], "spec", &mut in_manifest);
        let listed: BTreeSet<String> = tenant
            .spec
            .secret_refs()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(listed, in_manifest, "{:?}", tenant.metadata.name);
        for (path, secret) in tenant.spec.secret_refs() {
            assert!(
                secrets.contains(&(secret.name.clone(), secret.key.clone())),
                "{:?} {path} names {secret}, which no sample Secret holds",
                tenant.metadata.name
            );
        }
    }
}

#[test]
fn telegram_sample_resolves_to_the_expected_references() {
    let (_, tenant) = sample_tenants()
        .into_iter()
        .find(|(_, t)| t.spec.platform() == Platform::Telegram)
        .unwrap();
    let refs: Vec<(String, String)> = tenant
        .spec
        .secret_refs()
        .into_iter()
        .map(|(path, secret)| (path, secret.to_string()))
        .collect();
    let expected = [
        (
            "spec.messaging.telegram.botToken",
            "secret/acme-telegram[botToken]",
        ),
        (
            "spec.cx.genesysCloud.oauthClient.clientSecret",
            "secret/genesys-cloud[clientSecret]",
        ),
        (
            "spec.cx.genesysCloud.integration.webhookToken",
            "secret/genesys-cloud[webhookToken]",
        ),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(refs, expected);
    let genesys = tenant.spec.cx.genesys_cloud().unwrap();
    assert_eq!(genesys.region.api_base_url(), "https://api.mypurecloud.ie");
    assert_eq!(genesys.commander.prefix, ">");
    assert!(!genesys.commander.use_default);
}

#[test]
fn sample_storages_cover_every_type_with_one_default() {
    let secrets = sample_secret_keys();
    let mut types = BTreeSet::new();
    let mut defaults = 0;
    for (doc, value) in objects_of_kind("preview/storages", "Storage")
        .into_iter()
        .map(|(_, d)| (d.clone(), d))
    {
        let storage: Storage = serde_json::from_value(value).unwrap();
        let serialised = serde_json::to_value(&storage).unwrap();
        assert!(
            is_contained_in(&doc, &serialised),
            "{doc:#} became {serialised:#}"
        );
        types.insert(storage.spec.storage_type.as_str());
        defaults += usize::from(storage.spec.default);

        let key = storage.spec.storage_type.as_str();
        let mut in_manifest = BTreeSet::new();
        secret_ref_paths(&doc["spec"][key], "", &mut in_manifest);
        let listed: BTreeSet<String> = storage
            .spec
            .secret_refs()
            .into_iter()
            .map(|(field, _)| field.to_owned())
            .collect();
        assert_eq!(listed, in_manifest, "{key}");
        for (field, secret) in storage.spec.secret_refs() {
            assert!(
                secrets.contains(&(secret.name.clone(), secret.key.clone())),
                "{key}.{field}"
            );
            assert!(
                !storage.spec.settings().contains_key(field),
                "{key}: {field} in settings"
            );
        }
    }
    let all: BTreeSet<&str> = StorageType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, all);
    assert_eq!(defaults, 1, "exactly one sample Storage is the default");
}

#[test]
fn s3_settings_carry_bucket_and_cloudfront_but_no_keys() {
    let (_, doc) = objects_of_kind("preview/storages", "Storage")
        .into_iter()
        .find(|(_, d)| d["spec"]["type"] == "s3")
        .unwrap();
    let storage: Storage = serde_json::from_value(doc).unwrap();
    let settings = storage.spec.settings();
    assert_eq!(settings["bucket"], "acme-um-attachments");
    assert_eq!(
        settings["cloudFrontUrl"],
        "https://d111111abcdef8.cloudfront.net"
    );
    assert_eq!(settings["region"], "eu-west-1");
    assert!(settings.keys().all(|k| !k.contains("Key")), "{settings:?}");
}

#[test]
fn sample_notifiers_cover_every_type_and_name_their_target() {
    let secrets = sample_secret_keys();
    let mut types = BTreeSet::new();
    for (_, doc) in objects_of_kind("notifiers", "NotifierDestination") {
        let notifier: NotifierDestination = serde_json::from_value(doc.clone()).unwrap();
        assert!(is_contained_in(
            &doc,
            &serde_json::to_value(&notifier).unwrap()
        ));
        let (field, secret) = notifier
            .spec
            .target()
            .expect("every sample names its target");
        let expected_field = if notifier.spec.notifier_type == NotifierType::PagerDuty {
            "routingKey"
        } else {
            "url"
        };
        assert_eq!(field, expected_field);
        assert!(secrets.contains(&(secret.name.clone(), secret.key.clone())));
        types.insert(notifier.spec.notifier_type.as_str());
    }
    let all: BTreeSet<&str> = NotifierType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, all);
}
