//! The Universal Messaging custom-resource API, group
//! `messaging.universal-messaging.io`, version `v1alpha1`:
//!
//! - [`Tenant`]: one messaging platform joined to one contact-center platform;
//! - [`Storage`]: where attachments without a public URL are copied;
//! - [`NotifierDestination`]: where services report start/stop and
//!   subscription errors.
//!
//! Every credential is a [`SecretKeyRef`] (a key of a Secret in the object's
//! namespace), never a literal. What the apiserver can check on one object
//! (required fields, enums, formats, one-of and cross-field rules) is in the
//! schema as OpenAPI and CEL rules, so `kubectl apply` refuses a bad manifest
//! with a message naming the field. What needs other objects (at most one
//! default Storage, Secrets that exist) is the operator's, reported as a
//! status condition.
//!
//! Cluster-wide settings (outbound proxy, default commander) are operator
//! configuration (Helm values rendered into the operator's ConfigMap), not a
//! custom resource: there is exactly one per installation and it belongs to
//! whoever installs the operator.
//!
//! `cargo run -p um-crds --bin crdgen` writes the CRD YAML into `crds/`;
//! a test fails when the checked-in files differ from what these types
//! produce.

// `#[kube(printcolumn(..), printcolumn(..))]` repeats `type_ = "string"` by
// design; clippy reads that as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

mod cel;
pub mod conditions;
mod crdgen;
mod notifier;
mod region;
mod secret_ref;
mod settings;
mod storage;
mod tenant;

pub use crdgen::{CHART_CRDS_DIR, CrdFile, crd_files, render_crd_yaml};
pub use notifier::{
    NotifierDestination, NotifierDestinationSpec, NotifierDestinationStatus, NotifierTopic,
    NotifierType,
};
pub use region::GenesysRegion;
pub use secret_ref::{SecretKeyRef, SecretRefs};
pub use storage::{
    AzureBlobStorage, BoxStorage, DropboxStorage, GcsStorage, S3Storage, Storage, StorageSpec,
    StorageStatus, StorageType,
};
pub use tenant::*;

/// API group of every kind in this crate.
pub const GROUP: &str = "messaging.universal-messaging.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get universal-messaging` lists every kind of this API.
pub const CATEGORY: &str = "universal-messaging";
