//! The request inspector: every request to a virtual server is recorded with its response
//! (headers with Authorization redacted, capped bodies, status, latency, IdP quirks applied,
//! SCIM error, injected fault) in SQLite, as a bounded ring per server.
//!
//! Handlers only push the record into the server's in-memory ring; a persister writes what is
//! still in the rings to SQLite in one transaction (every half second, and before any read), so
//! recording costs a request little more than building the record, and under load only the
//! entries that survive in the ring are ever written.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// One recorded exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Set when read back.
    #[serde(default)]
    pub seq: i64,
    pub server: String,
    /// RFC 3339 time the request arrived.
    pub at: String,
    pub method: String,
    /// Path under `/scim-identifier/{server}/scim/v2`.
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<String>,
    pub request_body_truncated: bool,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    pub response_body_truncated: bool,
    /// IdP deviations accepted while handling it (see `compat`).
    pub quirks: Vec<String>,
    /// `scimType` and `detail` of a SCIM error response.
    pub error: Option<Value>,
    /// The fault injected, if any.
    pub fault: Option<String>,
}

/// A body as text, capped at `limit` bytes (on a character boundary).
pub fn capped(bytes: &[u8], limit: usize) -> (Option<String>, bool) {
    if bytes.is_empty() {
        return (None, false);
    }
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= limit {
        return (Some(text.into_owned()), false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (Some(text[..end].to_string()), true)
}

/// Header pairs with credentials redacted.
pub fn headers(map: &axum::http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            let value = if k == axum::http::header::AUTHORIZATION
                || k == axum::http::header::COOKIE
                || k.as_str() == "x-api-key"
            {
                // Only a registered scheme name is kept (it tells how the client authenticated);
                // anything else may be the secret itself.
                let scheme = v
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().split_once(' ').map(|(a, _)| a))
                    .filter(|a| {
                        ["Bearer", "Basic", "Digest", "Negotiate", "DPoP"]
                            .iter()
                            .any(|k| k.eq_ignore_ascii_case(a))
                    });
                match scheme {
                    Some(s) if k == axum::http::header::AUTHORIZATION => {
                        format!("{s} [redacted]")
                    }
                    _ => "[redacted]".into(),
                }
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
}

/// One server's newest entries, in memory until persisted.
struct Ring {
    entries: VecDeque<Entry>,
    capacity: usize,
    /// Highest sequence number written to SQLite.
    persisted: i64,
}

struct Inner {
    rings: Mutex<HashMap<String, Ring>>,
    next_seq: AtomicI64,
    /// The persister's own connection (not the store's writer: SCIM writes never wait on it).
    conn: Mutex<Connection>,
}

/// The recording side: a push into a per-server in-memory ring. The persister writes whatever
/// is still in the rings every half second and whenever a reader asks (`flush`), so under load
/// only the entries that stay in the ring ever reach SQLite.
pub struct Recorder {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Opens the persister's connection to `db` and starts its thread.
    pub fn start(db: &Path) -> rusqlite::Result<Recorder> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let last: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM request_log", [], |r| {
                r.get(0)
            })?;
        let inner = Arc::new(Inner {
            rings: Mutex::new(HashMap::new()),
            next_seq: AtomicI64::new(last + 1),
            conn: Mutex::new(conn),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (inner2, stop2) = (inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("scimlab-recorder".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    persist(&inner2);
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Recorder { inner, stop })
    }

    /// Records one entry; `capacity` is the server's ring size.
    pub fn record(&self, mut entry: Entry, capacity: usize) {
        entry.seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut rings = crate::sync::lock(&self.inner.rings);
        let ring = rings.entry(entry.server.clone()).or_insert_with(|| Ring {
            entries: VecDeque::new(),
            capacity,
            persisted: 0,
        });
        ring.capacity = capacity;
        ring.entries.push_back(entry);
        while ring.entries.len() > capacity {
            ring.entries.pop_front();
        }
    }

    /// Writes everything recorded so far (readers call this first). Blocking.
    pub fn flush(&self) {
        persist(&self.inner);
    }

    /// Drops a server's unwritten entries (its log is being cleared).
    pub fn forget(&self, server: &str) {
        crate::sync::lock(&self.inner.rings).remove(server);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes the entries still in the rings that are not in SQLite yet, then trims each touched
/// server's table rows to its capacity.
fn persist(inner: &Inner) {
    let conn = crate::sync::lock(&inner.conn);
    let mut batch: Vec<(Entry, usize)> = Vec::new();
    {
        let mut rings = crate::sync::lock(&inner.rings);
        for ring in rings.values_mut() {
            let fresh: Vec<Entry> = ring
                .entries
                .iter()
                .filter(|e| e.seq > ring.persisted)
                .cloned()
                .collect();
            if let Some(last) = fresh.last() {
                ring.persisted = last.seq;
            }
            batch.extend(fresh.into_iter().map(|e| (e, ring.capacity)));
        }
    }
    if batch.is_empty() {
        return;
    }
    if let Err(e) = write_batch(&conn, &batch) {
        tracing::warn!(
            "request inspector: could not write {} entries: {e}",
            batch.len()
        );
    }
}

fn write_batch(conn: &Connection, records: &[(Entry, usize)]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO request_log (seq, server_id, at, method, path, status, entry) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        )?;
        for (e, _) in records {
            let text = serde_json::to_string(e).unwrap_or_default();
            insert.execute(params![
                e.seq, e.server, e.at, e.method, e.path, e.status, text
            ])?;
        }
        let mut caps: Vec<(&str, usize)> = Vec::new();
        for (e, cap) in records {
            if !caps.iter().any(|(s, _)| *s == e.server) {
                caps.push((&e.server, *cap));
            }
        }
        let mut trim = tx.prepare_cached(
            "DELETE FROM request_log WHERE server_id=?1 AND seq <= (SELECT seq FROM request_log WHERE server_id=?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )?;
        for (server, cap) in caps {
            trim.execute(params![server, cap as i64])?;
        }
    }
    tx.commit()
}

/// Filters of `GET /admin/servers/{id}/requests`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Query {
    pub status: Option<String>,
    pub method: Option<String>,
    /// Substring of the path.
    pub path: Option<String>,
    /// Only entries after this sequence number (for polling).
    pub after: Option<i64>,
    pub limit: Option<usize>,
}

/// Reads a server's entries, newest first, by the store's reader.
pub fn read(c: &Connection, server: &str, q: &Query) -> rusqlite::Result<Vec<Entry>> {
    let mut sql = String::from("SELECT seq, entry FROM request_log WHERE server_id=?1");
    let mut args: Vec<rusqlite::types::Value> = vec![server.to_string().into()];
    if let Some(status) = q.status.as_deref().filter(|s| !s.is_empty()) {
        // `404`, or a class such as `4xx`.
        if let Some(class) = status
            .strip_suffix("xx")
            .and_then(|d| d.parse::<i64>().ok())
        {
            args.push((class * 100).into());
            sql.push_str(&format!(
                " AND status >= ?{n} AND status < ?{n} + 100",
                n = args.len()
            ));
        } else if let Ok(code) = status.parse::<i64>() {
            args.push(code.into());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
    }
    if let Some(m) = q.method.as_deref().filter(|s| !s.is_empty()) {
        args.push(m.to_ascii_uppercase().into());
        sql.push_str(&format!(" AND method = ?{}", args.len()));
    }
    if let Some(p) = q.path.as_deref().filter(|s| !s.is_empty()) {
        args.push(p.to_string().into());
        sql.push_str(&format!(
            " AND instr(lower(path), lower(?{})) > 0",
            args.len()
        ));
    }
    if let Some(after) = q.after {
        args.push(after.into());
        sql.push_str(&format!(" AND seq > ?{}", args.len()));
    }
    args.push((q.limit.unwrap_or(100).min(10_000) as i64).into());
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(&args), |r| {
        let seq: i64 = r.get(0)?;
        let text: String = r.get(1)?;
        Ok((seq, text))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, text) = row?;
        if let Ok(mut e) = serde_json::from_str::<Entry>(&text) {
            e.seq = seq;
            out.push(e);
        }
    }
    Ok(out)
}

/// One entry of a server by sequence number.
pub fn read_one(c: &Connection, server: &str, seq: i64) -> rusqlite::Result<Option<Entry>> {
    let text: Option<String> = c
        .query_row(
            "SELECT entry FROM request_log WHERE server_id=?1 AND seq=?2",
            params![server, seq],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text
        .and_then(|t| serde_json::from_str::<Entry>(&t).ok())
        .map(|mut e| {
            e.seq = seq;
            e
        }))
}

/// The entries as a HAR 1.2 log (oldest first), for attaching to a bug or replaying.
pub fn har(entries: &[Entry], base: &str) -> Value {
    let pairs = |h: &[(String, String)]| -> Vec<Value> {
        h.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect()
    };
    let mime = |h: &[(String, String)]| {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "application/scim+json".into())
    };
    let har_entries: Vec<Value> = entries
        .iter()
        .rev()
        .map(|e| {
            let url = match &e.query {
                Some(q) => format!("{base}/scim-identifier/{}/scim/v2{}?{q}", e.server, e.path),
                None => format!("{base}/scim-identifier/{}/scim/v2{}", e.server, e.path),
            };
            let query: Vec<Value> = e
                .query
                .as_deref()
                .map(|q| {
                    url_pairs(q)
                        .into_iter()
                        .map(|(n, v)| json!({"name": n, "value": v}))
                        .collect()
                })
                .unwrap_or_default();
            let mut request = json!({
                "method": e.method,
                "url": url,
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": pairs(&e.request_headers),
                "queryString": query,
                "headersSize": -1,
                "bodySize": e.request_body.as_ref().map_or(0, |b| b.len() as i64),
            });
            if let Some(body) = &e.request_body {
                request["postData"] = json!({"mimeType": mime(&e.request_headers), "text": body});
            }
            let mut comment = Vec::new();
            if !e.quirks.is_empty() {
                comment.push(format!("quirks: {}", e.quirks.join(", ")));
            }
            if let Some(f) = &e.fault {
                comment.push(format!("fault: {f}"));
            }
            json!({
                "startedDateTime": e.at,
                "time": e.latency_ms,
                "request": request,
                "response": {
                    "status": e.status,
                    "statusText": axum::http::StatusCode::from_u16(e.status).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": pairs(&e.response_headers),
                    "content": {
                        "size": e.response_body.as_ref().map_or(0, |b| b.len()),
                        "mimeType": mime(&e.response_headers),
                        "text": e.response_body.clone().unwrap_or_default(),
                    },
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": e.response_body.as_ref().map_or(0, |b| b.len() as i64),
                },
                "cache": {},
                "timings": {"send": 0, "wait": e.latency_ms, "receive": 0},
                "comment": comment.join("; "),
            })
        })
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "scimlab", "version": env!("CARGO_PKG_VERSION")},
            "entries": har_entries,
        }
    })
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{q}").parse().unwrap_or_default(),
    )
    .map(|axum::extract::Query(p)| p)
    .unwrap_or_default()
}

/// Deletes a server's recorded requests (reset from the admin API).
pub fn clear(c: &Connection, server: &str) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM request_log WHERE server_id=?1",
        params![server],
    )
}
