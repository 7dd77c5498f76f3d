//! Per-request notes: which IdP quirks a request had applied to it. Whatever applies a quirk
//! notes it here (on the request's task, or on the blocking thread doing its work); the HTTP
//! layer collects the notes for the request inspector.

use std::cell::RefCell;

tokio::task_local! {
    /// Quirks applied while handling the current request (async part).
    static QUIRKS: RefCell<Vec<&'static str>>;
}

thread_local! {
    /// Quirks applied on this thread since the last `take_thread_quirks` (blocking part).
    static THREAD_QUIRKS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Notes that a quirk was applied: into the request's notes when on its task, else into the
/// thread's (blocking work hands those back with `take_thread_quirks`).
pub fn note_quirk(name: &'static str) {
    let on_task = QUIRKS
        .try_with(|q| {
            let mut q = q.borrow_mut();
            if !q.contains(&name) {
                q.push(name);
            }
        })
        .is_ok();
    if !on_task {
        THREAD_QUIRKS.with(|q| {
            let mut q = q.borrow_mut();
            if !q.contains(&name) {
                q.push(name);
            }
        });
    }
}

/// The quirks noted on this thread, clearing them.
pub fn take_thread_quirks() -> Vec<&'static str> {
    THREAD_QUIRKS.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

/// Adds quirks collected elsewhere (a blocking thread) to the current request's notes.
pub fn add_quirks(names: Vec<&'static str>) {
    for n in names {
        note_quirk(n);
    }
}

/// Runs `f` with fresh request notes; returns its output and the quirks noted.
pub async fn with_notes<F: std::future::Future>(f: F) -> (F::Output, Vec<&'static str>) {
    QUIRKS
        .scope(RefCell::new(Vec::new()), async move {
            let out = f.await;
            let quirks = QUIRKS.with(|q| q.borrow().clone());
            (out, quirks)
        })
        .await
}
