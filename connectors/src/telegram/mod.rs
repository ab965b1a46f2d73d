//! The Telegram connector (Bot API).

pub mod api;
pub mod failure;
pub mod from_update;
pub mod to_telegram;
pub mod webhook_secret;
