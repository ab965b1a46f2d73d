//! Log lines in the bunyan shape, the reference level syntax with per-scope
//! and per-topic overrides, and secrets that never print.

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use um_config::Secret;
use um_connector::logging::{BunyanLayer, CapturedLogs, LevelSpec, LevelSpecError};

fn capture(level: &str, emit: impl FnOnce()) -> Vec<Value> {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            LevelSpec::parse(level)
                .unwrap()
                .filter(um_connector::LOG_HOMES),
        )
        .with(BunyanLayer::new("telegram", logs.clone()));
    tracing::subscriber::with_default(subscriber, emit);
    logs.lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[test]
fn records_have_the_bunyan_fields() {
    let token = Secret::new("123456:ABC-very-secret");
    let records = capture("TRACE", || {
        let span = tracing::info_span!("request", tenant = "shop.acme");
        let _entered = span.enter();
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!(bot_token = ?token, attempt = 2, "hello {}", "world");
        tracing::warn!(shown = %token, "w");
        tracing::error!(name = "field called name", "e");
    });
    assert_eq!(records.len(), 5);
    let levels: Vec<u64> = records
        .iter()
        .map(|r| r["level"].as_u64().unwrap())
        .collect();
    assert_eq!(levels, [10, 20, 30, 40, 50]);
    let info = &records[2];
    assert_eq!(info["v"], 0);
    assert_eq!(info["name"], "telegram");
    assert!(!info["hostname"].as_str().unwrap().is_empty());
    assert_eq!(info["pid"], std::process::id());
    assert_eq!(info["msg"], "hello world");
    assert_eq!(info["attempt"], 2);
    assert_eq!(info["tenant"], "shop.acme", "span fields are on the record");
    assert_eq!(info["scope"], "request");
    let time = info["time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(time.ends_with('Z'), "{time}");
    assert_eq!(info["bot_token"], "[REDACTED]");
    assert_eq!(records[3]["shown"], "[REDACTED]");
    // A field cannot overwrite the record's own keys.
    assert_eq!(records[4]["name"], "telegram");
    assert_eq!(records[4]["field_name"], "field called name");
    for record in &records {
        assert!(!record.to_string().contains("very-secret"), "{record}");
    }
}

#[test]
fn default_level_with_a_scope_override() {
    let records = capture("DEBUG;TRACE:{:request}", || {
        tracing::trace!("outside trace");
        tracing::debug!("outside debug");
        let span = tracing::info_span!("request");
        let _entered = span.enter();
        tracing::trace!("inside trace");
    });
    let msgs: Vec<&str> = records.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["outside debug", "inside trace"]);
}

#[test]
fn topic_overrides_and_lowered_defaults() {
    let records = capture("WARN;DEBUG:{bus},{telegram}", || {
        tracing::info!("app info");
        tracing::debug!(target: "um_connector::machinery::bus::consumer", "bus debug");
        tracing::debug!(target: "um_connector::machinery::store", "store debug");
        tracing::debug!(target: "um_connector::platforms::telegram::platform", "telegram debug");
        tracing::warn!("app warn");
    });
    let msgs: Vec<&str> = records.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["bus debug", "telegram debug", "app warn"]);
}

#[test]
fn level_syntax_parses_into_directives() {
    let spec =
        LevelSpec::parse("WARN;DEBUG:{bus:envelope,request},{store};TRACE:{:delivery}").unwrap();
    assert_eq!(
        spec.directives(um_connector::LOG_HOMES),
        [
            "warn",
            "um_connector::machinery::bus[envelope]=debug",
            "um_connector::machinery::bus[request]=debug",
            "um_connector::platforms::bus[envelope]=debug",
            "um_connector::platforms::bus[request]=debug",
            "um_connector::bus[envelope]=debug",
            "um_connector::bus[request]=debug",
            "um_connector::machinery::store=debug",
            "um_connector::platforms::store=debug",
            "um_connector::store=debug",
            "[delivery]=trace"
        ]
    );
    assert_eq!(
        LevelSpec::parse("")
            .unwrap()
            .directives(um_connector::LOG_HOMES),
        ["info"]
    );
    assert_eq!(
        LevelSpec::parse("fatal")
            .unwrap()
            .directives(um_connector::LOG_HOMES),
        ["error"]
    );
    assert!(matches!(
        LevelSpec::parse("LOUD"),
        Err(LevelSpecError::UnknownLevel { .. })
    ));
    assert!(matches!(
        LevelSpec::parse("INFO;TRACE"),
        Err(LevelSpecError::Syntax { .. })
    ));
    assert!(matches!(
        LevelSpec::parse("INFO;TRACE:{}"),
        Err(LevelSpecError::Syntax { .. })
    ));
    assert!(matches!(
        LevelSpec::parse("INFO;TRACE:{bus"),
        Err(LevelSpecError::Syntax { .. })
    ));
    let error = LevelSpec::parse("INFO;LOUD:{bus}").unwrap_err().to_string();
    assert!(
        error.contains("LOUD") && error.contains("TRACE, DEBUG"),
        "{error}"
    );
}
