//! Simulators of the external SaaS the bridge talks to, for tests and demos.
//!
//! Each simulator is a small HTTP server on loopback that follows the
//! published protocol (paths, field names, signatures, error bodies, rate
//! limit answers, redelivery) and records what it receives so tests can
//! assert on it. They run in-process (`GenesysSimulator::start`,
//! `TelegramSimulator::start`) or standalone through the `um-sim` binary.

pub mod control;
mod error;
pub mod genesys;
pub mod line;
mod recording;
mod server;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod viber;

pub use error::SimError;
pub use recording::RequestRecord;
