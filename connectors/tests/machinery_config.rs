//! The mounted configuration: reloaded when the file changes (also when
//! Kubernetes swaps the `..data` symlink), a broken file keeps the last good
//! configuration, and tenant differences are computed exactly.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use um_config::{MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_connector::machinery::config_watch::{ConfigWatcher, TenantChange, diff_tenants};

fn tenant(key: &str, token: &str) -> TenantConfig {
    TenantConfig::new(
        key,
        key,
        Platform::Telegram,
        format!("https://um.example.com/telegram/{key}"),
    )
    .with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
        bot_token: Secret::new(token),
        webhook_secret_token: None,
        api_base_url: None,
    }))
}

fn service(tenants: &[(&str, &str)]) -> ServiceConfig {
    let mut config = ServiceConfig::new("telegram");
    for (key, token) in tenants {
        config.tenants.insert((*key).into(), tenant(key, token));
    }
    config
}

/// Writes the file the way the kubelet does: a new timestamped directory,
/// then an atomic swap of the `..data` symlink.
fn publish(dir: &std::path::Path, config_bytes: &[u8], generation: u32) {
    let data = dir.join(format!("..{generation}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("service.json"), config_bytes).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("service.json").exists() {
        std::os::unix::fs::symlink("..data/service.json", dir.join("service.json")).unwrap();
    }
}

async fn until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test]
async fn reloads_on_change_and_keeps_the_last_good_file() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), &service(&[("shop.acme", "1:A")]).to_json(), 1);
    let watcher = ConfigWatcher::load(dir.path()).unwrap();
    assert!(watcher.tenant("shop.acme").is_some());
    let shutdown = CancellationToken::new();
    let mut changes = watcher.subscribe();
    let task = watcher.spawn_reloader(Duration::from_millis(50), shutdown.clone());

    publish(
        dir.path(),
        &service(&[("shop.acme", "1:B"), ("shop.new", "2:C")]).to_json(),
        2,
    );
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("a change is announced")
        .unwrap();
    assert!(watcher.tenant("shop.new").is_some());

    publish(dir.path(), b"{ not json", 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(watcher.tenant("shop.new").is_some(), "broken file ignored");

    publish(dir.path(), &service(&[("shop.acme", "1:B")]).to_json(), 4);
    assert!(
        until(Duration::from_secs(5), || watcher
            .tenant("shop.new")
            .is_none())
        .await
    );
    shutdown.cancel();
    task.await.unwrap();
}

#[test]
fn refuses_to_start_without_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = ConfigWatcher::load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("service.json"), "{error}");
}

#[test]
fn tenant_differences() {
    let old = service(&[("a.one", "1"), ("a.two", "2"), ("a.three", "3")]);
    let new = service(&[("a.one", "1"), ("a.two", "22"), ("a.four", "4")]);
    let changes = diff_tenants(&old, &new);
    assert_eq!(changes.len(), 3);
    assert!(matches!(&changes[0], TenantChange::Added(t) if t.key == "a.four"));
    assert!(
        matches!(&changes[1], TenantChange::Changed { previous, current } if previous.key == "a.two" && current.key == "a.two")
    );
    assert!(matches!(&changes[2], TenantChange::Removed(t) if t.key == "a.three"));
    assert!(diff_tenants(&new, &new).is_empty());
    // The debug form of a change never shows a credential.
    assert!(!format!("{changes:?}").contains("\"22\""));
}
