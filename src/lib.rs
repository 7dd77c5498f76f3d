//! scimlab: many virtual SCIM 2.0 servers (RFC 7643/7644) on one port, each compiled from a
//! YAML definition.
//!
//! # Layout
//! The flow is YAML → compiled model → SQL, validators and discovery documents:
//! - [`schema`]: the schema catalogue (`schemas/*.json`, checked and embedded by `build.rs`).
//! - [`definition`]: the YAML formats (server definitions, profile packs) and their loader
//!   (located diagnostics).
//! - [`model`]: `compile()` turns definitions and the profiles they apply into one
//!   `ServerModel` per virtual server: resource types with their effective attributes,
//!   attribute resolution, discovery documents, index plan, catalogue, data filters.
//! - [`store`]: the storage API (`Conn`) and its SQLite implementation; every SQL string.
//! - [`filter`]: filter parser, printer and in-memory evaluator (the store compiles checked
//!   filters to SQL).
//! - [`patch`]: PatchOp parsing and application.
//! - [`engine`]: the one generic resource engine (create/get/replace/patch/delete/list),
//!   cursors (RFC 9865) and SCIM events (RFC 9967).
//! - [`delivery`]: push delivery of SCIM events (RFC 8935), retried with backoff.
//! - [`http`]: axum routes, auth, SCIM error responses.
//! - [`reload`]: watch definitions, recompile, swap the model atomically; change summaries.
//! - [`seed`]: deterministic, realistic seed data shaped by handlebars patterns.
//! - [`data`]: mounting a server (catalogue, seed), listing, reset, export and import.
//! - [`harness`]: request inspector, rate limits, fault injection.
//! - [`lint`]: `scimlab lint`, SCIM payloads checked by the server's own validators.
//! - [`client`]: the HTTP client (reqwest over rustls) of the probe and of `replay`.
//! - [`probe`]: `scimlab probe`, a conformance run against any live SCIM server.
//! - [`ui`]: the server-rendered web UI (handlebars pages from `templates/ui/`).
//! - [`vocab`]: the shared SCIM vocabulary with no dependencies (paths, quirks, time, event
//!   URIs, the deterministic RNG).
//! - [`sync`]: locks that recover from poisoning instead of skipping work.
//! - [`error`]: `ScimError`, the single client-visible error type.
//! - [`app`]: wiring for the `serve` command (open the store, compile, serve).
//! - [`fuzzing`]: the pipeline below HTTP on a real store, for property tests and fuzz targets.

pub mod app;
pub mod bench;
pub mod client;
pub mod data;
pub mod definition;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod filter;
pub mod fuzzing;
pub mod harness;
pub mod http;
pub mod lint;
pub mod model;
pub mod patch;
pub mod probe;
pub mod reload;
pub mod schema;
pub mod seed;
pub mod store;
pub mod sync;
pub mod ui;
pub mod vocab;
