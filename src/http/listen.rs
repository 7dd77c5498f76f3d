//! The accept loop. A client that opens a connection and says nothing, sends half its headers,
//! idles between requests or stops reading its response must not keep a connection (and a file
//! descriptor) for ever, and no number of such clients may stop the server from accepting
//! `/healthz` or anyone else:
//! - hyper's header-read timeout runs from the moment a connection waits for a request (new or
//!   kept alive) until its headers are complete, so it bounds silent, slow and idle clients;
//! - a write that makes no progress for `write_stall` closes the connection;
//! - connections are capped below the process's descriptor limit, and at the cap the longest
//!   idle connection (no request in progress) is closed to make room for the new one.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// What the accept loop knows of one connection.
struct Conn {
    /// Milliseconds since the listener started, at the connection's last I/O progress.
    last_active: AtomicU64,
    /// Since when a write has been waiting for the client to read (0: none waiting).
    write_blocked_since: AtomicU64,
    /// Requests being handled (a connection with none is idle and may be closed).
    in_flight: AtomicUsize,
    close: Notify,
}

struct Registry {
    started: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    closed: Notify,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    fn len(&self) -> usize {
        crate::sync::lock(&self.conns).len()
    }

    /// Closes the longest-idle connection; false if every connection is busy.
    fn evict_idle(&self) -> bool {
        let mut conns = crate::sync::lock(&self.conns);
        let victim = conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        crate::sync::lock(&self.conns).remove(&id);
        self.closed.notify_waiters();
    }
}

/// A socket that reports its progress to the connection's [`Conn`].
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Watched {
    fn touch(&self) {
        self.conn
            .last_active
            .store(self.registry.now_ms(), Ordering::Relaxed);
    }
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
            self.touch();
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
        match r {
            Poll::Pending => {
                let _ = self.conn.write_blocked_since.compare_exchange(
                    0,
                    self.registry.now_ms(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(_) => {
                self.conn.write_blocked_since.store(0, Ordering::Relaxed);
                self.touch();
            }
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
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
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
        let conn = Arc::new(Conn {
            last_active: AtomicU64::new(registry.now_ms()),
            write_blocked_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            close: Notify::new(),
        });
        crate::sync::lock(&registry.conns).insert(id, conn.clone());
        let watched = Watched {
            inner: stream,
            conn: conn.clone(),
            registry: registry.clone(),
        };
        let (app, builder, registry) = (app.clone(), builder.clone(), registry.clone());
        let (write_stall, body_timeout) = (limits.write_stall, limits.body_timeout);
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
            let stalled = stalled_writes(&conn, &registry, write_stall);
            tokio::select! {
                r = served.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                _ = conn.close.notified() => {
                    // Evicted while idle or asked to stop: finish a response in progress.
                    served.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
                }
                _ = stalled => tracing::debug!(%peer, "closing a connection whose client stopped reading"),
            }
            registry.remove(id);
        });
    }
}

/// Resolves when a write on `conn` has waited for the client longer than `limit`.
async fn stalled_writes(conn: &Conn, registry: &Registry, limit: Duration) {
    let limit_ms = limit.as_millis() as u64;
    loop {
        tokio::time::sleep(limit / 4).await;
        let since = conn.write_blocked_since.load(Ordering::Relaxed);
        if since != 0 && registry.now_ms().saturating_sub(since) > limit_ms {
            return;
        }
    }
}

/// Counts a request as in progress on its connection while alive.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: &Arc<Conn>) -> InFlight {
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
        .cloned()
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
