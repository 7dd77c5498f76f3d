//! The benchmark's load driver: one HTTP/1.1 keep-alive connection through hyper's client
//! (hyper's connection API, without a pool: each driver task owns its connection, which is
//! what the benchmark measures).

use anyhow::Context;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("load driver connection ended: {e}");
            }
        });
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole response; returns the status and body.
    pub async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One request with a bearer token and, when `body` is not empty, a SCIM JSON body.
pub fn request(method: &str, path: &str, token: &str, body: &str) -> hyper::Request<Full<Bytes>> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bench")
        .header("authorization", format!("Bearer {token}"));
    if !body.is_empty() {
        b = b.header("content-type", "application/scim+json");
    }
    b.body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .unwrap_or_else(|e| panic!("a benchmark request is well formed: {e}"))
}
