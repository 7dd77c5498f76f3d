//! The SCIM vocabulary every layer shares, depending on nothing of scimlab's but its error type:
//! attribute paths as written, IdP quirks (`compat`) and the per-request notes of those
//! applied, how timestamps are written, the deterministic random stream and unpredictable secrets. (A leaf of the module graph: model, store and engine may all
//! use it without depending on each other.)

pub mod compat;
pub mod events;
pub mod notes;
pub mod path;
pub mod rng;
pub mod time;
