//! Which Tenants name which Secret, kept from the Tenant watch, so that a
//! Secret's change finds its Tenants without walking all of them (at
//! startup every Secret of the watched namespaces arrives once: walking
//! 10,000 Tenants for each of 10,000 Secrets was a hundred million steps).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use um_crds::Tenant;

use crate::model::tenant_secret_names;

/// (namespace, name)
type Key = (String, String);

#[derive(Default)]
pub struct SecretIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tenants_by_secret: HashMap<Key, BTreeSet<String>>,
    secrets_by_tenant: HashMap<Key, Vec<String>>,
}

impl Inner {
    fn remove(&mut self, tenant: &Key) {
        for secret in self.secrets_by_tenant.remove(tenant).unwrap_or_default() {
            let key = (tenant.0.clone(), secret);
            if let Some(tenants) = self.tenants_by_secret.get_mut(&key) {
                tenants.remove(&tenant.1);
                if tenants.is_empty() {
                    self.tenants_by_secret.remove(&key);
                }
            }
        }
    }
}

impl SecretIndex {
    /// Follows one event of the Tenant watch. A re-list may leave a
    /// Tenant deleted meanwhile behind: its name then maps to a Tenant the
    /// controller no longer has, which it skips.
    pub fn observe(&self, event: &watcher::Event<Tenant>) {
        match event {
            watcher::Event::Apply(tenant) | watcher::Event::InitApply(tenant) => self.set(tenant),
            watcher::Event::Delete(tenant) => self.remove(tenant),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    fn set(&self, tenant: &Tenant) {
        let key = key_of(tenant);
        let secrets = tenant_secret_names(tenant);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.secrets_by_tenant.get(&key) == Some(&secrets) {
            return;
        }
        inner.remove(&key);
        for secret in &secrets {
            inner
                .tenants_by_secret
                .entry((key.0.clone(), secret.clone()))
                .or_default()
                .insert(key.1.clone());
        }
        inner.secrets_by_tenant.insert(key, secrets);
    }

    fn remove(&self, tenant: &Tenant) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(&key_of(tenant));
    }

    /// The Tenants that name the Secret `namespace/name`.
    pub fn tenants_naming(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Tenant>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .tenants_by_secret
            .get(&(namespace.to_owned(), name.to_owned()))
            .into_iter()
            .flatten()
            .map(|tenant| ObjectRef::new(tenant).within(namespace))
            .collect()
    }
}

fn key_of(tenant: &Tenant) -> Key {
    (tenant.namespace().unwrap_or_default(), tenant.name_any())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::tests::{telegram_genesys, tenant};

    fn names(refs: Vec<ObjectRef<Tenant>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn maps_a_secret_to_the_tenants_naming_it_as_they_change() {
        let index = SecretIndex::default();
        let acme = telegram_genesys("acme");
        let other = telegram_genesys("other");
        index.observe(&watcher::Event::InitApply(acme.clone()));
        index.observe(&watcher::Event::Apply(other.clone()));
        for secret in ["acme-telegram", "acme-genesys"] {
            assert_eq!(
                names(index.tenants_naming("shop", secret)),
                ["acme", "other"]
            );
            assert!(index.tenants_naming("elsewhere", secret).is_empty());
        }

        // acme now names another bot token Secret.
        let cx = serde_json::to_value(&acme.spec.cx).unwrap();
        let moved = tenant(
            "acme",
            json!({"telegram": {"botToken": {"name": "new-bot", "key": "token"}}}),
            cx,
        );
        index.observe(&watcher::Event::Apply(moved));
        assert_eq!(names(index.tenants_naming("shop", "new-bot")), ["acme"]);
        assert_eq!(
            names(index.tenants_naming("shop", "acme-telegram")),
            ["other"]
        );
        assert_eq!(
            names(index.tenants_naming("shop", "acme-genesys")),
            ["acme", "other"]
        );

        index.observe(&watcher::Event::Delete(other));
        assert!(index.tenants_naming("shop", "acme-telegram").is_empty());
        assert_eq!(
            names(index.tenants_naming("shop", "acme-genesys")),
            ["acme"]
        );
    }
}
