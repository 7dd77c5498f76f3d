//! Push delivery of SCIM events (RFC 8935): a background task posts each pending SET to its
//! receiver (`application/secevent+jwt`), and records every attempt. 202 delivers it; a 400
//! is the receiver refusing it (RFC 8935 §2.4: not retried); anything else — a refused
//! connection, a timeout, a 5xx — is retried after a doubling wait, until the server's
//! `events.retry.max_attempts`. SCIM requests only write the outbox rows: a receiver that is
//! down or slow never slows them down.

use crate::model::ModelHandle;
use crate::store::{Delivery, Store};
use crate::vocab::time::unix_millis;
use std::sync::Arc;
use std::time::Duration;

/// How often the outbox is looked at when nothing is due, and how many pushes run at once.
const IDLE: Duration = Duration::from_millis(200);
const BATCH: usize = 32;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the delivery task; it runs until aborted.
pub fn start(store: Arc<Store>, model: Arc<ModelHandle>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "event delivery disabled: no HTTP client");
                return;
            }
        };
        loop {
            let due = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    store.read(|c| c.due_deliveries(unix_millis(), BATCH))
                })
                .await
            };
            let due = match due {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the event outbox failed");
                    Vec::new()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the event outbox failed");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            let mut pushes = tokio::task::JoinSet::new();
            for d in due {
                let (http, model, store) = (http.clone(), model.clone(), store.clone());
                pushes.spawn(async move {
                    let outcome = push(&http, &model, &d).await;
                    record(&store, &d, outcome).await;
                });
            }
            while pushes.join_next().await.is_some() {}
        }
    })
}

/// What became of one push.
enum Outcome {
    Delivered(u16),
    /// Final: the receiver refused the SET, or it cannot be sent any more.
    Refused(Option<u16>, String),
    /// Worth another attempt, after the retry policy's wait.
    Retry(Option<u16>, String, crate::definition::RetryDef),
}

async fn push(http: &reqwest::Client, model: &ModelHandle, d: &Delivery) -> Outcome {
    let model = model.load_full();
    let server = model.server(&d.server_id);
    let Some(cfg) = server.and_then(|s| s.events.clone()) else {
        return Outcome::Refused(None, "the server no longer emits events".into());
    };
    let key = server.and_then(|s| s.event_key.as_ref());
    let Some(receiver) = cfg.receivers.iter().find(|r| r.url == d.receiver) else {
        return Outcome::Refused(None, "the receiver is no longer configured".into());
    };
    let set = match crate::engine::events::encode(&cfg.signing, key, &d.claims) {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(None, e.detail().to_string()),
    };
    let mut req = http
        .post(&receiver.url)
        .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(set);
    if let Some(t) = &receiver.token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => Outcome::Delivered(202),
        Ok(r) if r.status() == reqwest::StatusCode::BAD_REQUEST => {
            // RFC 8935 §2.4: {"err": …, "description": …}.
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            Outcome::Refused(
                Some(400),
                format!(
                    "{}: {}",
                    body["err"].as_str().unwrap_or("refused"),
                    body["description"].as_str().unwrap_or("")
                ),
            )
        }
        Ok(r) => {
            let status = r.status().as_u16();
            Outcome::Retry(Some(status), format!("HTTP {status}"), cfg.retry.clone())
        }
        Err(e) => Outcome::Retry(None, e.to_string(), cfg.retry.clone()),
    }
}

async fn record(store: &Arc<Store>, d: &Delivery, outcome: Outcome) {
    let attempt = d.attempts as u32 + 1;
    let (state, status, error, next_at) = match outcome {
        Outcome::Delivered(s) => ("delivered", Some(s), None, 0),
        Outcome::Refused(s, e) => ("failed", s, Some(e), 0),
        Outcome::Retry(s, e, retry) if attempt >= retry.max_attempts => (
            "failed",
            s,
            Some(format!("{e} (gave up after {attempt} attempts)")),
            0,
        ),
        Outcome::Retry(s, e, retry) => (
            "pending",
            s,
            Some(e),
            unix_millis() + retry.backoff_ms(attempt) as i64,
        ),
    };
    let (store, id) = (store.clone(), d.id);
    let done = tokio::task::spawn_blocking(move || {
        store.write(|tx| tx.delivery_attempted(id, state, status, error.as_deref(), next_at))
    })
    .await;
    if !matches!(done, Ok(Ok(()))) {
        tracing::warn!(delivery = id, "recording a push attempt failed");
    }
}
