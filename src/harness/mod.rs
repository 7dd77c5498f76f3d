//! Test-harness features around the SCIM engine: the request inspector (and HAR replay), rate
//! limits and fault injection. (The per-request notes of IdP quirks applied, which the
//! inspector records, are `vocab::notes`.)

pub mod client;
pub mod faults;
pub mod inspector;
pub mod limits;
pub mod replay;
