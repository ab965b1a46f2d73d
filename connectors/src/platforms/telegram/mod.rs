//! The Telegram connector (Bot API): pure translations ([`from_update`],
//! [`to_telegram`], [`failure`]) and the [`MessagingPlatform`] around them
//! ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod client;
pub mod errors;
pub mod inbound;
pub mod outbound;
pub mod platform;
pub mod types;
pub mod webhook_secret;

pub use platform::Telegram;
