//! A deleted Tenant's Redis state goes with it. A Tenant that leaves this
//! service's configuration is purged (`<ns>:<service>:<tenant>:*`) only
//! after it stayed away for a grace period: configuration lags between
//! pods and a Secret replaced by delete + create removes a Tenant for a
//! moment, and neither must cost it its tokens or de-duplication state.
//! Its parked conversations are left alone: they keep being retried (the
//! Tenant may come back) and are dead-lettered, with their story, when
//! their budget is spent. A process that restarts forgets departures in
//! progress; every key has a TTL, so nothing stays for good.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::machinery::config_watch::ConfigWatcher;
use crate::machinery::store::Store;

/// How long a Tenant must stay away before its state is removed.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// Tenants that left, and since when.
#[derive(Debug, Default)]
pub struct Departures {
    present: HashSet<String>,
    gone_since: HashMap<String, Instant>,
}

impl Departures {
    /// The Tenants configured now; returns those away for `grace` or
    /// longer (each returned once).
    pub fn observe<'a>(
        &mut self,
        configured: impl IntoIterator<Item = &'a String>,
        now: Instant,
        grace: Duration,
    ) -> Vec<String> {
        let configured: HashSet<String> = configured.into_iter().cloned().collect();
        for left in self.present.difference(&configured) {
            self.gone_since.entry(left.clone()).or_insert(now);
        }
        self.gone_since
            .retain(|tenant, _| !configured.contains(tenant));
        self.present = configured;
        let due: Vec<String> = self
            .gone_since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= grace)
            .map(|(tenant, _)| tenant.clone())
            .collect();
        for tenant in &due {
            self.gone_since.remove(tenant);
        }
        due
    }
}

/// Purges departed Tenants' state until `shutdown`, looking once a minute
/// and whenever the configuration changes.
pub fn spawn_sweeper(config: ConfigWatcher, store: Store, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut departures = Departures::default();
        let mut changes = config.subscribe();
        loop {
            let current = config.current();
            for tenant in departures.observe(current.tenants.keys(), Instant::now(), GRACE) {
                match store.purge_tenant(&tenant).await {
                    Ok(removed) => {
                        tracing::info!(tenant, removed, "state of a deleted tenant removed")
                    }
                    Err(error) => {
                        tracing::warn!(tenant, error = %error, "state of a deleted tenant not removed; its keys expire by themselves")
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_tenant_away_for_the_grace_period_is_purged_once() {
        let grace = Duration::from_secs(600);
        let t0 = Instant::now();
        let mut departures = Departures::default();
        assert!(departures.observe(&keys(&["a", "b"]), t0, grace).is_empty());
        // b leaves.
        assert!(
            departures
                .observe(&keys(&["a"]), t0 + Duration::from_secs(1), grace)
                .is_empty()
        );
        assert!(
            departures
                .observe(&keys(&["a"]), t0 + Duration::from_secs(500), grace)
                .is_empty()
        );
        assert_eq!(
            departures.observe(&keys(&["a"]), t0 + Duration::from_secs(601), grace),
            ["b"]
        );
        assert!(
            departures
                .observe(&keys(&["a"]), t0 + Duration::from_secs(2000), grace)
                .is_empty()
        );
    }

    #[test]
    fn a_tenant_that_comes_back_in_time_keeps_its_state() {
        let grace = Duration::from_secs(600);
        let t0 = Instant::now();
        let mut departures = Departures::default();
        departures.observe(&keys(&["a", "b"]), t0, grace);
        departures.observe(&keys(&["a"]), t0 + Duration::from_secs(10), grace);
        // Deleted and created again (a Secret replaced): back within grace.
        departures.observe(&keys(&["a", "b"]), t0 + Duration::from_secs(20), grace);
        assert!(
            departures
                .observe(&keys(&["a", "b"]), t0 + Duration::from_secs(5000), grace)
                .is_empty()
        );
        // Leaves again later: a new grace period starts then.
        departures.observe(&keys(&["a"]), t0 + Duration::from_secs(5000), grace);
        assert!(
            departures
                .observe(&keys(&["a"]), t0 + Duration::from_secs(5500), grace)
                .is_empty()
        );
        assert_eq!(
            departures.observe(&keys(&["a"]), t0 + Duration::from_secs(5600), grace),
            ["b"]
        );
    }
}
