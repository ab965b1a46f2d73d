//! The Microsoft Teams connector (Bot Framework): JWT authentication of
//! inbound activities against the published signing keys ([`auth`]), pure
//! translations ([`inbound`], [`outbound`], [`errors`]), the Bot Connector
//! and identity platform I/O ([`client`]), the app package ([`manifest`]),
//! the registration page ([`register`]), and the [`MessagingPlatform`](crate::platform::MessagingPlatform) around
//! them ([`platform`]).
//!
//! Only activities of the `msteams` channel are taken
//! ([`platform::CHANNELS_ENV`]); another channel of the same Azure Bot (Web
//! Chat, Direct Line) is answered 403. Inbound files are fetched through
//! the fetch policy ([`crate::machinery::url_policy`]), the bot token only
//! to the activity's `serviceUrl` origin.

pub mod auth;
pub mod client;
pub mod errors;
pub mod inbound;
pub mod manifest;
pub mod outbound;
pub mod platform;
pub mod register;
pub mod types;

pub use platform::Teams;
