//! The SCIM vocabulary every layer shares and that depends on nothing of scimlab's: how
//! timestamps are written, the deterministic random stream, and the per-request notes of
//! IdP quirks applied. (A leaf of the module graph: model, store and engine may all
//! use it without depending on each other.)

pub mod notes;
pub mod rng;
pub mod time;
