//! The accept loop. A client that opens a connection and says nothing, sends half its headers,
//! idles between requests or stops reading its response must not keep a connection (and a file
//! descriptor) for ever, and no number of such clients may stop the server from accepting
//! `/healthz` or anyone else:
//! - the header timeout runs from the moment a connection waits for a request (new or kept
//!   alive) until its headers are complete, so it bounds silent, slow and idle clients;
//! - a write that makes no progress for `write_stall` closes the connection;
//! - connections are capped below the process's descriptor limit, and at the cap the longest
//!   idle connection (no request in progress) is closed to make room for the new one.
//!
//! One watchdog task enforces the first two for every connection, a few times per timeout.
//! Connections only count their reads, writes and requests (atomics, no clock): hyper's own
//! header timeout armed a timer for every request, and reading the clock on every read and
//! write cost about as much again (together 4% of a bare handler's CPU per request).

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

/// Connection limits of the listener (documented in the README's Limits table).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Most open client connections; further ones wait in the kernel's backlog or replace
    /// the longest-idle connection.
    pub max_connections: usize,
    /// Time a connection may take to deliver a request's headers, counted from when it starts
    /// waiting for one (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time a request body may take to arrive in full.
    pub body_timeout: Duration,
    /// Time a response write may make no progress (a client that stops reading).
    pub write_stall: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Serve HTTPS with this configuration (see `http::tls`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A request extension: the request came over TLS (so its URLs are `https://`).
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Descriptors kept for the database, the definition watcher, logs and the accept itself.
const RESERVED_FDS: u64 = 64;

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_stall: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            tls: None,
        }
    }
}

impl ConnLimits {
    /// Caps `max_connections` below the process's descriptor limit, after raising the soft
    /// limit to the hard one (as Go and nginx do), so `accept` never fails for want of one.
    pub fn fitted_to_descriptors(mut self) -> ConnLimits {
        #[cfg(unix)]
        {
            let soft = rlimit::increase_nofile_limit(u64::MAX)
                .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(s, _)| s))
                .unwrap_or(1024);
            let room = soft.saturating_sub(RESERVED_FDS).max(8);
            if (self.max_connections as u64) > room {
                tracing::info!(
                    "descriptor limit {soft}: serving at most {room} connections at once"
                );
                self.max_connections = room as usize;
            }
        }
        self
    }
}

/// What a connection's I/O and requests report: counts only, read by the watchdog.
#[derive(Default)]
struct Conn {
    /// Reads that delivered bytes.
    reads: AtomicU64,
    /// Writes that took bytes.
    writes: AtomicU64,
    /// The last write found the client's window full (it waits for the client to read).
    write_blocked: AtomicBool,
    /// Requests whose head was complete, so far.
    started: AtomicU64,
    /// Requests being handled (a connection with none is idle and may be closed).
    in_flight: AtomicUsize,
    /// Set before `close` is notified to drop the connection at once (a timeout) rather than
    /// let a response in progress finish (an eviction or shutdown).
    abort: AtomicBool,
    close: Notify,
}

/// The watchdog's view of one connection: the counts it last saw and when they moved.
struct Watch {
    conn: Arc<Conn>,
    reads: u64,
    writes: u64,
    started: u64,
    /// Milliseconds since the listener started at the last pass that saw I/O.
    last_active: u64,
    /// Since when the connection has been waiting for a request head.
    waiting_since: u64,
    /// Since when its writes have waited for the client with none going through.
    blocked_since: Option<u64>,
}

impl Watch {
    /// Takes in what the connection did since the last pass; true if it is past a limit.
    fn overdue(&mut self, now: u64, limits: &ConnLimits) -> bool {
        let c = &self.conn;
        let (reads, writes) = (
            c.reads.load(Ordering::Relaxed),
            c.writes.load(Ordering::Relaxed),
        );
        let started = c.started.load(Ordering::Relaxed);
        let blocked = c.write_blocked.load(Ordering::Relaxed);
        let wrote = writes != self.writes;
        if reads != self.reads || wrote {
            self.last_active = now;
        }
        // A response still going out (or waiting for the client to read) falls under the
        // write stall, and a request under way under nothing; only after them does the wait
        // for the next head start. Trickled header bytes are reads: they do not restart it.
        let busy = c.in_flight.load(Ordering::Acquire) > 0 || started != self.started;
        if busy || wrote || blocked {
            self.waiting_since = now;
        }
        self.blocked_since = match blocked && !wrote {
            true => Some(self.blocked_since.unwrap_or(now)),
            false => None,
        };
        (self.reads, self.writes, self.started) = (reads, writes, started);
        let ms = |d: Duration| d.as_millis() as u64;
        let stalled = (self.blocked_since).is_some_and(|t| now - t > ms(limits.write_stall));
        stalled || now - self.waiting_since > ms(limits.header_timeout)
    }
}

struct Registry {
    started: Instant,
    conns: Mutex<HashMap<u64, Watch>>,
    closed: Notify,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    fn len(&self) -> usize {
        crate::sync::lock(&self.conns).len()
    }

    fn add(&self, id: u64, conn: Arc<Conn>) {
        let now = self.now_ms();
        let watch = Watch {
            conn,
            reads: 0,
            writes: 0,
            started: 0,
            last_active: now,
            waiting_since: now,
            blocked_since: None,
        };
        crate::sync::lock(&self.conns).insert(id, watch);
    }

    /// Closes the longest-idle connection; false if every connection is busy.
    fn evict_idle(&self) -> bool {
        let mut conns = crate::sync::lock(&self.conns);
        let victim = conns
            .iter()
            .filter(|(_, w)| w.conn.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, w)| w.last_active)
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(w) => {
                w.conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// One watchdog pass: drops every connection past its header timeout or write stall.
    fn close_overdue(&self, limits: &ConnLimits) {
        let now = self.now_ms();
        crate::sync::lock(&self.conns).retain(|_, w| {
            if !w.overdue(now, limits) {
                return true;
            }
            w.conn.abort.store(true, Ordering::Release);
            w.conn.close.notify_one();
            false
        });
    }

    fn remove(&self, id: u64) {
        crate::sync::lock(&self.conns).remove(&id);
        self.closed.notify_waiters();
    }
}

/// How often the watchdog looks: a quarter of the shorter limit, so a connection is closed
/// within 25% past it.
fn watch_interval(limits: &ConnLimits) -> Duration {
    (limits.header_timeout.min(limits.write_stall) / 4).max(Duration::from_millis(10))
}

/// A socket that counts its progress in the connection's [`Conn`].
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.reads.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.progress(&r);
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(&r);
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Watched {
    fn progress(&self, r: &Poll<std::io::Result<usize>>) {
        let blocked = r.is_pending();
        if self.conn.write_blocked.load(Ordering::Relaxed) != blocked {
            self.conn.write_blocked.store(blocked, Ordering::Relaxed);
        }
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.conn.writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in progress
/// finish (for up to 10 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry {
        started: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        closed: Notify::new(),
    });
    tokio::spawn(watchdog(Arc::downgrade(&registry), limits.clone()));
    // No timer: the watchdog keeps the header timeout (hyper's would arm one per request).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        // At the cap, make room by closing the longest-idle connection, else wait for one
        // to close (new clients wait in the backlog meanwhile).
        while registry.len() >= limits.max_connections && !registry.evict_idle() {
            tokio::select! {
                _ = registry.closed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = &mut shutdown => return drain(&registry).await,
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (another part of the process, or a lower limit than
                    // planned for): free one and retry shortly rather than spin.
                    tracing::warn!("accept failed: {e}");
                    registry.evict_idle();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return drain(&registry).await,
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn::default());
        registry.add(id, conn.clone());
        let watched = Watched {
            inner: stream,
            conn: conn.clone(),
        };
        let (app, builder, registry) = (app.clone(), builder.clone(), registry.clone());
        let body_timeout = limits.body_timeout;
        let (tls, handshake_timeout) = (limits.tls.clone(), limits.header_timeout);
        tokio::spawn(async move {
            let (io, https): (Box<dyn Io>, Option<Https>) = match tls {
                None => (Box::new(watched), None),
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(watched)).await {
                        Ok(Ok(stream)) => (Box::new(stream), Some(Https)),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            registry.remove(id);
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            registry.remove(id);
                            return;
                        }
                    }
                }
            };
            let io = TokioIo::new(io);
            let counted = conn.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(h) = https {
                        req.extensions_mut().insert(h);
                    }
                    let busy = InFlight::start(&counted);
                    let app = app.clone();
                    async move {
                        // Only a body still to arrive needs a deadline (and its timer).
                        let req = req.map(|b| {
                            if http_body::Body::is_end_stream(&b) {
                                axum::body::Body::new(b)
                            } else {
                                axum::body::Body::new(Deadline::new(b, body_timeout))
                            }
                        });
                        let resp = app.oneshot(req).await;
                        drop(busy);
                        resp
                    }
                },
            );
            let served = builder.serve_connection(io, service);
            let mut served = std::pin::pin!(served);
            tokio::select! {
                r = served.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                _ = conn.close.notified() => {
                    if conn.abort.load(Ordering::Acquire) {
                        tracing::debug!(%peer, "closing a connection that sent no request head in time or stopped reading");
                    } else {
                        // Evicted while idle or asked to stop: finish a response in progress.
                        served.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
                    }
                }
            }
            registry.remove(id);
        });
    }
}

/// Closes overdue connections until the listener and its connections are gone.
async fn watchdog(registry: std::sync::Weak<Registry>, limits: ConnLimits) {
    let mut ticks = tokio::time::interval(watch_interval(&limits));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.close_overdue(&limits);
    }
}

/// Counts a request as in progress on its connection while alive.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: &Arc<Conn>) -> InFlight {
        conn.started.fetch_add(1, Ordering::Relaxed);
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Asks every connection to finish and waits (at most 10 s) until they have.
async fn drain(registry: &Registry) -> std::io::Result<()> {
    let conns: Vec<Arc<Conn>> = crate::sync::lock(&registry.conns)
        .values()
        .map(|w| w.conn.clone())
        .collect();
    for c in &conns {
        c.close.notify_one();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.len() > 0 && Instant::now() < deadline {
        tokio::select! {
            _ = registry.closed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    Ok(())
}

/// The error a request body gives when it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Whether reading a body failed because it took too long (rather than being too large).
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A request body that fails once `limit` has passed since the request arrived: a client
/// trickling a body byte by byte cannot hold a request (and a connection) open.
struct Deadline<B> {
    inner: B,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Deadline<B> {
    fn new(inner: B, limit: Duration) -> Self {
        Deadline {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const BIG: usize = 32 << 20;

    /// A listener with `limits` serving `/big` (32 MB), `/slow` (answers after 1.5 s) and `/`.
    async fn start(limits: ConnLimits) -> std::net::SocketAddr {
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route("/big", axum::routing::get(|| async { vec![b'x'; BIG] }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "late"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app, limits, std::future::pending()));
        addr
    }

    fn limits(header_ms: u64, stall_ms: u64) -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_millis(header_ms),
            write_stall: Duration::from_millis(stall_ms),
            ..ConnLimits::default()
        }
    }

    /// A connection to `addr` that has sent `head`.
    async fn sent(addr: std::net::SocketAddr, head: &[u8]) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head).await.unwrap();
        s
    }

    /// Reads until the server closes the connection (or 10 s pass): the bytes and the time.
    async fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
        let started = Instant::now();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = Vec::new();
        let reading = async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .expect("the server kept the connection open");
        (got, started.elapsed())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_client_that_stops_reading_is_dropped_after_the_write_stall() {
        // Header timeout far away: only the stall can close it.
        let addr = start(limits(60_000, 500)).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let (got, _) = read_until_closed(&mut s).await;
        assert!(
            got.len() < BIG,
            "the whole response went out to a client that stopped reading"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
        let addr = start(limits(400, 60_000)).await;
        let mut s = sent(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (got, took) = read_until_closed(&mut s).await;
        assert!(!got.is_empty(), "no answer");
        assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn trickled_header_bytes_do_not_hold_a_connection() {
        let addr = start(limits(400, 60_000)).await;
        let started = Instant::now();
        let mut s = sent(addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        // A byte every 100 ms, for longer than the timeout and far beyond it.
        let mut closed = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b"X").await.is_err() {
                closed = true;
                break;
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "a trickling client kept its connection for 4 s");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2000), "closed after {took:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_request_that_takes_longer_than_the_header_timeout_is_answered() {
        let addr = start(limits(300, 300)).await;
        let head = b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (answer, _) = read_until_closed(&mut sent(addr, head).await).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("late"),
            "{text}"
        );
    }
}
