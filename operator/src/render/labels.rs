//! Names and labels of the objects the operator creates.

use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "um-operator";
pub const PART_OF: &str = "universal-messaging";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// `um-<service>`, lowercased: object names are DNS labels and some
/// platform names are camelCase (`appleBusinessChat`).
pub fn object_name(service: &str) -> String {
    format!("um-{}", service.to_ascii_lowercase())
}

/// Labels on every object the operator manages (its orphan sweep selects
/// on `app.kubernetes.io/managed-by`).
pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (PART_OF_LABEL.to_owned(), PART_OF.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
    ])
}

/// Labels of a connector's objects; the name label is also the selector.
pub fn connector_labels(service: &str) -> BTreeMap<String, String> {
    let mut labels = managed_labels();
    labels.insert(NAME_LABEL.to_owned(), object_name(service));
    labels
}

/// The selector of a connector's pods.
pub fn connector_selector(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), object_name(service))])
}
