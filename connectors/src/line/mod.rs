//! The LINE connector (Messaging API): pure translations
//! ([`from_webhook`], [`to_line`], [`failure`], [`postback`]), the signature
//! ([`signature`]), HTTP calls ([`client`], [`switcher`]) and the
//! [`MessagingPlatform`] around them ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod api;
pub mod channel;
pub mod client;
pub mod failure;
pub mod from_webhook;
pub mod platform;
pub mod postback;
pub mod signature;
pub mod switcher;
pub mod to_line;

pub use platform::Line;
