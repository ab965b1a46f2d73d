//! The data plane of Universal Messaging: shared connector machinery and one
//! module per service.

pub mod envelope;
