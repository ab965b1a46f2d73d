//! Which Open Messaging integrations an organisation holds, by name and
//! webhook URL: what the operator needs to adopt an integration whose
//! create it never recorded (a crash between the create and the status
//! write).
//!
//! Genesys cannot filter its integration listing by name, so finding one
//! integration costs a walk over all of them. Walking per new Tenant made
//! a burst of N new Tenants cost N²/2 listed integrations (10,000 Tenants:
//! fifty million). The directory walks once per organisation and per
//! [`REFRESH_AFTER`], single-flight, and the operator's own creates and
//! deletes keep it current in between; a stale entry is harmless because
//! the caller reads the integration by id before using it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a listing is trusted for integrations made outside this
/// process (by hand in Genesys, or by a previous leader before it died:
/// those are in the first listing this process makes).
pub const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// One organisation: the Genesys API it lives behind and the OAuth client
/// that sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Organisation {
    pub api_base_url: String,
    pub client_id: String,
}

/// An integration's identity for adoption.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listed {
    pub name: String,
    pub webhook_url: String,
}

#[derive(Default)]
struct Listing {
    at: Option<Instant>,
    ids: HashMap<Listed, String>,
    /// The other way, so an integration renamed or deleted leaves no
    /// entry behind.
    names: HashMap<String, Listed>,
}

impl Listing {
    fn insert(&mut self, listed: Listed, id: String) {
        self.remove(&id);
        self.names.insert(id.clone(), listed.clone());
        self.ids.insert(listed, id);
    }

    fn remove(&mut self, id: &str) {
        if let Some(listed) = self.names.remove(id) {
            self.ids.remove(&listed);
        }
    }

    fn fresh(&self, now: Instant) -> bool {
        self.at
            .is_some_and(|at| now.saturating_duration_since(at) < REFRESH_AFTER)
    }
}

/// Shared by every Genesys client of the operator.
#[derive(Default)]
pub struct IntegrationDirectory {
    organisations: Mutex<HashMap<Organisation, Arc<tokio::sync::Mutex<Listing>>>>,
}

impl IntegrationDirectory {
    fn listing(&self, organisation: &Organisation) -> Arc<tokio::sync::Mutex<Listing>> {
        self.organisations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(organisation.clone())
            .or_default()
            .clone()
    }

    /// The id of the integration named `wanted`, listing the organisation
    /// with `list` first when the directory has no fresh listing. Callers
    /// of the same organisation wait for one listing instead of each
    /// making their own.
    pub async fn find<F, Fut, E>(
        &self,
        organisation: &Organisation,
        wanted: &Listed,
        list: F,
    ) -> Result<Option<String>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(Listed, String)>, E>>,
    {
        let listing = self.listing(organisation);
        let mut listing = listing.lock().await;
        if !listing.fresh(Instant::now()) {
            let listed = list().await?;
            *listing = Listing::default();
            for (listed, id) in listed {
                listing.insert(listed, id);
            }
            listing.at = Some(Instant::now());
        }
        Ok(listing.ids.get(wanted).cloned())
    }

    /// Records an integration this process created or renamed.
    pub async fn remember(&self, organisation: &Organisation, listed: Listed, id: String) {
        let listing = self.listing(organisation);
        listing.lock().await.insert(listed, id);
    }

    /// Drops an integration this process deleted or found gone.
    pub async fn forget(&self, organisation: &Organisation, id: &str) {
        let listing = self.listing(organisation);
        listing.lock().await.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn org() -> Organisation {
        Organisation {
            api_base_url: "https://api.mypurecloud.jp".into(),
            client_id: "client".into(),
        }
    }

    fn listed(name: &str) -> Listed {
        Listed {
            name: name.into(),
            webhook_url: format!("https://um.example.com/openmessaging/shop.{name}"),
        }
    }

    #[tokio::test]
    async fn lists_once_then_answers_from_what_it_holds_and_learns() {
        let directory = IntegrationDirectory::default();
        let lists = AtomicUsize::new(0);
        let list = || async {
            lists.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(vec![(listed("a"), "id-a".to_owned())])
        };
        assert_eq!(
            directory.find(&org(), &listed("a"), list).await,
            Ok(Some("id-a".into()))
        );
        assert_eq!(directory.find(&org(), &listed("b"), list).await, Ok(None));
        directory.remember(&org(), listed("b"), "id-b".into()).await;
        assert_eq!(
            directory.find(&org(), &listed("b"), list).await,
            Ok(Some("id-b".into()))
        );
        directory.forget(&org(), "id-a").await;
        assert_eq!(directory.find(&org(), &listed("a"), list).await, Ok(None));
        // Renamed: found by its new name only.
        directory.remember(&org(), listed("c"), "id-b".into()).await;
        assert_eq!(directory.find(&org(), &listed("b"), list).await, Ok(None));
        assert_eq!(
            directory.find(&org(), &listed("c"), list).await,
            Ok(Some("id-b".into()))
        );
        assert_eq!(lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn organisations_are_listed_apart() {
        let directory = IntegrationDirectory::default();
        let other = Organisation {
            client_id: "other".into(),
            ..org()
        };
        directory
            .find(&org(), &listed("a"), || async {
                Ok::<_, ()>(vec![(listed("a"), "id-a".to_owned())])
            })
            .await
            .unwrap();
        let found = directory
            .find(&other, &listed("a"), || async { Ok::<_, ()>(Vec::new()) })
            .await;
        assert_eq!(found, Ok(None));
    }

    #[tokio::test]
    async fn a_failed_listing_is_not_remembered() {
        let directory = IntegrationDirectory::default();
        let failed = directory
            .find(&org(), &listed("a"), || async { Err::<Vec<_>, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let found = directory
            .find(&org(), &listed("a"), || async {
                Ok::<_, &str>(vec![(listed("a"), "id-a".to_owned())])
            })
            .await;
        assert_eq!(found, Ok(Some("id-a".into())));
    }
}
