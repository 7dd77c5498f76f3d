//! Where a page deep into insertion order starts. SQLite finds the n-th entry of an index
//! only by stepping over the n before it, so `LIMIT 100 OFFSET 90000` stepped over 90,000
//! entries, and reading every page of a resource type by startIndex (what IdPs do) took time
//! quadratic in its size.
//!
//! A resource's position in insertion order changes only when a resource before it is
//! deleted: a new resource takes a larger `seq` than every other (the single writer inserts
//! and commits in that order). So the `seq` found at every [`STRIDE`]-th position is kept per
//! database file, server and resource type, with the type's `resource_counts.generation`,
//! which every deletion changes, and a page starts from the nearest one at or before it.

use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Positions between two remembered ones: a page steps over fewer than this many entries.
pub(super) const STRIDE: usize = 256;

/// Resource types remembered at most (a few hundred bytes each).
const MAX_KEPT: usize = 4096;

/// `seqs[k]`: the `seq` at position `k * STRIDE` while the generation stays `generation`.
struct Known {
    generation: i64,
    seqs: Vec<i64>,
}

type Key = (String, String, String);

static KNOWN: LazyLock<Mutex<HashMap<Key, Known>>> = LazyLock::new(Default::default);

/// The remembered start nearest at or before `offset` (0-based) among the resources of
/// `scope` (an SQL scope over alias `r`): the `seq` to start from and how many entries to step
/// over from it. Extends what is remembered up to `offset` when needed, stepping over the
/// entries once. `None` when the database has no file (nothing to key it by) or `c` is
/// writing.
pub(super) fn start_of(
    c: &Connection,
    scope: &str,
    server_id: &str,
    resource_type: &str,
    generation: i64,
    offset: usize,
) -> rusqlite::Result<Option<(i64, usize)>> {
    let Some(file) = c.path().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    // Inside a write (a Bulk reading its own work) positions may still be rolled back.
    if c.transaction_state(Some("main"))? == rusqlite::TransactionState::Write {
        return Ok(None);
    }
    let key = (
        file.to_string(),
        server_id.to_string(),
        resource_type.to_string(),
    );
    let want = offset / STRIDE;
    // What is known, if it is of this generation; the walk starts again from its last start
    // (taken off, to be found again as the walk's first entry).
    let (mut seqs, from) = {
        let known = crate::sync::lock(&KNOWN);
        match known.get(&key).filter(|k| k.generation == generation) {
            Some(k) if want < k.seqs.len() => return Ok(Some((k.seqs[want], offset % STRIDE))),
            Some(k) => {
                let mut seqs = k.seqs.clone();
                let last = seqs.pop();
                (seqs, last)
            }
            None => (Vec::new(), None),
        }
    };
    // Walk the index (entries only, no rows): entry i is at position seqs.len() * STRIDE + i.
    let sql = format!(
        "SELECT r.seq FROM resources r WHERE {scope} AND r.seq >= ?1 ORDER BY r.seq LIMIT ?2"
    );
    let steps = (want - seqs.len()) * STRIDE + 1;
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![from.unwrap_or(i64::MIN), steps as i64])?;
    let mut i = 0;
    while let Some(r) = rows.next()? {
        if i % STRIDE == 0 {
            seqs.push(r.get(0)?);
        }
        i += 1;
    }
    drop(rows);
    let found = seqs.get(want).map(|&s| (s, offset % STRIDE));
    let mut known = crate::sync::lock(&KNOWN);
    let keep = match known.get(&key) {
        Some(k) => k.generation != generation || k.seqs.len() < seqs.len(),
        None => true,
    };
    if keep {
        if known.len() >= MAX_KEPT && !known.contains_key(&key) {
            // Servers come and go (ephemeral CI servers): forget them all rather than grow.
            known.clear();
        }
        known.insert(key, Known { generation, seqs });
    }
    Ok(found)
}
