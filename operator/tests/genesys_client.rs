//! The operator's Genesys Cloud client against the Genesys simulator, over
//! HTTP on loopback.

use std::sync::Arc;
use std::time::Duration;

use um_config::Secret;
use um_operator::genesys::{
    ClientCredentials, DeleteOutcome, EnsureOutcome, GenesysClient, GenesysError,
    IntegrationDirectory, IntegrationSpec, LoginError, PollPolicy,
};
use um_operator::region::GenesysEndpoints;
use um_simulators::genesys::{CreateCompletion, FaultTarget, GenesysOptions, GenesysSimulator};

const CLIENT_ID: &str = "operator-client";
const CLIENT_SECRET: &str = "operator-client-secret-value";
const INTEGRATIONS: &str = "/api/v2/conversations/messaging/integrations/open";

async fn simulator(completion: CreateCompletion) -> GenesysSimulator {
    let options = GenesysOptions {
        create_completion: completion,
        rate_limit_per_minute: 0,
        ..GenesysOptions::default()
    }
    .with_client(CLIENT_ID, CLIENT_SECRET);
    GenesysSimulator::start(options)
        .await
        .expect("simulator starts")
}

fn client(sim: &GenesysSimulator, secret: &str) -> GenesysClient {
    let endpoints = GenesysEndpoints {
        api_base_url: sim.base_url(),
        login_base_url: sim.base_url(),
    };
    let credentials = ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(secret),
    };
    GenesysClient::new(reqwest::Client::new(), endpoints, credentials).with_poll_policy(
        PollPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            give_up_after: Duration::from_secs(10),
        },
    )
}

fn spec(name: &str, token: &str) -> IntegrationSpec {
    IntegrationSpec {
        name: name.into(),
        webhook_url: "https://um.example.com/openmessaging/shop.acme".into(),
        webhook_token: Secret::new(token),
        supported_content_id: None,
    }
}

#[tokio::test]
async fn creates_and_polls_until_completed() {
    let sim = simulator(CreateCompletion::AfterGets(3)).await;
    let client = client(&sim, CLIENT_SECRET);
    let outcome = client
        .ensure_integration(None, &spec("ACME Telegram", "token-longer-than-15"))
        .await
        .unwrap();
    let EnsureOutcome::Created { id } = outcome else {
        panic!("expected a create, got {outcome:?}")
    };
    let record = sim.integration(&id).expect("integration exists at Genesys");
    assert_eq!(record.name, "ACME Telegram");
    assert_eq!(
        record.webhook_url,
        "https://um.example.com/openmessaging/shop.acme"
    );
    assert_eq!(record.secret_token, "token-longer-than-15");
    assert_eq!(record.create_status, "Completed");
    assert!(
        sim.count_requests("GET", &format!("{INTEGRATIONS}/{id}")) >= 3,
        "polled createStatus until Completed"
    );
    assert_eq!(sim.integrations().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn create_error_is_reported_with_genesys_message_and_cleaned_up() {
    let sim = simulator(CreateCompletion::AfterGets(1)).await;
    sim.fail_next_integration_creation("Supported content profile not found");
    let client = client(&sim, CLIENT_SECRET);
    let err = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap_err();
    assert!(matches!(err, GenesysError::CreateFailed { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("Supported content profile not found"),
        "{err}"
    );
    assert!(
        sim.integrations().is_empty(),
        "the failed integration was deleted"
    );
    // The next attempt starts clean and succeeds.
    let outcome = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, EnsureOutcome::Created { .. }),
        "{outcome:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn patches_only_what_changed() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    let id = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap()
        .id()
        .to_owned();
    let same = client
        .ensure_integration(Some(&id), &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    assert_eq!(same, EnsureOutcome::Unchanged { id: id.clone() });
    assert_eq!(sim.count_requests("PATCH", INTEGRATIONS), 0);

    let changed = client
        .ensure_integration(Some(&id), &spec("ACME renamed", "another-token-of-16+"))
        .await
        .unwrap();
    assert_eq!(
        changed,
        EnsureOutcome::Updated {
            id: id.clone(),
            fields: vec!["name", "webhook token"]
        }
    );
    assert_eq!(sim.count_requests("PATCH", INTEGRATIONS), 1);
    let record = sim.integration(&id).unwrap();
    assert_eq!(record.name, "ACME renamed");
    assert_eq!(record.secret_token, "another-token-of-16+");
    assert_eq!(sim.integrations().len(), 1, "no duplicate");
    sim.shutdown().await;
}

#[tokio::test]
async fn adopts_an_integration_whose_id_was_never_recorded() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    let created = client
        .create_integration(&spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    let outcome = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EnsureOutcome::Adopted {
            id: created.id.clone()
        }
    );
    assert_eq!(sim.integrations().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn adopts_what_a_previous_process_created_and_lists_once_per_burst() {
    let sim = simulator(CreateCompletion::Immediate).await;
    // A previous leader created it, then died before recording its id.
    let created = client(&sim, CLIENT_SECRET)
        .create_integration(&spec_for("t0"))
        .await
        .unwrap();
    let directory = Arc::new(IntegrationDirectory::default());
    let shared = || client(&sim, CLIENT_SECRET).with_directory(directory.clone());
    assert_eq!(
        shared()
            .ensure_integration(None, &spec_for("t0"))
            .await
            .unwrap(),
        EnsureOutcome::Adopted { id: created.id }
    );
    // A burst of new Tenants, one client each, as the operator holds them.
    for n in 1..=5 {
        let outcome = shared()
            .ensure_integration(None, &spec_for(&format!("t{n}")))
            .await
            .unwrap();
        assert!(
            matches!(outcome, EnsureOutcome::Created { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(sim.integrations().len(), 6);
    let listings = sim.count_requests("GET", INTEGRATIONS)
        - sim.count_requests("GET", &format!("{INTEGRATIONS}/"));
    assert_eq!(listings, 1, "one listing for the burst");
    // Deleted in Genesys behind the directory's back: created anew, not
    // adopted from the stale entry.
    let stale = shared().find_integration(&spec_for("t3")).await.unwrap();
    let stale = stale.expect("t3 is listed").id;
    client(&sim, CLIENT_SECRET)
        .delete_integration(&stale)
        .await
        .unwrap();
    let outcome = shared()
        .ensure_integration(None, &spec_for("t3"))
        .await
        .unwrap();
    let EnsureOutcome::Created { id } = outcome else {
        panic!("expected a create, got {outcome:?}")
    };
    assert_ne!(id, stale);
    sim.shutdown().await;
}

fn spec_for(tenant: &str) -> IntegrationSpec {
    IntegrationSpec {
        webhook_url: format!("https://um.example.com/openmessaging/shop.{tenant}"),
        ..spec(tenant, "token-longer-than-15")
    }
}

#[tokio::test]
async fn recreates_when_the_recorded_integration_is_gone() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    let first = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    client.delete_integration(first.id()).await.unwrap();
    let second = client
        .ensure_integration(Some(first.id()), &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    assert!(
        matches!(second, EnsureOutcome::Created { .. }),
        "{second:?}"
    );
    assert_ne!(second.id(), first.id());
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_is_idempotent() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    let id = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap()
        .id()
        .to_owned();
    assert_eq!(
        client.delete_integration(&id).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(sim.integration(&id).is_none());
    assert!(sim.deleted_integration_ids().contains(&id));
    assert_eq!(
        client.delete_integration(&id).await.unwrap(),
        DeleteOutcome::AlreadyGone
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_credentials_are_named_without_the_secret() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, "wrong-secret-value");
    let err = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GenesysError::Login(LoginError::InvalidCredentials { .. })
        ),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("wrong-secret-value") && !text.contains(CLIENT_SECRET),
        "{text}"
    );
    assert!(sim.integrations().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_surfaces_retry_after() {
    let sim = simulator(CreateCompletion::Immediate).await;
    sim.fail_next_with_retry_after(FaultTarget::Integrations, 429, 1, 7);
    let client = client(&sim, CLIENT_SECRET);
    let err = client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap_err();
    assert_eq!(
        err.rate_limited(),
        Some(Some(Duration::from_secs(7))),
        "{err:?}"
    );
    // Once the limit passes the same call succeeds.
    client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn revoked_token_is_refreshed_once() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    client
        .ensure_integration(None, &spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    assert_eq!(
        sim.count_requests("POST", "/oauth/token"),
        1,
        "token cached across calls"
    );
    sim.revoke_tokens();
    client.list_integrations().await.unwrap();
    assert_eq!(
        sim.count_requests("POST", "/oauth/token"),
        2,
        "401 led to one new token"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn finds_an_integration_by_name_and_webhook_url_only() {
    let sim = simulator(CreateCompletion::Immediate).await;
    let client = client(&sim, CLIENT_SECRET);
    let created = client
        .create_integration(&spec("ACME", "token-longer-than-15"))
        .await
        .unwrap();
    let found = client
        .find_integration(&spec("ACME", "any-token-is-fine!"))
        .await
        .unwrap();
    assert_eq!(found.map(|i| i.id), Some(created.id));
    let mut elsewhere = spec("ACME", "token-longer-than-15");
    elsewhere.webhook_url = "https://um.example.com/openmessaging/other.tenant".into();
    assert!(
        client.find_integration(&elsewhere).await.unwrap().is_none(),
        "same name, other tenant"
    );
    sim.shutdown().await;
}
