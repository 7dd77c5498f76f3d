//! The HTTP client of the tools that talk to other SCIM servers (`probe`, `replay`): reqwest
//! over rustls, with authentication, timeouts, proxy, CA bundle, a retry of 429 answers that
//! honours `Retry-After`, and a record of what each response's content type was. Credentials
//! never appear in anything it returns.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How the probe authenticates.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub bearer: Option<String>,
    /// `NAME:VALUE` headers (Okta's "HTTP header" authentication).
    pub headers: Vec<(String, String)>,
    pub basic: Option<(String, String)>,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct Transport {
    pub timeout: Duration,
    pub proxy: Option<String>,
    /// PEM file of extra trusted CA certificates.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any certificate (test servers with self-signed certificates).
    pub insecure: bool,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            timeout: Duration::from_secs(15),
            proxy: None,
            ca_bundle: None,
            insecure: false,
        }
    }
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `METHOD /path?query` below the base URL.
    pub request: String,
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `json[key]`, or Null.
    pub fn at(&self, key: &str) -> &Value {
        self.json
            .as_ref()
            .and_then(|j| j.get(key))
            .unwrap_or(&Value::Null)
    }
    /// A short description for a report: status and the start of the body.
    pub fn brief(&self) -> String {
        let body: String = self.text.chars().take(300).collect();
        if body.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{} {body}", self.status)
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: HeaderMap,
    basic: Option<(String, String)>,
    /// Secret strings to scrub from anything reported.
    secrets: Vec<String>,
    /// Requests whose answer had a body that was not application/scim+json.
    pub wrong_content_types: Mutex<Vec<String>>,
    /// How many times a 429 is waited out and retried.
    retries_429: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Setup(String),
    #[error("{request}: {cause}")]
    Transport { request: String, cause: String },
}

impl Client {
    pub fn new(base: &str, auth: &Auth, t: &Transport) -> Result<Client, ClientError> {
        // One crypto provider for rustls (ring); a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .timeout(t.timeout)
            .connect_timeout(t.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(p) = &t.proxy {
            b = b.proxy(
                reqwest::Proxy::all(p)
                    .map_err(|e| ClientError::Setup(format!("--proxy {p}: {e}")))?,
            );
        } else {
            b = b.no_proxy();
        }
        if let Some(path) = &t.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| ClientError::Setup(format!("--ca-bundle {}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Setup(format!("--ca-bundle {}: {e}", path.display())))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if t.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Setup(format!("HTTP client: {e}")))?;
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        let bad = |what: &str| ClientError::Setup(format!("{what} is not a valid header value"));
        if let Some(t) = &auth.bearer {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| bad("--token"))?,
            );
            secrets.push(t.clone());
        }
        if let Some((_, p)) = &auth.basic {
            secrets.push(p.clone());
        }
        for (name, value) in &auth.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("--header name"))?;
            headers.insert(
                n,
                HeaderValue::from_str(value).map_err(|_| bad("--header"))?,
            );
            secrets.push(value.clone());
        }
        secrets.retain(|s| s.len() >= 4);
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth: headers,
            basic: auth.basic.clone(),
            secrets,
            wrong_content_types: Mutex::new(Vec::new()),
            retries_429: 3,
        })
    }

    /// A client that returns a 429 as it is (a replay compares statuses).
    pub fn without_retries(mut self) -> Client {
        self.retries_429 = 0;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Replaces every credential in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "[redacted]");
        }
        out
    }

    /// Sends a request with the probe's credentials.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        self.request(method, path, body, &[], true).await
    }

    /// Sends a request; `extra` headers are added (or replace the defaults); `authenticated`
    /// false sends no credentials.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
        authenticated: bool,
    ) -> Result<Answer, ClientError> {
        let raw = body.map(|b| b.to_string().into_bytes());
        self.request_raw(method, path, raw, extra, authenticated)
            .await
    }

    /// Like [`Client::request`] with a body of raw bytes (for malformed JSON).
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        extra: &[(&str, &str)],
        authenticated: bool,
    ) -> Result<Answer, ClientError> {
        let label = format!("{method} {path}");
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Setup(format!("method {method}: {e}")))?;
        // 429: wait as Retry-After says (capped), up to three times.
        let mut attempts = 0;
        loop {
            let mut req = self.http.request(m.clone(), &url);
            if authenticated {
                req = req.headers(self.auth.clone());
                if let Some((u, p)) = &self.basic {
                    req = req.basic_auth(u, Some(p));
                }
            }
            req = req.header("accept", "application/scim+json");
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/scim+json")
                    .body(b.clone());
            }
            // Extra headers replace the defaults (a second Content-Type would be ambiguous).
            let mut replace = HeaderMap::new();
            for (k, v) in extra {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    replace.insert(k, v);
                }
            }
            req = req.headers(replace);
            let resp = req.send().await.map_err(|e| ClientError::Transport {
                request: label.clone(),
                cause: self.scrub(&e.to_string()),
            })?;
            let status = resp.status().as_u16();
            if status == 429 && attempts < self.retries_429 {
                attempts += 1;
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(30);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|e| ClientError::Transport {
                request: label.clone(),
                cause: self.scrub(&e.to_string()),
            })?;
            let json = serde_json::from_str::<Value>(&text).ok();
            if !text.trim().is_empty() {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !ct.to_ascii_lowercase().starts_with("application/scim+json")
                    && let Ok(mut w) = self.wrong_content_types.lock()
                {
                    w.push(format!("{label} answered {ct:?}"));
                }
            }
            return Ok(Answer {
                request: label,
                status,
                headers,
                json,
                text: self.scrub(&text),
            });
        }
    }
}
