//! The client for URLs from outside against real HTTP servers on loopback
//! addresses that record every request: a refused address (literal, by a
//! name, or where a redirect leads) is never contacted; an address the
//! configuration allows is; a platform's file hosts are the only ones its
//! token goes to; behind a proxy, a name is checked before the proxy is
//! asked. No broker or Redis needed.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use um_config::ClusterSettings;
use um_connector::machinery::http_client::{HttpClients, refusal};
use um_connector::machinery::url_policy::{AddressKind, FetchAllow, FetchRefused, FetchRules};
use um_connector::platforms::slack::platform::FILE_HOSTS;

#[derive(Debug, Clone)]
struct Recorded {
    target: String,
    authorization: Option<String>,
}

/// An HTTP server on `ip` that records each request and answers 200
/// `served`, or a redirect for `/redirect?to=<url>`.
struct Recorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    async fn start(ip: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let log = requests.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(Recorded {
                    target: uri.to_string(),
                    authorization: headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                });
                let to = uri.query().and_then(|q| q.strip_prefix("to="));
                match (uri.path(), to) {
                    ("/redirect", Some(to)) => {
                        (StatusCode::FOUND, [(header::LOCATION, to.to_owned())], "").into_response()
                    }
                    _ => "served".into_response(),
                }
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn clients(allow: &str) -> HttpClients {
    HttpClients::with_fetch_allow(&ClusterSettings::default(), allow.parse().unwrap())
        .expect("clients")
}

const NONE: FetchRules<'static> = FetchRules {
    configured_base: None,
    file_hosts: &[],
};

#[tokio::test]
async fn a_refused_literal_address_is_never_contacted() {
    let recorder = Recorder::start("127.0.0.1").await;
    let outside = clients("").outside();
    for url in [
        recorder.url("/file"),
        format!("http://[::ffff:127.0.0.1]:{}/file", recorder.addr.port()),
        format!("http://2130706433:{}/file", recorder.addr.port()),
    ] {
        let refused = outside.get(&url, NONE).await.unwrap_err();
        assert!(
            matches!(
                refused,
                FetchRefused::Address {
                    kind: AddressKind::Loopback,
                    ..
                }
            ),
            "{url}: {refused}"
        );
    }
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[tokio::test]
async fn a_name_resolving_to_a_refused_address_is_never_contacted() {
    let recorder = Recorder::start("127.0.0.1").await;
    let url = format!("http://localhost:{}/file", recorder.addr.port());
    // A name passes the judgement; the resolver refuses its addresses.
    let request = clients("").outside().get(&url, NONE).await.expect("a name");
    let error = request.send().await.unwrap_err();
    let refused = refusal(&error).expect("refused by the policy");
    assert!(
        matches!(
            refused,
            FetchRefused::Address {
                kind: AddressKind::Loopback,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("localhost"),
        "the refusal names the host: {refused}"
    );
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[tokio::test]
async fn what_the_configuration_allows_is_fetched() {
    let recorder = Recorder::start("127.0.0.1").await;
    let by_address = clients("127.0.0.1").outside();
    let answer = by_address
        .get(&recorder.url("/file"), NONE)
        .await
        .expect("allowed")
        .send()
        .await
        .expect("fetched");
    assert_eq!(answer.status(), 200);
    let by_name = clients("localhost").outside();
    let url = format!("http://localhost:{}/file", recorder.addr.port());
    let answer = by_name
        .get(&url, NONE)
        .await
        .expect("allowed")
        .send()
        .await
        .expect("fetched");
    assert_eq!(answer.status(), 200);
    assert_eq!(recorder.requests().len(), 2);
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_not_followed() {
    // 127.0.0.2 is allowed, 127.0.0.1 is not: the redirect leads there.
    let allowed = Recorder::start("127.0.0.2").await;
    let target = Recorder::start("127.0.0.1").await;
    let outside = clients("127.0.0.2").outside();
    for to in [
        target.url("/secret"),
        format!("http://localhost:{}/secret", target.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let url = allowed.url(&format!("/redirect?to={to}"));
        let error = outside
            .get(&url, NONE)
            .await
            .expect("allowed")
            .bearer_auth("platform-token")
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(refusal(&error), Some(FetchRefused::Address { .. })),
            "{to}: {error:?}"
        );
    }
    assert!(target.requests().is_empty(), "{:?}", target.requests());
    assert_eq!(allowed.requests().len(), 3);

    // A redirect that passes is followed.
    let url = allowed.url(&format!("/redirect?to={}", allowed.url("/file")));
    let answer = outside
        .get(&url, NONE)
        .await
        .expect("allowed")
        .send()
        .await
        .expect("followed");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "served");
}

#[tokio::test]
async fn a_configured_origin_is_fetched_but_not_its_redirects() {
    let configured = Recorder::start("127.0.0.1").await;
    let target = Recorder::start("127.0.0.1").await;
    let base = configured.url("");
    let rules = FetchRules {
        configured_base: Some(&base),
        file_hosts: &[],
    };
    let url = configured.url(&format!("/redirect?to={}", target.url("/secret")));
    let answer = clients("")
        .outside()
        .get(&url, rules)
        .await
        .expect("the configured origin")
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert!(target.requests().is_empty(), "{:?}", target.requests());
    // Another port of the same address is not the configured origin.
    assert!(
        clients("")
            .outside()
            .get(&target.url("/file"), rules)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn slack_files_come_from_files_slack_com_only() {
    let elsewhere = Recorder::start("127.0.0.1").await;
    // Even an address the configuration allows is not Slack's file host.
    let outside = clients("127.0.0.1 localhost").outside();
    let rules = FetchRules {
        configured_base: None,
        file_hosts: FILE_HOSTS,
    };
    for url in [
        elsewhere.url("/files-pri/T1-F1/photo.png"),
        format!(
            "http://localhost:{}/files-pri/T1-F1/photo.png",
            elsewhere.addr.port()
        ),
    ] {
        let refused = outside.client_for(&url, rules).await.unwrap_err();
        assert!(
            matches!(refused, FetchRefused::NotAFileHost { .. }),
            "{url}: {refused}"
        );
        assert!(refused.to_string().contains("files.slack.com"), "{refused}");
    }
    assert!(
        outside
            .client_for("https://files.slack.com/files-pri/T1-F1/photo.png", rules)
            .await
            .is_ok()
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn behind_a_proxy_names_are_checked_before_the_proxy_is_asked() {
    // The proxy stands on loopback, as an in-cluster proxy stands on a
    // private address: it is not refused for that.
    let proxy = Recorder::start("127.0.0.1").await;
    let settings = ClusterSettings {
        outbound_proxy: Some(proxy.url("")),
        default_commander_prefix: None,
    };
    let outside = HttpClients::with_fetch_allow(&settings, FetchAllow::default())
        .expect("clients")
        .outside();
    let refused = outside
        .get("http://localhost:9/file", NONE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            FetchRefused::Address {
                kind: AddressKind::Loopback,
                ..
            }
        ),
        "{refused}"
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    // A name only the proxy can resolve is left to the proxy.
    let answer = outside
        .get("http://files.example.invalid/file", NONE)
        .await
        .expect("left to the proxy")
        .send()
        .await
        .expect("proxied");
    assert_eq!(answer.status(), 200);
    let asked = proxy.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].target.contains("files.example.invalid"),
        "{asked:?}"
    );
    assert!(asked[0].authorization.is_none());
}
