//! The Telegram connector (Bot API): pure translations ([`from_update`],
//! [`to_telegram`], [`failure`]) and the [`MessagingPlatform`] around them
//! ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod api;
pub mod bot_api;
pub mod failure;
pub mod from_update;
pub mod platform;
pub mod to_telegram;
pub mod webhook_secret;

pub use platform::Telegram;
