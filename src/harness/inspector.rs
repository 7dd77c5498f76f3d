//! The request inspector: every request to a virtual server is recorded with its response
//! (headers with Authorization redacted, capped bodies, status, latency, IdP quirks applied,
//! SCIM events raised, SCIM error, injected fault) in SQLite, as a bounded ring per server.
//!
//! Handlers only push the record into the server's in-memory ring; a persister writes what is
//! still in the rings to SQLite in one transaction (every half second, and before any read), so
//! recording costs a request little more than building the record, and under load only the
//! entries that survive in the ring are ever written.

use crate::store::{Conn, StoreError, request_log};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
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
    /// Lifecycle policies (not RFC behaviour) that changed its answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// `jti`s of the SCIM events (RFC 9967) it raised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// `scimType` and `detail` of a SCIM error response.
    pub error: Option<Value>,
    /// The fault injected, if any.
    pub fault: Option<String>,
}

/// One exchange as the request path hands it over, turned into an [`Entry`] only when it is
/// written: under load most leave the ring before that, and nothing more is spent on them.
/// What came from the request is copied (its header values, target and body are slices of the
/// connection's read buffer, which a kept slice would pin); the response body is shared.
pub struct Exchange {
    pub server: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub method: axum::http::Method,
    /// Path and query, as requested.
    pub target: String,
    pub status: u16,
    pub latency_ms: f64,
    pub request_headers: Headers,
    /// At most `body_limit + 1` bytes (one more tells that it was cut).
    pub request_body: bytes::Bytes,
    pub response_headers: Headers,
    pub response_body: bytes::Bytes,
    pub notes: crate::vocab::notes::Notes,
    pub fault: Option<String>,
    /// Headers the server authenticates by, redacted like `Authorization`.
    pub secret_headers: Arc<[String]>,
    /// Bodies are kept up to this many bytes.
    pub body_limit: usize,
}

impl Exchange {
    /// Bytes of body it holds (what makes a ring large: headers are a few hundred bytes).
    fn held(&self) -> usize {
        self.request_body.len() + self.response_body.len()
    }

    /// A body as kept: the first `limit + 1` bytes, copied when `owned` is false.
    pub fn body(bytes: &bytes::Bytes, limit: usize, owned: bool) -> bytes::Bytes {
        let keep = bytes.len().min(limit.saturating_add(1));
        if owned && keep == bytes.len() {
            bytes.clone()
        } else {
            bytes::Bytes::copy_from_slice(&bytes[..keep])
        }
    }

    fn entry(self, seq: i64) -> Entry {
        let error = if self.status >= 400 {
            serde_json::from_slice::<Value>(&self.response_body)
                .ok()
                .map(|b| json!({"scimType": b.get("scimType"), "detail": b.get("detail")}))
        } else {
            None
        };
        let (request_body, request_body_truncated) = capped(&self.request_body, self.body_limit);
        let (response_body, response_body_truncated) = capped(&self.response_body, self.body_limit);
        let base = format!("/scim-identifier/{}/scim/v2", self.server);
        let (path, query) = match self.target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (self.target.as_str(), None),
        };
        let path = path.strip_prefix(&base).unwrap_or_default();
        Entry {
            seq,
            at: crate::vocab::time::stored(self.at),
            method: self.method.to_string(),
            path: if path == "/" { "" } else { path }.to_string(),
            query,
            status: self.status,
            latency_ms: self.latency_ms,
            request_headers: self.request_headers.redacted(&self.secret_headers),
            request_body,
            request_body_truncated,
            response_headers: self.response_headers.redacted(&self.secret_headers),
            response_body,
            response_body_truncated,
            quirks: self.notes.quirks.iter().map(|q| q.to_string()).collect(),
            events: self.notes.events,
            policies: self.notes.policies.iter().map(|p| p.to_string()).collect(),
            error,
            fault: self.fault,
            server: self.server,
        }
    }
}

/// Header names and values copied out of a map into one buffer (two allocations, whatever
/// the number of headers).
pub struct Headers {
    names: Vec<(axum::http::HeaderName, u32)>,
    values: Vec<u8>,
}

impl Headers {
    pub fn copy(map: &axum::http::HeaderMap) -> Headers {
        let mut names = Vec::with_capacity(map.len());
        let mut values = Vec::with_capacity(map.iter().map(|(_, v)| v.len()).sum());
        for (k, v) in map {
            values.extend_from_slice(v.as_bytes());
            names.push((k.clone(), values.len() as u32));
        }
        Headers { names, values }
    }

    fn iter(&self) -> impl Iterator<Item = (&axum::http::HeaderName, &[u8])> {
        let starts = std::iter::once(0).chain(self.names.iter().map(|(_, end)| *end));
        (self.names.iter().zip(starts))
            .map(|((k, end), start)| (k, &self.values[start as usize..*end as usize]))
    }

    /// The pairs as text, with credentials redacted: `Authorization`, cookies, `X-API-Key`,
    /// and the headers a server's definition authenticates by (`secret_headers`).
    fn redacted(&self, secret_headers: &[String]) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.as_str().to_string(), redact(k, v, secret_headers)))
            .collect()
    }
}

/// A body as text, capped at `limit` bytes (on a character boundary).
fn capped(bytes: &[u8], limit: usize) -> (Option<String>, bool) {
    if bytes.is_empty() {
        return (None, false);
    }
    if bytes.len() <= limit {
        return (Some(text_of(bytes)), false);
    }
    // Cut the bytes before converting (a page of resources may be far larger than the
    // limit), backing off to the start of a UTF-8 sequence.
    let mut end = limit;
    while end > 0 && end > limit.saturating_sub(3) && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    (Some(text_of(&bytes[..end])), true)
}

/// `bytes` as text, invalid UTF-8 replaced. Checked first, as it nearly always is valid: the
/// replacing decoder took about 4 instructions per byte, the check a fraction of one.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A header's value as recorded: credentials keep at most their scheme's name.
fn redact(k: &axum::http::HeaderName, v: &[u8], secret_headers: &[String]) -> String {
    let secret = k == axum::http::header::AUTHORIZATION
        || k == axum::http::header::COOKIE
        || k.as_str() == "x-api-key"
        || (secret_headers.iter()).any(|h| h.eq_ignore_ascii_case(k.as_str()));
    if !secret {
        return String::from_utf8_lossy(v).into_owned();
    }
    // Only a registered scheme name is kept (it tells how the client authenticated); anything
    // else may be the secret itself.
    let scheme = std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().split_once(' ').map(|(a, _)| a))
        .filter(|a| {
            ["Bearer", "Basic", "Digest", "Negotiate", "DPoP"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(a))
        });
    match scheme {
        Some(s) if k == axum::http::header::AUTHORIZATION => format!("{s} [redacted]"),
        _ => "[redacted]".into(),
    }
}

/// How often recorded entries are written to the database when few arrive…
const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// …and when more than `BUSY_ENTRIES` arrived since the last write.
const PERSIST_BUSY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const BUSY_ENTRIES: i64 = 500;
/// Bytes of body the rings may hold before they are written out, busy or not. A busy ring
/// keeps up to `capacity` exchanges for seconds, and a page of 100 keeps `body_limit` (16 KB)
/// of its body: 1,000 of them held 25 MB, half of the server's peak RSS under such a load.
const RING_BYTES: usize = 4 << 20;
/// How often entries are written where replicas share the log.
const PERSIST_SHARED: std::time::Duration = std::time::Duration::from_millis(100);

/// A server's entries not written to SQLite yet: the newest `capacity` (older ones would be
/// trimmed from the table as soon as written).
struct Ring {
    /// With their sequence numbers.
    entries: VecDeque<(i64, Exchange)>,
    capacity: usize,
}

impl Ring {
    /// Takes the oldest entry out, counting its bytes off `held`.
    fn pop_oldest(&mut self, held: &AtomicUsize) -> Option<(i64, Exchange)> {
        let oldest = self.entries.pop_front()?;
        held.fetch_sub(oldest.1.held(), Ordering::Relaxed);
        Some(oldest)
    }
}

struct Inner {
    rings: Mutex<HashMap<String, Ring>>,
    /// The last sequence number given.
    last_seq: AtomicI64,
    /// Entries recorded so far (how busy the recorder is).
    recorded: AtomicI64,
    /// Bytes of body in the rings, and how many make the persister write them out at once.
    held: AtomicUsize,
    held_limit: usize,
    /// The persister's thread, woken when the rings hold more than `held_limit`.
    persister: std::sync::OnceLock<std::thread::Thread>,
    /// Where replicas share the log: this one's number (see `LogWriter::replica_number`).
    replica: Option<i64>,
    /// Held for a whole persist (collect, then write): a reader's flush waits for a write
    /// already under way instead of finding nothing left to write and reading too early.
    persisting: Mutex<()>,
    /// The persister's own connection (not the store's writer: SCIM writes never wait on it).
    log: request_log::LogWriter,
}

/// The recording side: a push into a per-server in-memory ring. The persister writes whatever
/// is still in the rings every half second and whenever a reader asks (`flush`), so under load
/// only the entries that stay in the ring ever reach SQLite.
pub struct Recorder {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Opens the persister's connection to the store's database and starts its thread.
    pub fn start(store: &crate::store::Store) -> Result<Recorder, StoreError> {
        Recorder::holding_at_most(store, RING_BYTES)
    }

    /// As [`Recorder::start`], with the rings written out once they hold `held_limit` bytes
    /// of body.
    fn holding_at_most(
        store: &crate::store::Store,
        held_limit: usize,
    ) -> Result<Recorder, StoreError> {
        let (log, last) = store.log_writer()?;
        let replica = log.replica_number();
        let inner = Arc::new(Inner {
            rings: Mutex::new(HashMap::new()),
            last_seq: AtomicI64::new(last),
            recorded: AtomicI64::new(0),
            held: AtomicUsize::new(0),
            held_limit,
            persister: std::sync::OnceLock::new(),
            replica,
            persisting: Mutex::new(()),
            log,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (inner2, stop2) = (inner.clone(), stop.clone());
        let started = std::time::Instant::now();
        let persister = std::thread::Builder::new()
            .name("scimlab-recorder".into())
            .spawn(move || {
                // From the start, not from when this thread first runs: what was recorded
                // before then counts towards a busy start.
                let mut last = (started, 0);
                // Replicas share the log: another replica's reader cannot flush this one's
                // ring, so entries reach the database within PERSIST_SHARED, busy or not.
                let every = if inner2.replica.is_some() {
                    PERSIST_SHARED
                } else {
                    PERSIST_EVERY
                };
                while !stop2.load(Ordering::Relaxed) {
                    // Woken early by `record` when the rings hold too much.
                    std::thread::park_timeout(every);
                    let full = inner2.held.load(Ordering::Relaxed) > inner2.held_limit;
                    // Under load most entries leave the ring before anyone reads them: writing
                    // each (and trimming it again) cost more than recording it (a page of 100
                    // has a 16 KB body kept). So a busy recorder persists less often; readers
                    // still see everything, as they flush first.
                    let seq = inner2.recorded.load(Ordering::Relaxed);
                    let busy = inner2.replica.is_none() && seq - last.1 > BUSY_ENTRIES;
                    if full || !busy || last.0.elapsed() >= PERSIST_BUSY_EVERY {
                        persist(&inner2);
                        last = (std::time::Instant::now(), seq);
                    }
                }
            })
            .map_err(|e| StoreError::Migration(format!("starting the recorder thread: {e}")))?;
        let _ = inner.persister.set(persister.thread().clone());
        Ok(Recorder { inner, stop })
    }

    /// Records one exchange; `capacity` is the server's ring size.
    pub fn record(&self, exchange: Exchange, capacity: usize) {
        let seq = self.inner.next_seq();
        self.inner.recorded.fetch_add(1, Ordering::Relaxed);
        let mut rings = crate::sync::lock(&self.inner.rings);
        // Looked up by `&str` first: the server's name is copied once, for a new ring.
        if !rings.contains_key(&exchange.server) {
            let ring = Ring {
                entries: VecDeque::new(),
                capacity,
            };
            rings.insert(exchange.server.clone(), ring);
        }
        let ring = rings.get_mut(&exchange.server).expect("inserted above");
        ring.capacity = capacity;
        let held = &self.inner.held;
        let now_held = held.fetch_add(exchange.held(), Ordering::Relaxed) + exchange.held();
        ring.entries.push_back((seq, exchange));
        // The oldest leaves the ring and is dropped after the lock is released (more leave at
        // once only after the capacity was lowered).
        let oldest = (ring.entries.len() > capacity).then(|| ring.pop_oldest(held));
        while ring.entries.len() > capacity {
            ring.pop_oldest(held);
        }
        drop(rings);
        drop(oldest);
        if now_held > self.inner.held_limit
            && let Some(persister) = self.inner.persister.get()
        {
            persister.unpark();
        }
    }

    /// Writes everything recorded so far (readers call this first). Blocking.
    pub fn flush(&self) {
        persist(&self.inner);
    }

    /// Drops a server's unwritten entries (its log is being cleared).
    pub fn forget(&self, server: &str) {
        let ring = crate::sync::lock(&self.inner.rings).remove(server);
        let held: usize = ring
            .iter()
            .flat_map(|r| &r.entries)
            .map(|(_, e)| e.held())
            .sum();
        self.inner.held.fetch_sub(held, Ordering::Relaxed);
    }
}

impl Inner {
    /// The next entry's sequence number: counted, or (replicas) the clock in 64 µs ticks
    /// since 2026 with the replica number in the low 8 bits, never below the last one given.
    /// It stays below 2^53 for 70 years: the UI's JavaScript reads it as a number.
    fn next_seq(&self) -> i64 {
        const EPOCH_2026_MICROS: i64 = 1_767_225_600_000_000;
        let Some(replica) = self.replica else {
            return self.last_seq.fetch_add(1, Ordering::Relaxed) + 1;
        };
        let ticks = (chrono::Utc::now().timestamp_micros() - EPOCH_2026_MICROS) / 64;
        let now = ticks << 8 | replica;
        let mut last = self.last_seq.load(Ordering::Relaxed);
        loop {
            let next = if now > last { now } else { last + 256 };
            match self.last_seq.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
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
    let _one_at_a_time = crate::sync::lock(&inner.persisting);
    let mut taken: Vec<(i64, Exchange, usize)> = Vec::new();
    {
        let mut rings = crate::sync::lock(&inner.rings);
        // Taken, not copied: once written they are read back from SQLite.
        for ring in rings.values_mut() {
            let capacity = ring.capacity;
            while let Some((seq, e)) = ring.pop_oldest(&inner.held) {
                taken.push((seq, e, capacity));
            }
        }
    }
    if taken.is_empty() {
        return;
    }
    // The bodies are stored beside the entry's JSON, not escaped into it.
    let batch: Vec<(Entry, [Option<String>; 2], usize)> = (taken.into_iter())
        .map(|(seq, e, capacity)| {
            let mut e = e.entry(seq);
            let bodies = [e.request_body.take(), e.response_body.take()];
            (e, bodies, capacity)
        })
        .collect();
    let rows: Vec<request_log::LogRow<'_>> = batch
        .iter()
        .map(
            |(e, [request_body, response_body], capacity)| request_log::LogRow {
                seq: e.seq,
                server: &e.server,
                at: &e.at,
                method: &e.method,
                path: &e.path,
                status: e.status,
                entry: serde_json::to_string(e).unwrap_or_default(),
                request_body: request_body.as_deref(),
                response_body: response_body.as_deref(),
                capacity: *capacity,
            },
        )
        .collect();
    if let Err(e) = inner.log.write(&rows) {
        tracing::warn!(
            "request inspector: could not write {} entries: {e}",
            batch.len()
        );
    }
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
pub fn read(c: &dyn Conn, server: &str, q: &Query) -> Result<Vec<Entry>, StoreError> {
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    // `404`, or a class such as `4xx`.
    let filter = request_log::LogFilter {
        status_class: status
            .and_then(|s| s.strip_suffix("xx"))
            .and_then(|d| d.parse().ok()),
        status: status.and_then(|s| s.parse().ok()),
        method: q.method.as_deref().filter(|s| !s.is_empty()),
        path: q.path.as_deref().filter(|s| !s.is_empty()),
        after: q.after,
        limit: q.limit.unwrap_or(100).min(10_000),
    };
    Ok(c.log_entries(server, &filter)?
        .into_iter()
        .filter_map(entry)
        .collect())
}

/// An entry as read back, with its bodies put back in (rows written before they were kept
/// apart hold them in the JSON).
fn entry(text: request_log::LogText) -> Option<Entry> {
    let mut e = serde_json::from_str::<Entry>(&text.entry).ok()?;
    e.seq = text.seq;
    e.request_body = text.request_body.or(e.request_body);
    e.response_body = text.response_body.or(e.response_body);
    Some(e)
}

/// One entry of a server by sequence number.
pub fn read_one(c: &dyn Conn, server: &str, seq: i64) -> Result<Option<Entry>, StoreError> {
    Ok(c.log_entry(server, seq)?.and_then(entry))
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
            if !e.events.is_empty() {
                comment.push(format!("events (jti): {}", e.events.join(", ")));
            }
            if !e.policies.is_empty() {
                comment.push(format!("policies: {}", e.policies.join(", ")));
            }
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
pub fn clear(c: &dyn Conn, server: &str) -> Result<usize, StoreError> {
    c.clear_log(server)
}

#[cfg(test)]
mod tests {
    use super::capped;

    #[test]
    fn bodies_are_cut_at_the_limit_on_a_character_boundary() {
        assert_eq!(capped(b"", 4), (None, false));
        assert_eq!(capped("ab".as_bytes(), 2), (Some("ab".into()), false));
        // "é" is two bytes: a cut inside it keeps the text before it.
        assert_eq!(capped("aéb".as_bytes(), 2), (Some("a".into()), true));
        assert_eq!(capped("aéb".as_bytes(), 3), (Some("aé".into()), true));
        assert_eq!(capped("aéb".as_bytes(), 0), (Some(String::new()), true));
        let page = "x".repeat(100_000);
        assert_eq!(capped(page.as_bytes(), 16), (Some("x".repeat(16)), true));
        // Not UTF-8: replaced, not dropped.
        assert_eq!(capped(b"a\xffb", 8), (Some("a\u{fffd}b".into()), false));
    }

    /// A busy recorder writes its rings out every few seconds, unless they hold more body
    /// than their budget: then at once, and the memory they held is counted free again.
    #[test]
    fn rings_holding_more_than_their_budget_are_written_at_once() {
        use crate::store::Store;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("log.db")).unwrap();
        let recorder = super::Recorder::holding_at_most(&store, 64 << 10).unwrap();
        let exchange = |i: usize| super::Exchange {
            server: "s".into(),
            at: chrono::Utc::now(),
            method: axum::http::Method::GET,
            target: format!("/scim-identifier/s/scim/v2/Users?startIndex={i}"),
            status: 200,
            latency_ms: 1.0,
            request_headers: super::Headers::copy(&axum::http::HeaderMap::new()),
            request_body: bytes::Bytes::new(),
            response_headers: super::Headers::copy(&axum::http::HeaderMap::new()),
            response_body: bytes::Bytes::from(vec![b'x'; 4096]),
            notes: Default::default(),
            fault: None,
            secret_headers: std::sync::Arc::from(Vec::<String>::new()),
            body_limit: 16 << 10,
        };
        // More than a busy recorder's count, each with a body: 2.4 MB against 64 KB.
        for i in 0..600 {
            recorder.record(exchange(i), 1000);
        }
        let written = || {
            let q = super::Query {
                limit: Some(1000),
                ..Default::default()
            };
            store.read(|c| super::read(c, "s", &q)).unwrap().len()
        };
        let started = std::time::Instant::now();
        // Well before the busy interval (5 s) ends.
        while written() < 600 && started.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(written(), 600);
        assert_eq!(recorder.inner.held.load(Ordering::Relaxed), 0);
        // Entries that leave a ring by its capacity, or with it, are counted off too (whether
        // or not the persister wrote some of them meanwhile).
        for i in 0..10 {
            recorder.record(exchange(i), 4);
        }
        recorder.forget("s");
        assert_eq!(recorder.inner.held.load(Ordering::Relaxed), 0);
    }

    /// Bodies are stored beside the entry's JSON and put back when it is read; a row written
    /// before that (bodies inside the JSON, none beside it) reads back the same.
    #[test]
    fn bodies_read_back_from_their_columns_and_from_older_rows() {
        use crate::store::{Store, request_log};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let store = Store::open(&path).unwrap();
        let (log, _) = request_log::LogWriter::open(&path).unwrap();
        fn stored<'a>(seq: i64, body: Option<&'a str>, entry: String) -> request_log::LogRow<'a> {
            request_log::LogRow {
                seq,
                server: "s",
                at: "2026-12-01T00:00:00Z",
                method: "GET",
                path: "/Users",
                status: 200,
                entry,
                request_body: None,
                response_body: body,
                capacity: 10,
            }
        }
        let json = |body: Option<&str>| {
            serde_json::json!({
                "server": "s", "at": "2026-12-01T00:00:00Z", "method": "GET", "path": "/Users",
                "query": null, "status": 200, "latency_ms": 1.0, "request_headers": [],
                "request_body": null, "request_body_truncated": false, "response_headers": [],
                "response_body": body, "response_body_truncated": false, "quirks": [],
                "error": null, "fault": null,
            })
            .to_string()
        };
        let page = r#"{"Resources":[{"id":"a\"b"}]}"#;
        log.write(&[
            stored(1, Some(page), json(None)),
            stored(2, None, json(Some(page))),
        ])
        .unwrap();
        for seq in [1, 2] {
            let e = store.read(|c| super::read_one(c, "s", seq)).unwrap();
            let e = e.unwrap();
            assert_eq!((e.seq, e.response_body.as_deref()), (seq, Some(page)));
        }
        let all = (store.read(|c| super::read(c, "s", &super::Query::default()))).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|e| e.response_body.as_deref() == Some(page)));
    }
}
