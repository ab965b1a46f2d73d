//! Names and labels of what the operator renders. Every object carries the
//! installation's label, so two installations in one namespace neither
//! select nor sweep each other's objects.

use std::collections::BTreeMap;

pub use um_config::layout::INSTANCE_LABEL;

pub const MANAGED_BY: &str = "um-operator";
pub const PART_OF: &str = "universal-messaging";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Deployment, Service and autoscaler of a connector: `<instance>-<service>`.
pub fn object_name(instance: &str, service: &str) -> String {
    format!("{instance}-{}", service.to_ascii_lowercase())
}

/// Labels of everything one installation's operator writes.
pub fn managed_labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PART_OF_LABEL.to_owned(), PART_OF.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (INSTANCE_LABEL.to_owned(), instance.to_owned()),
    ])
}

/// Selector of everything one installation's operator writes.
pub fn managed_selector(instance: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={instance}")
}

pub fn connector_labels(instance: &str, service: &str) -> BTreeMap<String, String> {
    let mut labels = managed_labels(instance);
    labels.insert(NAME_LABEL.to_owned(), object_name(instance, service));
    labels
}

pub fn connector_selector(instance: &str, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_owned(), object_name(instance, service)),
        (INSTANCE_LABEL.to_owned(), instance.to_owned()),
    ])
}
