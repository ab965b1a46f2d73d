//! Read access to the Secrets and ConfigMaps a Pod refers to.

#[cfg(test)]
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{ObjectRef, Store};

/// The objects of one namespace that env and volume resolution read.
pub trait ObjectLookup {
    fn secret(&self, name: &str) -> Option<Secret>;
    fn config_map(&self, name: &str) -> Option<ConfigMap>;
}

/// Reflector caches (the runtime implementation).
pub struct StoreLookup<'a> {
    pub namespace: &'a str,
    pub secrets: &'a Store<Secret>,
    pub config_maps: &'a Store<ConfigMap>,
}

impl ObjectLookup for StoreLookup<'_> {
    fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets
            .get(&ObjectRef::new(name).within(self.namespace))
            .map(|s| (*s).clone())
    }

    fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps
            .get(&ObjectRef::new(name).within(self.namespace))
            .map(|c| (*c).clone())
    }
}

/// Fixed maps (tests).
#[cfg(test)]
#[derive(Default)]
pub struct MapLookup {
    pub secrets: BTreeMap<String, Secret>,
    pub config_maps: BTreeMap<String, ConfigMap>,
}

#[cfg(test)]
impl ObjectLookup for MapLookup {
    fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets.get(name).cloned()
    }

    fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps.get(name).cloned()
    }
}
