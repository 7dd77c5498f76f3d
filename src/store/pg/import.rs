//! `scimlab migrate`: a SQLite database copied into an empty PostgreSQL one, every table
//! with its sequence numbers, so that list order, cursors (signed with the copied key),
//! versions, snapshots, pending events and the request log carry over.

use super::{PgConn, PgStore};
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// What was copied: (table, rows).
pub type Copied = Vec<(&'static str, usize)>;

/// Copies `from` (a scimlab SQLite file, brought to the current schema first) into the
/// PostgreSQL database at `to`, which must hold no resources yet. One transaction: on any
/// error nothing is copied.
pub fn sqlite_to_postgres(from: &Path, to: &str) -> Result<Copied, StoreError> {
    if !from.is_file() {
        return Err(StoreError::Migration(format!(
            "{} is not a file",
            from.display()
        )));
    }
    // Opening runs scimlab's migrations, so every table below exists.
    drop(crate::store::Store::open(from)?);
    let src = Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let dst = PgStore::open(to)?;
    dst.transaction(super::Pool::Main, |c| {
        let held: i64 = c.query("SELECT count(*) FROM resources", &[])?[0].get(0);
        if held > 0 {
            return Err(StoreError::Migration(format!(
                "the target database already holds {held} resources; migrate into an empty one"
            )));
        }
        let mut copied = Copied::new();
        for (table, select, insert, cols) in TABLES {
            copied.push((table, copy(&src, c, select, insert, cols)?));
        }
        // The cursor key: cursors handed out before the move stay valid.
        let key: Vec<u8> = src.query_row("SELECT value FROM secrets WHERE name='cursor'", [], |r| r.get(0))?;
        c.execute("UPDATE secrets SET value=$1 WHERE name='cursor'", &[&key])?;
        // Serial columns continue after the copied numbers.
        for (table, column) in [("resources", "seq"), ("memberships", "seq"), ("events", "seq"), ("event_deliveries", "id")] {
            c.query(
                &format!("SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"),
                &[],
            )?;
        }
        Ok(copied)
    })
}

/// Each table: its name, how rows are read from SQLite (in their order) and written here.
const TABLES: [(&str, &str, &str, &[Col]); 8] = [
    (
        "resources",
        "SELECT seq, server_id, resource_type, id, version, created, last_modified, doc FROM resources ORDER BY seq",
        "INSERT INTO resources (seq, server_id, resource_type, id, version, created, last_modified, doc) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::text::jsonb)",
        &[I, T, T, T, I, T, T, T],
    ),
    (
        "memberships",
        "SELECT seq, server_id, group_id, member_id, member_type, display FROM memberships ORDER BY seq",
        "INSERT INTO memberships (seq, server_id, group_id, member_id, member_type, display) VALUES ($1,$2,$3,$4,$5,$6)",
        &[I, T, T, T, T, T],
    ),
    (
        "request_log",
        "SELECT seq, server_id, at, method, path, status, entry, request_body, response_body FROM request_log ORDER BY seq",
        "INSERT INTO request_log (seq, server_id, at, method, path, status, entry, request_body, response_body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        &[I, T, T, T, T, I, T, T, T],
    ),
    (
        "snapshots",
        "SELECT server_id, name, taken, data FROM snapshots",
        "INSERT INTO snapshots (server_id, name, taken, data) VALUES ($1,$2,$3,$4)",
        &[T, T, T, T],
    ),
    (
        "events",
        "SELECT seq, server_id, jti, created, claims, state, error FROM events ORDER BY seq",
        "INSERT INTO events (seq, server_id, jti, created, claims, state, error) VALUES ($1,$2,$3,$4,$5,$6,$7)",
        &[I, T, T, T, T, T, T],
    ),
    (
        "event_deliveries",
        "SELECT id, event_seq, receiver, state, attempts, next_at, last_status, last_error FROM event_deliveries ORDER BY id",
        "INSERT INTO event_deliveries (id, event_seq, receiver, state, attempts, next_at, last_status, last_error) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        &[I, I, T, T, I, I, I, T],
    ),
    (
        "oauth_grants",
        "SELECT server_id, digest, kind, client_id, expires_at, detail FROM oauth_grants",
        "INSERT INTO oauth_grants (server_id, digest, kind, client_id, expires_at, detail) VALUES ($1,$2,$3,$4,$5,$6)",
        &[T, T, T, T, I, T],
    ),
    (
        "ephemeral_servers",
        "SELECT id, definition, created FROM ephemeral_servers",
        "INSERT INTO ephemeral_servers (id, definition, created) VALUES ($1,$2,$3)",
        &[T, T, T],
    ),
];

/// A column's type in both databases.
#[derive(Clone, Copy)]
enum Col {
    T,
    I,
}
use Col::{I, T};

/// Copies the rows `select` reads from SQLite with `insert`; returns how many.
fn copy(
    src: &Connection,
    c: &PgConn<'_>,
    select: &str,
    insert: &str,
    cols: &[Col],
) -> Result<usize, StoreError> {
    let mut st = src.prepare(select)?;
    let mut rows = st.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let mut values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> =
            Vec::with_capacity(cols.len());
        for (i, col) in cols.iter().enumerate() {
            values.push(match col {
                Col::T => Box::new(r.get::<_, Option<String>>(i)?),
                Col::I => Box::new(r.get::<_, Option<i64>>(i)?),
            });
        }
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v.as_ref()).collect();
        c.execute(insert, &refs)?;
        n += 1;
    }
    Ok(n)
}
