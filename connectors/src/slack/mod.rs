//! The Slack connector (Events API): request signing ([`signature`]), pure
//! translations ([`inbound`], [`outbound`], [`failure`]), the Web API client
//! ([`client`]), per-workspace installs by OAuth v2 ([`install`]), the app
//! manifest and registration page ([`manifest`]), and the
//! [`MessagingPlatform`] around them ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod client;
pub mod failure;
pub mod inbound;
pub mod install;
pub mod manifest;
pub mod outbound;
pub mod platform;
pub mod signature;
pub mod tenant;
pub mod types;

pub use platform::Slack;
