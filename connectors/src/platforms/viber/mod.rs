//! The Viber connector (REST Bot API): pure translations ([`inbound`],
//! [`outbound`], [`errors`], [`tracking`], [`media_ref`]) and the
//! [`MessagingPlatform`] around them ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod client;
pub mod errors;
pub mod inbound;
pub mod media_ref;
pub mod outbound;
pub mod platform;
pub mod tracking;
pub mod types;

pub use platform::Viber;
