//! The Slack connector (Events API): request signing ([`signature`]), pure
//! translations ([`inbound`], [`outbound`], [`failure`]), the Web API client
//! ([`client`]), bounded file transfer both ways ([`files`]),
//! per-workspace installs by OAuth v2 and their removal on
//! `app_uninstalled` / `tokens_revoked` ([`install`], [`tenant`]), the app
//! manifest and registration page ([`manifest`]), and the
//! [`MessagingPlatform`] around them ([`platform`]).
//!
//! Threads: when a guest writes inside a thread, the conversation keeps
//! the thread's parent `ts` (Redis, kind `slack-thread`) and the agent's
//! replies and files go into that thread until the guest writes in the
//! channel itself again.
//!
//! Environment: `UM_SLACK_MAX_FILE_BYTES` caps every file moved (agent
//! attachments uploaded, guests' files served), default 50 MiB.
//!
//! Guests' files are fetched with the bot token from Slack's file host
//! only ([`platform::FILE_HOSTS`], `https://files.slack.com`, where Slack
//! documents `url_private`) or the tenant's configured API base URL; agents'
//! attachments through the fetch policy ([`crate::machinery::url_policy`]).
//!
//! [`MessagingPlatform`]: crate::platform::MessagingPlatform

pub mod client;
pub mod errors;
pub mod files;
pub mod inbound;
pub mod install;
pub mod manifest;
pub mod outbound;
pub mod platform;
pub mod signature;
pub mod tenant;
pub mod types;

pub use platform::Slack;
