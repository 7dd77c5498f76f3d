//! Servers created through the admin API, where replicas share one database: the creating
//! replica keeps the definition in the store, and every replica adopts what the store holds —
//! within `POLL` in the background, and at once when a request names a server it does not
//! know. A definition that does not compile here (replicas running different scimlab versions
//! during a rollout) is left out with a warning until it does.

use crate::data;
use crate::definition::{LoadedFile, load_str};
use crate::model::{ModelHandle, RebuildError};
use crate::store::{Store, StoreError};
use std::path::PathBuf;
use std::time::Duration;

/// How often each replica looks for servers created or deleted on another.
pub const POLL: Duration = Duration::from_millis(500);

/// The in-memory name of an admin-API definition (also how its problems are located).
pub fn source_name(id: &str) -> PathBuf {
    PathBuf::from(format!("admin:{id}"))
}

enum Skip {
    Unchanged,
    Store(StoreError),
    Prepare(data::DataError),
}

/// Makes the model's admin-API servers those the store keeps. Returns whether it changed.
pub fn adopt(model: &ModelHandle, store: &Store) -> bool {
    if !store.is_shared() {
        return false;
    }
    let outcome = model.rebuild(
        // Read under the model's writer lock: a server this replica creates meanwhile is in
        // the store before the lock is released, so it is never dropped again here.
        |ephemeral: &mut Vec<LoadedFile>, _| {
            let kept = store
                .read(|c| c.ephemeral_servers())
                .map_err(Skip::Store)?;
            let same = kept.len() == ephemeral.len()
                && kept.iter().all(|(id, text)| {
                    ephemeral
                        .iter()
                        .any(|f| f.def.id == *id && *f.text == **text)
                });
            if same {
                return Err(Skip::Unchanged);
            }
            *ephemeral = kept
                .iter()
                .filter_map(|(id, text)| match load_str(&source_name(id), text) {
                    Ok(f) => Some(f),
                    Err(d) => {
                        tracing::warn!(server = %id, "shared server definition does not parse here: {d}");
                        None
                    }
                })
                .collect();
            Ok(())
        },
        |changed, old| {
            for server in changed.servers.values() {
                let before = old.server(&server.id).map(|s| &**s);
                data::prepare(store, server, before).map_err(Skip::Prepare)?;
            }
            Ok(())
        },
    );
    match outcome {
        Ok(_) => true,
        Err(RebuildError::Refused(Skip::Unchanged)) => false,
        Err(RebuildError::Refused(Skip::Store(e))) => {
            tracing::warn!("reading the servers other replicas created: {e}");
            false
        }
        Err(RebuildError::Refused(Skip::Prepare(e))) => {
            tracing::warn!("preparing a server another replica created: {e}");
            false
        }
        Err(RebuildError::Compile(problems)) => {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            tracing::warn!(
                "servers other replicas created do not compile here: {}",
                problems.join("; ")
            );
            false
        }
    }
}
