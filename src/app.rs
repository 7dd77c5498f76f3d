//! Wiring for `scimlab serve`: compile the definitions, open the store, bind, serve.

use crate::http::{self, AppState};
use crate::model::Sources;
use crate::store::Store;
use crate::{model, reload};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: crate::store::Location,
    /// Server definitions and the profile packs they apply.
    pub sources: Sources,
    /// Reload when files in `servers` change (SIGHUP reloads either way).
    pub watch: bool,
    /// Admin API token; generated (and logged) when absent.
    pub admin_token: Option<String>,
    /// Serve `/admin` and `/ui` to non-loopback clients too.
    pub admin_remote: bool,
    /// Host names the UI answers to besides loopback names.
    pub public_hosts: Vec<String>,
    /// Connection limits of the listener.
    pub conn: http::listen::ConnLimits,
}

/// Every route: the SCIM, health and admin API (`http`) and the web UI (`ui`), assembled here
/// so neither knows the other.
pub fn router(state: AppState) -> axum::Router {
    http::routes(&state)
        .merge(crate::ui::routes(state.clone()))
        .merge(http::oauth_routes())
        .with_state(state)
}

/// Serves `state` on `listener` with `limits` until `shutdown` completes. The caller binds
/// the socket.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: http::listen::ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.watch_shared();
    // Pushes SCIM events for as long as the server runs.
    let delivery = crate::delivery::start(state.store.clone(), state.model.clone());
    let served = http::listen::serve(listener, router(state), limits, shutdown).await;
    delivery.abort();
    served
}

/// Compiles the definitions or returns every located problem as one error.
pub fn compile(sources: &Sources) -> anyhow::Result<model::Model> {
    sources.compile().map_err(|problems| {
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
    let model = compile(&config.sources)?;
    let store = Arc::new(
        Store::connect(&config.db).with_context(|| format!("opening database {}", config.db))?,
    );
    let mut admin = crate::http::AdminAccess::generated();
    match &config.admin_token {
        Some(t) if !t.is_empty() => admin.token = t.clone(),
        _ => tracing::info!(
            "admin API token (choose one with --admin-token or SCIMLAB_ADMIN_TOKEN): {}",
            admin.token
        ),
    }
    admin.remote = config.admin_remote;
    admin.public_hosts = config.public_hosts.clone();
    let state = AppState::new(store, model)
        .context("preparing servers (indexes, catalogue, seed data)")?
        .with_admin(admin);
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
    reload::initial_status(&state.reloader(), &config.sources);
    tracing::info!("web UI at http://{addr}/ui (loopback clients)");
    // Kept alive for as long as the server runs.
    let _watcher = if config.watch {
        Some(
            reload::watch(state.reloader(), config.sources.clone())
                .with_context(|| format!("watching {}", config.sources.servers.display()))?,
        )
    } else {
        None
    };
    #[cfg(unix)]
    reload::on_sighup(state.reloader(), config.sources.clone())?;
    serve_with(listener, state, config.conn.clone(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// `scimlab new`: a commented starter definition.
pub fn starter_definition(id: &str, resource_types: &[String], profiles: &[String]) -> String {
    let token: String = uuid::Uuid::new_v4().simple().to_string();
    let mut out = format!(
        "# yaml-language-server: $schema=../schemas/server-definition.schema.json\n\
         # Served at /scim-identifier/{id}/scim/v2/ once saved in servers.d/ (the server reloads it).\n\
         id: {id}\n\
         description: {id} provisioning target\n\
         # Bearer tokens this server accepts (and no other server does).\n\
         tokens: [{token}]\n"
    );
    if !profiles.is_empty() {
        out.push_str(&format!(
            "# Application profiles from profiles/: the attributes the app sees, their rules, its\n\
             # entitlement and role catalogue and its seed data.\n\
             profiles: [{}]\n\
             # Filled with deterministic sample data when the server starts empty.\n\
             seed: {{ users: 50, groups: 8, seed: 1 }}\n",
            profiles.join(", ")
        ));
    }
    out.push_str("resource_types:\n");
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
