//! Hot reload: watch the definitions directory (the directory, not files: editors save by
//! rename), debounce bursts, compile off the async runtime, and swap the new model in only if
//! every file compiles and every index can be built. A failed reload keeps the last good model
//! serving and records the located errors for `/healthz`.

mod diff;
pub mod shared;

pub use diff::diff;

use crate::definition::Diagnostic;
use crate::model::ModelHandle;
use crate::model::Sources;
use crate::store::Store;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the directory must be quiet before a reload starts: long enough to see an
/// editor's write-and-rename as one change (a file caught half-written fails to parse, keeps
/// the previous definitions serving, and its next write reloads again).
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// What a reload works on: the model handle (the only way to change the model), the store
/// (indexes, catalogue items and seed data of servers that are new) and the status that
/// `/healthz` reports.
#[derive(Clone)]
pub struct Reloader {
    pub model: Arc<ModelHandle>,
    pub store: Arc<Store>,
    pub status: Arc<Mutex<ReloadStatus>>,
}

/// What `/healthz` reports about definitions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Every definition file and its problems (empty when it compiled).
    pub files: Vec<FileStatus>,
    pub last_reload: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub file: String,
    pub ok: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// RFC 3339 time the reload finished.
    pub at: String,
    pub ok: bool,
    /// What changed (on success) or every located error (on failure).
    pub messages: Vec<String>,
    pub millis: u64,
}

/// Per-file status of both directories given the problems of a compile attempt.
fn file_statuses(sources: &Sources, problems: &[Diagnostic]) -> Vec<FileStatus> {
    sources
        .files()
        .into_iter()
        .map(|f| {
            let errors: Vec<String> = problems
                .iter()
                .filter(|d| d.file == f)
                .map(ToString::to_string)
                .collect();
            FileStatus {
                file: f.display().to_string(),
                ok: errors.is_empty(),
                errors,
            }
        })
        .collect()
}

/// Compiles the definitions and profiles and, if everything is valid and the store accepts the
/// new indexes, swaps the model in. Blocking: call it from a blocking thread. Returns the change
/// summary or the errors.
pub fn reload(state: &Reloader, sources: &Sources) -> Result<Vec<String>, Vec<String>> {
    let started = Instant::now();
    // Indexes first: a uniqueness the existing data violates refuses the whole reload. Then
    // catalogue items and seed data of servers that are new or still empty.
    let prepare = |changed: &crate::model::Model, old: &crate::model::Model| {
        for server in changed.servers.values() {
            crate::data::prepare(&state.store, server, old.server(&server.id).map(|s| &**s))
                .map_err(|e| vec![format!("{}: {e}", server.source.display())])?;
        }
        Ok(())
    };
    // Recorded just before the new model serves: a client that sees its change served finds
    // this reload in the health report too (recorded after the swap, a health request could
    // still read the reload before it).
    let mut changes = Vec::new();
    let announce = |old: &crate::model::Model, new: &crate::model::Model| {
        changes = diff(old, new);
        set_files(state, file_statuses(sources, &[]));
        record(state, Ok(&changes), started);
    };
    match state
        .model
        .rebuild_announced(|_, _| Ok(()), prepare, announce)
    {
        Ok(_) => Ok(changes),
        Err(e) => {
            let errors = match e {
                crate::model::RebuildError::Compile(problems) => {
                    set_files(state, file_statuses(sources, &problems));
                    problems.iter().map(ToString::to_string).collect()
                }
                crate::model::RebuildError::Refused(errors) => errors,
            };
            record(state, Err(&errors), started);
            Err(errors)
        }
    }
}

/// Logs a reload's outcome and keeps it for the health report.
fn record(state: &Reloader, result: Result<&Vec<String>, &Vec<String>>, started: Instant) {
    let outcome = Outcome {
        at: crate::engine::now(),
        ok: result.is_ok(),
        messages: match result {
            Ok(c) | Err(c) => c.clone(),
        },
        millis: started.elapsed().as_millis() as u64,
    };
    match result {
        Ok(changes) if changes.is_empty() => {
            tracing::info!(ms = outcome.millis, "reloaded definitions: no change")
        }
        Ok(changes) => tracing::info!(
            ms = outcome.millis,
            "reloaded definitions: {}",
            changes.join("; ")
        ),
        Err(errors) => tracing::error!(
            "reload refused, the previous definitions keep serving:\n{}",
            errors.join("\n")
        ),
    }
    crate::sync::lock(&state.status).last_reload = Some(outcome);
}

fn set_files(state: &Reloader, files: Vec<FileStatus>) {
    crate::sync::lock(&state.status).files = files;
}

/// Records the status of the initial, successful load, and where definitions live (the admin
/// API recompiles from there when it adds an ephemeral server).
pub fn initial_status(state: &Reloader, sources: &Sources) {
    set_files(state, file_statuses(sources, &[]));
    state.model.set_sources(sources.clone());
}

/// Watches both directories until the returned watcher is dropped: every burst of changes
/// triggers one reload, run on the blocking pool. A profiles directory that does not exist yet
/// is not watched (SIGHUP still reloads it).
pub fn watch(state: Reloader, sources: Sources) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&sources.servers, notify::RecursiveMode::NonRecursive)?;
    if sources.profiles.is_dir() {
        watcher.watch(&sources.profiles, notify::RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until no event arrived for DEBOUNCE.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let (state, sources) = (state.clone(), sources.clone());
            let _ = tokio::task::spawn_blocking(move || reload(&state, &sources)).await;
        }
    });
    Ok(watcher)
}

/// Reloads on SIGHUP (with or without the watcher).
#[cfg(unix)]
pub fn on_sighup(state: Reloader, sources: Sources) -> std::io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading definitions");
            let (state, sources) = (state.clone(), sources.clone());
            let _ = tokio::task::spawn_blocking(move || reload(&state, &sources)).await;
        }
    });
    Ok(())
}
