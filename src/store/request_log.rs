//! The request log's table: what the request inspector persists (each entry as JSON beside the
//! columns it is filtered by), kept as a bounded ring per server. The inspector writes through
//! its own connection ([`LogWriter`]), so SCIM writes never wait for it.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// One entry to write.
pub struct LogRow<'a> {
    pub seq: i64,
    pub server: &'a str,
    pub at: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// The entry as JSON, without its bodies.
    pub entry: String,
    /// The bodies as recorded (capped), kept apart from `entry` so that they are not escaped.
    pub request_body: Option<&'a str>,
    pub response_body: Option<&'a str>,
    /// How many entries the server keeps.
    pub capacity: usize,
}

/// One entry as stored: its JSON, and its bodies when they were kept apart from it (rows
/// written before that hold them in `entry`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogText {
    pub seq: i64,
    pub entry: String,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

/// The columns [`LogText`] is read from, in its order.
pub const LOG_TEXT_COLUMNS: &str = "seq, entry, request_body, response_body";

/// Which entries to read (all conditions together).
#[derive(Debug, Default, Clone)]
pub struct LogFilter<'a> {
    /// Exactly this status.
    pub status: Option<u16>,
    /// A status class: 4 for 4xx.
    pub status_class: Option<u16>,
    pub method: Option<&'a str>,
    /// Substring of the path, case-insensitively.
    pub path: Option<&'a str>,
    /// Only entries after this sequence number.
    pub after: Option<i64>,
    pub limit: usize,
}

/// The request log's writer: its own SQLite connection, or the PostgreSQL store.
pub enum LogWriter {
    Sqlite(Mutex<Connection>),
    Postgres(super::pg::PgLog),
}

impl LogWriter {
    /// Opens a connection to `db`; returns it with the highest sequence number written.
    pub fn open(db: &Path) -> Result<(LogWriter, i64), StoreError> {
        let conn = super::open_writing(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let last: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM request_log", [], |r| {
                r.get(0)
            })?;
        Ok((LogWriter::Sqlite(Mutex::new(conn)), last))
    }

    /// The request log of a PostgreSQL store, which replicas share.
    pub fn postgres(store: std::sync::Arc<super::pg::PgStore>) -> (LogWriter, i64) {
        (LogWriter::Postgres(super::pg::PgLog::new(store)), 0)
    }

    /// Where several processes write the log, each numbers its entries from the clock with
    /// its own replica number in the low 8 bits (distinct and time-ordered without asking the
    /// database per entry); a single process counts from the highest number written.
    pub fn replica_number(&self) -> Option<i64> {
        match self {
            LogWriter::Sqlite(_) => None,
            LogWriter::Postgres(p) => Some(p.replica_number()),
        }
    }

    /// Writes `rows` in one transaction, then trims each of their servers to its capacity.
    pub fn write(&self, rows: &[LogRow<'_>]) -> Result<(), StoreError> {
        let conn = match self {
            LogWriter::Sqlite(conn) => crate::sync::lock(conn),
            LogWriter::Postgres(p) => return p.write(rows),
        };
        let tx = conn.unchecked_transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO request_log (seq, server_id, at, method, path, status, entry, request_body, response_body) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            )?;
            for r in rows {
                insert.execute(params![
                    r.seq,
                    r.server,
                    r.at,
                    r.method,
                    r.path,
                    r.status,
                    r.entry,
                    r.request_body,
                    r.response_body
                ])?;
            }
            let caps = capacities(rows);
            let mut trim = tx.prepare_cached(
                "DELETE FROM request_log WHERE server_id=?1 AND seq <= (SELECT seq FROM request_log WHERE server_id=?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )?;
            for (server, cap) in caps {
                trim.execute(params![server, cap as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Each server among `rows` once, with the number of entries it keeps (what a write trims to).
pub fn capacities<'a>(rows: &[LogRow<'a>]) -> Vec<(&'a str, usize)> {
    let mut caps: Vec<(&str, usize)> = Vec::new();
    for r in rows {
        if !caps.iter().any(|(s, _)| *s == r.server) {
            caps.push((r.server, r.capacity));
        }
    }
    caps
}

/// A server's entries, newest first.
pub fn read(c: &Connection, server: &str, f: &LogFilter<'_>) -> Result<Vec<LogText>, StoreError> {
    let mut sql = format!("SELECT {LOG_TEXT_COLUMNS} FROM request_log WHERE server_id=?1");
    let mut args: Vec<rusqlite::types::Value> = vec![server.to_string().into()];
    if let Some(class) = f.status_class {
        args.push((i64::from(class) * 100).into());
        sql.push_str(&format!(
            " AND status >= ?{n} AND status < ?{n} + 100",
            n = args.len()
        ));
    }
    if let Some(code) = f.status {
        args.push(i64::from(code).into());
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    if let Some(m) = f.method {
        args.push(m.to_ascii_uppercase().into());
        sql.push_str(&format!(" AND method = ?{}", args.len()));
    }
    if let Some(p) = f.path {
        args.push(p.to_string().into());
        sql.push_str(&format!(
            " AND instr(lower(path), lower(?{})) > 0",
            args.len()
        ));
    }
    if let Some(after) = f.after {
        args.push(after.into());
        sql.push_str(&format!(" AND seq > ?{}", args.len()));
    }
    args.push((f.limit as i64).into());
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(&args), log_text)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One entry by sequence number.
pub fn read_one(c: &Connection, server: &str, seq: i64) -> Result<Option<LogText>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {LOG_TEXT_COLUMNS} FROM request_log WHERE server_id=?1 AND seq=?2"),
        params![server, seq],
        log_text,
    )
    .optional()?)
}

fn log_text(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogText> {
    Ok(LogText {
        seq: r.get(0)?,
        entry: r.get(1)?,
        request_body: r.get(2)?,
        response_body: r.get(3)?,
    })
}

/// Deletes a server's entries; returns how many there were.
pub fn clear(c: &Connection, server: &str) -> Result<usize, StoreError> {
    Ok(c.execute(
        "DELETE FROM request_log WHERE server_id=?1",
        params![server],
    )?)
}
