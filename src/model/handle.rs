//! The one handle on the current model. Readers take a snapshot (`load`) and use it for a whole
//! request; every change — a directory reload, an admin create or delete — goes through
//! [`ModelHandle::rebuild`], which holds the single writer lock from reading the ephemeral
//! definitions to swapping the new model in, so concurrent changes never lose each other.

use super::{Model, Sources, compile_reusing};
use crate::definition::{Diagnostic, LoadedFile};
use arc_swap::{ArcSwap, Guard};
use std::sync::{Arc, Mutex};

/// What the writer owns besides the model: where definitions live and the servers created
/// through the admin API (kept across reloads, gone on restart).
#[derive(Default)]
struct Writer {
    sources: Option<Sources>,
    ephemeral: Vec<LoadedFile>,
}

pub struct ModelHandle {
    current: ArcSwap<Model>,
    writer: Mutex<Writer>,
}

/// Why a rebuild did not happen.
#[derive(Debug)]
pub enum RebuildError<E> {
    /// The definitions (files and ephemeral ones) do not compile.
    Compile(Vec<Diagnostic>),
    /// The caller's edit or preparation refused.
    Refused(E),
}

impl ModelHandle {
    pub fn new(model: Model) -> ModelHandle {
        ModelHandle {
            current: ArcSwap::from_pointee(model),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// A snapshot of the current model (cheap; hold it for one request).
    pub fn load(&self) -> Guard<Arc<Model>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Model> {
        self.current.load_full()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave the writer half-changed: it is only
        // assigned after everything succeeded.
        crate::sync::lock(&self.writer)
    }

    /// Where definition files live, for rebuilds.
    pub fn set_sources(&self, sources: Sources) {
        self.writer().sources = Some(sources);
    }

    pub fn sources(&self) -> Option<Sources> {
        self.writer().sources.clone()
    }

    /// Recompiles the model from the definition files and the ephemeral definitions, as
    /// `edit` changes the latter, and swaps it in if `prepare` accepts the servers that are new
    /// or changed (the others are reused as they were), given with the model serving until
    /// now; all under the writer lock. Returns the previous and the new model.
    pub fn rebuild<E>(
        &self,
        edit: impl FnOnce(&mut Vec<LoadedFile>, &Model) -> Result<(), E>,
        prepare: impl FnOnce(&Model, &Model) -> Result<(), E>,
    ) -> Result<(Arc<Model>, Arc<Model>), RebuildError<E>> {
        self.rebuild_announced(edit, prepare, |_, _| {})
    }

    /// As [`ModelHandle::rebuild`], calling `announce` with the previous and the new model just
    /// before the new one is swapped in (under the writer lock): what it records (the reload's
    /// outcome) is in place by the time any request is served by the new model.
    pub fn rebuild_announced<E>(
        &self,
        edit: impl FnOnce(&mut Vec<LoadedFile>, &Model) -> Result<(), E>,
        prepare: impl FnOnce(&Model, &Model) -> Result<(), E>,
        announce: impl FnOnce(&Model, &Model),
    ) -> Result<(Arc<Model>, Arc<Model>), RebuildError<E>> {
        let mut w = self.writer();
        let old = self.current.load_full();
        let mut ephemeral = w.ephemeral.clone();
        edit(&mut ephemeral, &old).map_err(RebuildError::Refused)?;
        let new = match &w.sources {
            Some(s) => s.recompile(&ephemeral, Some(&old)),
            None => compile_reusing(&ephemeral, &[], Some(&old)).map(|mut m| {
                m.mark_ephemeral(&ephemeral);
                m
            }),
        }
        .map_err(RebuildError::Compile)?;
        // Servers reused unchanged were prepared when they were compiled.
        let changed = Model {
            servers: (new.servers.iter())
                .filter(|(id, s)| !old.server(id).is_some_and(|o| Arc::ptr_eq(o, s)))
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect(),
        };
        prepare(&changed, &old).map_err(RebuildError::Refused)?;
        let new = Arc::new(new);
        w.ephemeral = ephemeral;
        announce(&old, &new);
        self.current.store(new.clone());
        Ok((old, new))
    }

    /// Replaces the model with one compiled elsewhere (the benchmark's variants), under the
    /// writer lock; returns the previous one.
    pub fn replace(&self, model: Arc<Model>) -> Arc<Model> {
        let _w = self.writer();
        self.current.swap(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(id: &str) -> LoadedFile {
        crate::definition::load_str(
            Path::new(&format!("admin:{id}")),
            &format!("id: {id}\ntokens: [t-{id}]\nresource_types: {{ User: {{}} }}\n"),
        )
        .unwrap()
    }

    /// An edit that adds `f` to the ephemeral definitions.
    fn add(f: LoadedFile) -> impl FnOnce(&mut Vec<LoadedFile>, &Model) -> Result<(), &'static str> {
        move |e, _| {
            e.push(f);
            Ok(())
        }
    }

    #[test]
    fn a_refused_or_broken_rebuild_changes_nothing() {
        let h = ModelHandle::new(Model::default());
        h.rebuild(add(file("a")), |_, _| Ok(())).unwrap();
        let before = h.load_full();
        // Refused by the edit, by the preparation, or not compiling: the model and the
        // ephemeral definitions stay as they were.
        let refuse = |e: &mut Vec<LoadedFile>, _: &Model| {
            e.push(file("b"));
            Err("no")
        };
        assert!(matches!(
            h.rebuild(refuse, |_, _| Ok(())),
            Err(RebuildError::Refused("no"))
        ));
        assert!(matches!(
            h.rebuild(add(file("b")), |_, _| Err("no")),
            Err(RebuildError::Refused("no"))
        ));
        let broken = crate::definition::load_str(
            Path::new("admin:c"),
            "id: c\ntokens: [t]\nresource_types: { Nope: {} }\n",
        )
        .unwrap();
        assert!(matches!(
            h.rebuild(add(broken), |_, _| Ok(())),
            Err(RebuildError::Compile(_))
        ));
        assert!(Arc::ptr_eq(&before, &h.load_full()));
        let (_, after) = h.rebuild(|_, _| Ok::<_, ()>(()), |_, _| Ok(())).unwrap();
        assert_eq!(after.servers.keys().collect::<Vec<_>>(), ["a"]);
    }

    /// `announce` sees the previous and the new model while the previous one still serves,
    /// and is not called when the rebuild is refused.
    #[test]
    fn announce_runs_before_the_new_model_serves() {
        let h = ModelHandle::new(Model::default());
        let mut seen = None;
        let (_, new) = h
            .rebuild_announced(
                add(file("a")),
                |_, _| Ok(()),
                |old, new| {
                    let serving = h.load_full();
                    seen = Some((old.servers.len(), new.servers.len(), serving.servers.len()));
                },
            )
            .unwrap();
        assert_eq!(seen, Some((0, 1, 0)), "announced before the swap");
        assert!(Arc::ptr_eq(&new, &h.load_full()));
        let mut called = false;
        let refused = h.rebuild_announced(add(file("b")), |_, _| Err("no"), |_, _| called = true);
        assert!(refused.is_err());
        assert!(!called, "a refused rebuild announces nothing");
    }

    #[test]
    fn concurrent_rebuilds_lose_no_change() {
        let h = Arc::new(ModelHandle::new(Model::default()));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    h.rebuild(add(file(&format!("s{i}"))), |_, _| Ok(()))
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let model = h.load_full();
        assert_eq!(model.servers.len(), 8);
        assert!(model.servers.values().all(|s| s.ephemeral));
    }
}
