//! The integration tests: one binary (one link step, one process) whose modules each cover
//! a concept. Tests start the real server on `127.0.0.1:0` through the production wiring
//! (`common::TestApp`) or call the real modules; the CLI tests run the built binary.

mod common;

mod architecture;
mod async_requests;
mod auth;
mod auth_methods;
mod bench;
mod bulk;
mod compat;
mod conformance;
mod cursor_paging;
mod data;
mod definitions;
mod devices;
mod discovery;
mod events;
mod filter_properties;
mod groups;
mod harness;
mod hostile;
mod http_conventions;
mod lifecycle;
mod lint;
mod personas;
mod pipeline_properties;
mod probe;
mod profiles;
mod reload;
mod replicas;
mod resources;
mod standards;
mod storage;
mod tls;
mod ui_browser;
