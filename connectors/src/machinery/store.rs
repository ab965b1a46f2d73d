//! Per-service state in Redis, every key namespaced
//! `um:<service>:<tenant>:<kind>:<id>` so tenants and services never collide.
//!
//! Kinds used by the machinery:
//! - `event`: de-duplication of platform redeliveries. A webhook *claims* the
//!   event id (short TTL, value `pending:<token>`) before publishing and
//!   *confirms* it (`done`, long TTL) after the broker confirmed; a failed
//!   publish *releases* the claim so the platform's redelivery is accepted.
//! - `done`: one marker per envelope id a consumer finished, checked before
//!   delivering, so a redelivery after a crash does not send twice.
//!
//! Platforms use [`Store::get`]/[`Store::set`] for their own kinds (OAuth
//! tokens, guest <-> conversation mapping, reply tokens).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a webhook's claim on an event id keeps its redeliveries out.
/// Short, because a claim whose request died (a killed pod, Redis lost the
/// release) turns every redelivery away until it expires; and it may be,
/// because an event's envelope ids derive from the event
/// ([`crate::platform::event_envelope_id`]): should a redelivery publish
/// while a slow first request still does, the consumer's done marker
/// absorbs the second copy.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(10);
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_DONE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// State a Tenant keeps while it exists (a Slack installation, a Teams app
/// package, a guest who blocked the bot): long, but not forever, so the
/// state of a Tenant deleted while no service ran does not stay for good
/// (a running service removes it, see [`crate::machinery::departures`]).
pub const KEPT_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("Redis {step} of {key}: {source}")]
    Command {
        step: &'static str,
        key: String,
        #[source]
        source: redis::RedisError,
    },
}

/// The outcome of claiming a platform event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours: publish, then [`Store::confirm_event`] or [`Store::release_event`].
    Claimed(ClaimToken),
    /// Already published: acknowledge the redelivery, publish nothing.
    Duplicate,
    /// Another request holds the claim right now: ask the platform to retry.
    InProgress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(String);

const DONE: &str = "done";
/// A done marker of an envelope that was dead-lettered: skipped like a
/// finished one, except by a replay.
const DEAD: &str = "dead";

/// Deletes a claim only if it is still ours (an expired claim may belong to
/// another request by now).
const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Key namespace of a store that was not given one.
const DEFAULT_NAMESPACE: &str = "um";

/// Redis connection of one service; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    /// The bus namespace (`UM_BUS_NAMESPACE`): installations sharing one
    /// Redis never share a key.
    namespace: Arc<str>,
    service: Arc<str>,
}

/// A URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("[REDACTED]"));
            }
            parsed.to_string()
        }
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

impl Store {
    pub async fn connect(url: &str, service: &str) -> Result<Self, StoreError> {
        let connect_error = |source| StoreError::Connect {
            url: redact(url),
            source,
        };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_max_delay(1000)
            // The caller decides how long to wait for Redis at start
            // (Runtime::start retries); commands reconnect by themselves.
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            conn,
            namespace: Arc::from(DEFAULT_NAMESPACE),
            service: Arc::from(service),
        })
    }

    /// The same connection with keys under `namespace` instead of `um`.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Arc::from(namespace);
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The shared connection, for machinery that keeps its own key layout
    /// (the parking lot of the bus).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `<namespace>:<service>:<tenant>:<kind>:<id>` (namespace `um` by
    /// default).
    pub fn key(&self, tenant: &str, kind: &str, id: &str) -> String {
        format!("{}:{}:{tenant}:{kind}:{id}", self.namespace, self.service)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|source| StoreError::Command {
                step: "PING",
                key: String::new(),
                source,
            })
    }

    /// Claims a platform event id for `claim_ttl` (the longest a publish may
    /// take).
    pub async fn claim_event(
        &self,
        tenant: &str,
        event_id: &str,
        claim_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let key = self.key(tenant, "event", event_id);
        let token = format!("pending:{}", uuid::Uuid::new_v4());
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(claim_ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(|source| StoreError::Command {
                step: "claim (SET NX)",
                key: key.clone(),
                source,
            })?;
        if set.is_some() {
            return Ok(Claim::Claimed(ClaimToken(token)));
        }
        let current: Option<String> =
            conn.get(&key).await.map_err(|source| StoreError::Command {
                step: "claim (GET)",
                key: key.clone(),
                source,
            })?;
        match current.as_deref() {
            Some(DONE) => Ok(Claim::Duplicate),
            Some(_) => Ok(Claim::InProgress),
            // Expired between SET and GET: the caller may simply retry.
            None => Ok(Claim::InProgress),
        }
    }

    /// The envelopes of this event are confirmed by the broker: remember it
    /// for `ttl` (longer than the platform redelivers).
    pub async fn confirm_event(
        &self,
        tenant: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(
            self.key(tenant, "event", event_id),
            DONE,
            ttl,
            "confirm event",
        )
        .await
    }

    /// The publish failed: drop our claim so a redelivery is accepted.
    pub async fn release_event(
        &self,
        tenant: &str,
        event_id: &str,
        token: &ClaimToken,
    ) -> Result<(), StoreError> {
        let key = self.key(tenant, "event", event_id);
        let mut conn = self.conn.clone();
        redis::Script::new(RELEASE_SCRIPT)
            .key(&key)
            .arg(&token.0)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|source| StoreError::Command {
                step: "release event claim",
                key,
                source,
            })
    }

    /// Whether this service already finished the envelope.
    pub async fn is_done(&self, tenant: &str, envelope_id: &str) -> Result<bool, StoreError> {
        let key = self.key(tenant, "done", envelope_id);
        let mut conn = self.conn.clone();
        conn.exists(&key)
            .await
            .map_err(|source| StoreError::Command {
                step: "check done marker",
                key,
                source,
            })
    }

    pub async fn mark_done(
        &self,
        tenant: &str,
        envelope_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(
            self.key(tenant, "done", envelope_id),
            DONE,
            ttl,
            "set done marker",
        )
        .await
    }

    /// The envelope was dead-lettered: its redeliveries are skipped, a
    /// replay clears this (see the parking lot's admission).
    pub async fn mark_dead(
        &self,
        tenant: &str,
        envelope_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(
            self.key(tenant, "done", envelope_id),
            DEAD,
            ttl,
            "set dead marker",
        )
        .await
    }

    async fn put(
        &self,
        key: String,
        value: &str,
        ttl: Duration,
        step: &'static str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(&key, value, ttl.as_millis().max(1) as u64)
            .await
            .map_err(|source| StoreError::Command { step, key, source })
    }

    pub async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = self.key(tenant, kind, id);
        let mut conn = self.conn.clone();
        conn.get(&key).await.map_err(|source| StoreError::Command {
            step: "GET",
            key,
            source,
        })
    }

    /// Sets a value for `ttl`. Every key has one: state a Tenant keeps
    /// (an installation, a blocked user) uses [`KEPT_TTL`].
    pub async fn set(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(self.key(tenant, kind, id), value, ttl, "SET")
            .await
    }

    /// Removes every key of `tenant` in this service
    /// (`<ns>:<service>:<tenant>:*`); returns how many.
    pub async fn purge_tenant(&self, tenant: &str) -> Result<usize, StoreError> {
        let pattern = format!("{}:{}:{tenant}:*", self.namespace, self.service);
        let mut conn = self.conn.clone();
        let error = |step| {
            let key = pattern.clone();
            move |source| StoreError::Command { step, key, source }
        };
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(error("SCAN"))?;
            if !keys.is_empty() {
                removed += redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<usize>(&mut conn)
                    .await
                    .map_err(error("UNLINK"))?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Sets a value only if none is there; `true` if it was set.
    pub async fn set_if_absent(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.key(tenant, kind, id);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await
            .map_err(|source| StoreError::Command {
                step: "SET NX",
                key,
                source,
            })?;
        Ok(set.is_some())
    }

    pub async fn delete(&self, tenant: &str, kind: &str, id: &str) -> Result<(), StoreError> {
        let key = self.key(tenant, kind, id);
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(&key)
            .await
            .map_err(|source| StoreError::Command {
                step: "DEL",
                key,
                source,
            })
    }
}
