//! The flood benchmark (`um-flood`) and the fault suite (`um-faults`):
//! simulators in-process, release-built connectors as child processes, a
//! real RabbitMQ and Redis.

pub mod bridge;
pub mod cleanup;
pub mod faults;
pub mod report;
pub mod servers;
pub mod services;
