//! Ingress rules flattened into routes, and the choice of a route for a
//! request the way ingress-nginx makes it (pure).
//!
//! - A rule with a host serves only that host (`*.example.com` matches one
//!   more label); rules without a host serve requests whose host no rule
//!   names (nginx's default server).
//! - Within the chosen host, the longest path wins; at equal length Exact
//!   wins over Prefix. Prefix matches whole path elements: `/api` matches
//!   `/api`, `/api/` and `/api/v1`, not `/apiv1`. ImplementationSpecific is
//!   treated as Prefix.

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathKind {
    Prefix,
    Exact,
}

/// The Service port a route sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePort {
    Number(i32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: ServicePort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// None: any host.
    pub host: Option<String>,
    pub path: String,
    pub kind: PathKind,
    pub backend: Backend,
    /// `namespace/name` of the Ingress, for logs.
    pub ingress: String,
}

fn backend(namespace: &str, b: &IngressBackend) -> Option<Backend> {
    let svc = b.service.as_ref()?;
    let port = svc.port.as_ref()?;
    let port = match (&port.name, port.number) {
        (Some(name), _) if !name.is_empty() => ServicePort::Name(name.clone()),
        (_, Some(n)) => ServicePort::Number(n),
        _ => return None,
    };
    Some(Backend {
        namespace: namespace.to_owned(),
        service: svc.name.clone(),
        port,
    })
}

/// Whether this proxy serves the Ingress: with `class` set, only Ingresses
/// of that class (or with no class); without it, all.
pub fn serves(ingress: &Ingress, class: Option<&str>) -> bool {
    let own = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/ingress.class"))
                .map(String::as_str)
        });
    match (class, own) {
        (None, _) | (_, None) => true,
        (Some(want), Some(have)) => want == have,
    }
}

/// The routes of one Ingress (its default backend as a host-less `/` prefix).
pub fn routes_of(ingress: &Ingress) -> Vec<Route> {
    let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
    let id = format!(
        "{namespace}/{}",
        ingress.metadata.name.as_deref().unwrap_or_default()
    );
    let Some(spec) = &ingress.spec else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
            let Some(backend) = backend(&namespace, &p.backend) else {
                continue;
            };
            let kind = if p.path_type == "Exact" {
                PathKind::Exact
            } else {
                PathKind::Prefix
            };
            routes.push(Route {
                host: host.clone(),
                path: p.path.clone().unwrap_or_else(|| "/".into()),
                kind,
                backend,
                ingress: id.clone(),
            });
        }
    }
    if let Some(b) = spec
        .default_backend
        .as_ref()
        .and_then(|b| backend(&namespace, b))
    {
        routes.push(Route {
            host: None,
            path: "/".into(),
            kind: PathKind::Prefix,
            backend: b,
            ingress: id,
        });
    }
    routes
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

fn path_matches(route: &Route, path: &str) -> bool {
    match route.kind {
        PathKind::Exact => path == route.path,
        PathKind::Prefix => {
            let prefix = route.path.trim_end_matches('/');
            if prefix.is_empty() {
                return true;
            }
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// The request's host without port, lower-cased.
pub fn normalize_host(host: &str) -> String {
    let h = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|s| format!("{s}]"))
            .unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .to_owned()
    };
    h.to_ascii_lowercase()
}

/// The route for a request, or None (404).
pub fn select<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<&'a Route> {
    let host = normalize_host(host);
    // Exact host names beat wildcards beat the default server.
    let exact: Vec<&Route> = routes
        .iter()
        .filter(|r| {
            r.host
                .as_deref()
                .is_some_and(|h| !h.starts_with("*.") && host_matches(h, &host))
        })
        .collect();
    let wildcard: Vec<&Route> = routes
        .iter()
        .filter(|r| {
            r.host
                .as_deref()
                .is_some_and(|h| h.starts_with("*.") && host_matches(h, &host))
        })
        .collect();
    let candidates: Vec<&Route> = if !exact.is_empty() {
        exact
    } else if !wildcard.is_empty() {
        wildcard
    } else {
        routes.iter().filter(|r| r.host.is_none()).collect()
    };
    candidates
        .into_iter()
        .filter(|r| path_matches(r, path))
        .max_by(|a, b| {
            a.path
                .trim_end_matches('/')
                .len()
                .cmp(&b.path.trim_end_matches('/').len())
                .then(a.kind.cmp(&b.kind))
                // Stable choice between identical rules: the first Ingress.
                .then(b.ingress.cmp(&a.ingress))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, path: &str, kind: PathKind, svc: &str) -> Route {
        Route {
            host: host.map(str::to_owned),
            path: path.into(),
            kind,
            backend: Backend {
                namespace: "um".into(),
                service: svc.into(),
                port: ServicePort::Number(80),
            },
            ingress: format!("um/{svc}"),
        }
    }

    fn chosen<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<&'a str> {
        select(routes, host, path).map(|r| r.backend.service.as_str())
    }

    #[test]
    fn longest_prefix_wins_on_element_boundaries() {
        let routes = vec![
            route(None, "/", PathKind::Prefix, "root"),
            route(None, "/telegram", PathKind::Prefix, "telegram"),
            route(None, "/telegram/special", PathKind::Prefix, "special"),
            route(None, "/api/", PathKind::Prefix, "api"),
        ];
        assert_eq!(chosen(&routes, "x", "/telegram"), Some("telegram"));
        assert_eq!(chosen(&routes, "x", "/telegram/um.t1"), Some("telegram"));
        assert_eq!(chosen(&routes, "x", "/telegram/special/1"), Some("special"));
        assert_eq!(chosen(&routes, "x", "/telegramx"), Some("root"));
        assert_eq!(
            chosen(&routes, "x", "/api"),
            Some("api"),
            "trailing slash ignored"
        );
        assert_eq!(chosen(&routes, "x", "/api/v1/messages"), Some("api"));
        assert_eq!(chosen(&routes, "x", "/other"), Some("root"));
    }

    #[test]
    fn exact_beats_prefix_of_equal_length_and_is_exact() {
        let routes = vec![
            route(None, "/hook", PathKind::Prefix, "prefix"),
            route(None, "/hook", PathKind::Exact, "exact"),
        ];
        assert_eq!(chosen(&routes, "x", "/hook"), Some("exact"));
        assert_eq!(chosen(&routes, "x", "/hook/1"), Some("prefix"));
        let only_exact = vec![route(None, "/hook", PathKind::Exact, "exact")];
        assert_eq!(chosen(&only_exact, "x", "/hook/"), None);
        assert_eq!(chosen(&only_exact, "x", "/other"), None);
    }

    #[test]
    fn host_rules_shadow_the_default_server() {
        let routes = vec![
            route(Some("hooks.example.com"), "/line", PathKind::Prefix, "line"),
            route(Some("*.example.com"), "/", PathKind::Prefix, "wild"),
            route(None, "/", PathKind::Prefix, "default"),
        ];
        assert_eq!(
            chosen(&routes, "hooks.example.com:8443", "/line/x"),
            Some("line")
        );
        assert_eq!(
            chosen(&routes, "HOOKS.example.com", "/other"),
            None,
            "a named host serves only its own rules"
        );
        assert_eq!(chosen(&routes, "a.example.com", "/x"), Some("wild"));
        assert_eq!(chosen(&routes, "a.b.example.com", "/x"), Some("default"));
        assert_eq!(chosen(&routes, "127.0.0.1:8080", "/x"), Some("default"));
        assert_eq!(chosen(&[], "x", "/"), None);
    }

    #[test]
    fn routes_from_an_ingress_and_class_filter() {
        let ingress: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "um", "namespace": "ns1" },
            "spec": {
                "ingressClassName": "nginx",
                "defaultBackend": { "service": { "name": "fallback", "port": { "number": 8080 } } },
                "rules": [{
                    "host": "h.example",
                    "http": { "paths": [
                        { "path": "/slack", "pathType": "Prefix",
                          "backend": { "service": { "name": "slack", "port": { "name": "http" } } } },
                        { "path": "/exact", "pathType": "Exact",
                          "backend": { "service": { "name": "e", "port": { "number": 81 } } } },
                        { "path": "/impl", "pathType": "ImplementationSpecific",
                          "backend": { "resource": { "kind": "Bucket", "name": "b" } } }
                    ]}
                }]
            }
        }))
        .unwrap();
        let routes = routes_of(&ingress);
        assert_eq!(routes.len(), 3, "resource backends are skipped: {routes:?}");
        assert_eq!(routes[0].backend.port, ServicePort::Name("http".into()));
        assert_eq!(routes[0].backend.namespace, "ns1");
        assert_eq!(routes[1].kind, PathKind::Exact);
        assert_eq!(routes[2].backend.service, "fallback");
        assert_eq!(routes[2].host, None);
        assert!(serves(&ingress, None));
        assert!(serves(&ingress, Some("nginx")));
        assert!(!serves(&ingress, Some("other")));
    }
}
