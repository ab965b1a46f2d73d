//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas
//! never reconcile at once. Updates carry the Lease's resourceVersion: a
//! concurrent writer makes ours fail with 409 and we simply lose that round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub lease_duration: Duration,
    pub renew_interval: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        }
    }
}

/// What to do with the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it.
    Acquire,
    /// Someone else holds it and it has not expired.
    Wait { holder: String },
}

/// Pure: who may hold the Lease at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match last {
        Some(renewed)
            if renewed
                .saturating_add(duration)
                .map(|until| until > now)
                .unwrap_or(true) =>
        {
            Decision::Wait { holder }
        }
        _ => Decision::Acquire,
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    /// The Lease's name (`OperatorConfig::lease_name`: one per installation).
    lease: String,
    identity: String,
    config: ElectionConfig,
    /// The Lease as our last successful write left it: a renewal is one
    /// PUT from it (a 409 says someone else wrote meanwhile, and the next
    /// round reads it again), so holding the lead costs the apiserver one
    /// request per renew interval.
    held: std::sync::Mutex<Option<Lease>>,
}

impl LeaderElector {
    pub fn new(
        api: Api<Lease>,
        lease: impl Into<String>,
        identity: impl Into<String>,
        config: ElectionConfig,
    ) -> Self {
        Self {
            api,
            lease: lease.into(),
            identity: identity.into(),
            config,
            held: std::sync::Mutex::new(None),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Lease>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// PUT `lease` (with its resourceVersion: a concurrent change → 409).
    async fn write(&self, lease: &Lease) -> Result<bool, kube::Error> {
        match self
            .api
            .replace(&self.lease, &PostParams::default(), lease)
            .await
        {
            Ok(written) => {
                *self.held() = Some(written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                *self.held() = None;
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp, renew: bool) -> LeaseSpec {
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15),
            ),
            acquire_time: if renew {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if renew { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    /// One round: acquire or renew. Ok(true) while we are the leader.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let held = self.held().take();
        if let Some(mut lease) = held {
            lease.spec = Some(self.spec(lease.spec.as_ref(), now, true));
            if self.write(&lease).await? {
                return Ok(true);
            }
            // Written by someone else since: decide on it as it is now.
        }
        let current = self.api.get_opt(&self.lease).await?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, now, false)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    *self.held() = Some(created);
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(err) => Err(err),
            };
        };
        let decision = decide(lease.spec.as_ref(), &self.identity, now);
        let renew = match decision {
            Decision::Wait { .. } => return Ok(false),
            Decision::Renew => true,
            Decision::Acquire => false,
        };
        lease.spec = Some(self.spec(lease.spec.as_ref(), now, renew));
        self.write(&lease).await
    }

    /// Gives the Lease up at shutdown so the other replica takes over at
    /// once instead of after the lease duration.
    pub async fn release(&self) -> Result<(), kube::Error> {
        *self.held() = None;
        let Some(mut lease) = self.api.get_opt(&self.lease).await? else {
            return Ok(());
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.identity.as_str());
        if !ours {
            return Ok(());
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = None;
        }
        match self
            .api
            .replace(&self.lease, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Blocks until this replica is the leader.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => tracing::debug!(lease = %self.lease, "another replica leads; waiting"),
                Err(err) => {
                    tracing::warn!(lease = %self.lease, error = %err, "leader election round failed")
                }
            }
            tokio::time::sleep(self.config.renew_interval).await;
        }
    }

    /// Renews until a renewal has not succeeded for a whole lease duration
    /// (another replica may have taken over); returns then.
    pub async fn hold(&self) {
        let mut last_success = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_interval).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_success = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %self.lease, "leadership lost to another replica");
                    return;
                }
                Err(err) => {
                    tracing::warn!(lease = %self.lease, error = %err, "renewing the leader Lease failed")
                }
            }
            if last_success.elapsed() >= self.config.lease_duration {
                tracing::warn!(
                    lease = %self.lease,
                    "could not renew the leader Lease within its duration"
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn free_or_missing_lease_is_acquired() {
        assert_eq!(decide(None, "a", at(100)), Decision::Acquire);
        assert_eq!(
            decide(Some(&LeaseSpec::default()), "a", at(100)),
            Decision::Acquire
        );
    }

    #[test]
    fn our_lease_is_renewed() {
        assert_eq!(
            decide(Some(&held_by("a", 0)), "a", at(1000)),
            Decision::Renew
        );
    }

    #[test]
    fn another_holder_is_respected_until_expiry() {
        assert_eq!(
            decide(Some(&held_by("b", 100)), "a", at(110)),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&held_by("b", 100)), "a", at(116)),
            Decision::Acquire
        );
    }
}
