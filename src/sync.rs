//! Locks that never skip their work. A `Mutex` is poisoned when a thread panicked while
//! holding it; the state behind scimlab's locks is assigned whole (never left half-updated),
//! so the guard is recovered and the work goes on, with a warning, instead of being skipped.

use std::sync::{Mutex, MutexGuard};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        tracing::warn!("a lock was poisoned by a panic elsewhere; continuing with its state");
        poisoned.into_inner()
    })
}
