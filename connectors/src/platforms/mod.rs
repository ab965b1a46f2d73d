//! One folder per messaging platform this build serves. A new platform is
//! its folder here, one line below, and one line in [`crate::registry`].

pub mod line;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod viber;
