//! Wiring for `scimlab serve`: compile the definitions, open the store, bind, serve.

use crate::http::{self, AppState};
use crate::model;
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub servers: PathBuf,
}

/// Compiles the definitions or returns every located problem as one error.
pub fn compile(servers: &std::path::Path) -> anyhow::Result<model::Model> {
    model::compile_dir(servers).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} problem(s) in definitions:\n{}",
            lines.len(),
            lines.join("\n")
        )
    })
}

/// Runs the server until Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let model = compile(&config.servers)?;
    let store = Arc::new(
        Store::open(&config.db)
            .with_context(|| format!("opening database {}", config.db.display()))?,
    );
    let state = AppState::new(store, model).context("creating indexes")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    for server in state.model.load().servers.values() {
        tracing::info!(
            server = %server.id,
            "serving http://{addr}/scim-identifier/{}/scim/v2/ ({})",
            server.id,
            server.resource_types.iter().map(|r| r.endpoint.as_str()).collect::<Vec<_>>().join(" ")
        );
    }
    http::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
