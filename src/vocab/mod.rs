//! The SCIM vocabulary every layer shares and that depends on nothing of scimlab's: for now,
//! how timestamps are written. (A leaf of the module graph: model, store and engine may all
//! use it without depending on each other.)

pub mod time;
