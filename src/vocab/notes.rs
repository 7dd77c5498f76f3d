//! Per-request notes: which IdP quirks a request had applied to it, and which SCIM events
//! (SETs, by `jti`) it raised. Whatever applies a quirk or records an event notes it here (on
//! the request's task, or on the blocking thread doing its work); the HTTP layer collects the
//! notes for the request inspector.

use std::cell::RefCell;

/// What was noted while handling one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes {
    /// IdP quirks applied, each once.
    pub quirks: Vec<&'static str>,
    /// `jti`s of the SETs the request raised, in order.
    pub events: Vec<String>,
    /// Non-RFC lifecycle policies that changed the answer (`delete=soft`, …), each once.
    pub policies: Vec<&'static str>,
}

impl Notes {
    fn quirk(&mut self, name: &'static str) {
        if !self.quirks.contains(&name) {
            self.quirks.push(name);
        }
    }

    fn merge(&mut self, other: Notes) {
        for q in other.quirks {
            self.quirk(q);
        }
        self.events.extend(other.events);
        for p in other.policies {
            self.policy(p);
        }
    }

    fn policy(&mut self, name: &'static str) {
        if !self.policies.contains(&name) {
            self.policies.push(name);
        }
    }
}

tokio::task_local! {
    /// Notes of the current request (async part).
    static NOTES: RefCell<Notes>;
}

thread_local! {
    /// Notes taken on this thread since the last `take_thread_notes` (blocking part).
    static THREAD_NOTES: RefCell<Notes> = RefCell::new(Notes::default());
}

/// Adds to the request's notes when on its task, else to the thread's (blocking work hands
/// those back with `take_thread_notes`).
fn note(f: impl Fn(&mut Notes)) {
    let on_task = NOTES.try_with(|n| f(&mut n.borrow_mut())).is_ok();
    if !on_task {
        THREAD_NOTES.with(|n| f(&mut n.borrow_mut()));
    }
}

/// Notes that a quirk was applied.
pub fn note_quirk(name: &'static str) {
    note(|n| n.quirk(name));
}

/// Notes that a non-RFC lifecycle policy changed the answer.
pub fn note_policy(name: &'static str) {
    note(|n| n.policy(name));
}

/// Notes that a SET was recorded.
pub fn note_event(jti: &str) {
    note(|n| n.events.push(jti.to_string()));
}

/// The notes taken on this thread, clearing them.
fn take_thread_notes() -> Notes {
    THREAD_NOTES.with(|n| std::mem::take(&mut *n.borrow_mut()))
}

/// Runs `f` off the request's task (a blocking thread, the writer thread): its output and
/// what it noted, to hand back to the request with [`add_notes`]. Notes a previous job left
/// on the thread are dropped first.
pub fn noted_on_thread<T>(f: impl FnOnce() -> T) -> (T, Notes) {
    take_thread_notes();
    let out = f();
    (out, take_thread_notes())
}

/// Adds notes taken elsewhere (a blocking thread) to the current request's. Work outside a
/// request (an asynchronous request's background part) has nowhere to put them.
pub fn add_notes(notes: Notes) {
    let _ = NOTES.try_with(|n| n.borrow_mut().merge(notes));
}

/// Runs `f` with fresh request notes; returns its output and what was noted.
pub async fn with_notes<F: std::future::Future>(f: F) -> (F::Output, Notes) {
    NOTES
        .scope(RefCell::new(Notes::default()), async move {
            let out = f.await;
            let notes = NOTES.with(|n| n.borrow().clone());
            (out, notes)
        })
        .await
}
