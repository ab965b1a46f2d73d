//! The LINE connector (Messaging API): pure translations
//! ([`from_webhook`], [`to_line`], [`failure`], [`postback`], [`add_friend`],
//! [`qr`]), the signature ([`signature`]), HTTP calls ([`client`],
//! [`switcher`]), the add-friend QR code routes ([`friend_routes`]) and the
//! [`MessagingPlatform`] around them ([`platform`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod add_friend;
pub mod channel;
pub mod client;
pub mod errors;
pub mod friend_routes;
pub mod inbound;
pub mod outbound;
pub mod platform;
pub mod postback;
pub mod qr;
pub mod signature;
pub mod switcher;
pub mod types;

pub use platform::Line;
