//! Wiring for `scimlab serve`: compile the definitions, open the store, bind, serve.

use crate::http::{self, AppState};
use crate::store::Store;
use crate::{model, reload};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub servers: PathBuf,
    /// Reload when files in `servers` change (SIGHUP reloads either way).
    pub watch: bool,
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
    reload::initial_status(&state, &config.servers);
    // Kept alive for as long as the server runs.
    let _watcher = if config.watch {
        Some(
            reload::watch(state.clone(), config.servers.clone())
                .with_context(|| format!("watching {}", config.servers.display()))?,
        )
    } else {
        None
    };
    #[cfg(unix)]
    reload::on_sighup(state.clone(), config.servers.clone())?;
    http::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// `scimlab new`: a commented starter definition.
pub fn starter_definition(id: &str, resource_types: &[String]) -> String {
    let token: String = uuid::Uuid::new_v4().simple().to_string();
    let mut out = format!(
        "# yaml-language-server: $schema=../schemas/server-definition.schema.json\n\
         # Served at /scim-identifier/{id}/scim/v2/ once saved in servers.d/ (the server reloads it).\n\
         id: {id}\n\
         description: {id} provisioning target\n\
         # Bearer tokens this server accepts (and no other server does).\n\
         tokens: [{token}]\n\
         resource_types:\n"
    );
    for rt in resource_types {
        if rt == "User" {
            out.push_str(
                "  User:\n\
                 \x20   extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n\
                 \x20   # Custom attributes are served in this server's own extension schema, e.g.:\n\
                 \x20   # attributes:\n\
                 \x20   #   costCentre: { type: string, canonical_values: [CC-100, CC-200] }\n",
            );
        } else {
            out.push_str(&format!("  {rt}: {{}}\n"));
        }
    }
    out.push_str(
        "validation:\n\
         \x20 # strict: unknown attributes and non-canonical values are refused with 400.\n\
         \x20 strict: true\n\
         \x20 # Reference attributes whose values must name existing resources here.\n\
         \x20 check_references: []\n",
    );
    out
}
