//! The request inspector: every request to a virtual server is recorded with its response
//! (headers with Authorization redacted, capped bodies, status, latency, IdP quirks applied,
//! SCIM error, injected fault) in SQLite, as a bounded ring per server.
//!
//! Handlers only push a record onto a channel; a background thread writes batches in one
//! transaction on its own connection and trims each server's ring, so recording costs a request
//! little more than building the record.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

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
                let scheme = v
                    .to_str()
                    .ok()
                    .and_then(|s| s.split_once(' ').map(|(a, _)| a.to_string()));
                match scheme {
                    Some(s) => format!("{s} [redacted]"),
                    None => "[redacted]".into(),
                }
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
}

enum Msg {
    Record(Box<Entry>, usize),
    Flush(Sender<()>),
}

/// The recording side: cheap to call from handlers.
pub struct Recorder {
    tx: Mutex<Option<Sender<Msg>>>,
}

impl Recorder {
    /// Starts the writer thread on its own connection to `db`.
    pub fn start(db: &Path) -> rusqlite::Result<Recorder> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("scimlab-recorder".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Recorder {
            tx: Mutex::new(Some(tx)),
        })
    }

    /// Queues one entry; `capacity` is the server's ring size.
    pub fn record(&self, entry: Entry, capacity: usize) {
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            let _ = tx.send(Msg::Record(Box::new(entry), capacity));
        }
    }

    /// Waits until everything queued so far is written (reads call this first). Blocking.
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|tx| tx.as_ref().map(|tx| tx.send(Msg::Flush(ack)).is_ok()))
            .unwrap_or(false);
        if sent {
            let _ = done.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

fn writer(conn: Connection, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 2000 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if let Err(e) = write_batch(&conn, &batch) {
            tracing::warn!(
                "request inspector: could not write {} entries: {e}",
                batch.len()
            );
        }
        for m in batch {
            if let Msg::Flush(ack) = m {
                let _ = ack.send(());
            }
        }
    }
}

fn write_batch(conn: &Connection, batch: &[Msg]) -> rusqlite::Result<()> {
    let records: Vec<(&Entry, usize)> = batch
        .iter()
        .filter_map(|m| match m {
            Msg::Record(e, cap) => Some((&**e, *cap)),
            Msg::Flush(_) => None,
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO request_log (server_id, at, method, path, status, entry) VALUES (?1,?2,?3,?4,?5,?6)",
        )?;
        for (e, _) in &records {
            let text = serde_json::to_string(e).unwrap_or_default();
            insert.execute(params![e.server, e.at, e.method, e.path, e.status, text])?;
        }
        // Trim each touched server's ring once per batch.
        let mut caps: Vec<(&str, usize)> = Vec::new();
        for (e, cap) in &records {
            match caps.iter_mut().find(|(s, _)| *s == e.server) {
                Some(c) => c.1 = *cap,
                None => caps.push((&e.server, *cap)),
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
