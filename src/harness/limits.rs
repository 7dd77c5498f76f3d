//! Rate limits: a token bucket per server and operation class (read, write) and per resource
//! type. A bucket holds up to N tokens and refills at N per period, so `600/min` allows a burst
//! of 600 and 10 per second after that. Over the limit: 429 with `Retry-After`.
//!
//! Why not `governor`: its GCRA limiter reports a wait time (enough for `Retry-After`), but
//! it tells the remaining capacity only as part of a decision that spends a cell, so the UI's
//! and admin API's "tokens left" view would itself use up tokens; and a request that two
//! limits apply to (its class and its resource type) must take from both or from neither,
//! which governor's one-limiter-at-a-time `check` cannot undo. The bucket below is the few
//! lines of arithmetic that keep both.

use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::model::limits::{Limits, Rate};

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let cap = self.rate.capacity();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate.per_sec()).min(cap);
        self.last = now;
    }
}

/// Every bucket of every server. One lock: taking a token is a few arithmetic operations.
/// Where replicas share a database the buckets live there instead (`shared`), so that a limit
/// holds for the endpoint a client sees, whichever replica answers.
#[derive(Default)]
pub struct Buckets {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    shared: Option<Arc<Store>>,
}

/// A refused request: how long until a token is back.
#[derive(Debug)]
pub struct Limited {
    pub retry_after: Duration,
    /// `read`, `write` or the resource type name.
    pub class: String,
    pub rate: Rate,
}

impl Buckets {
    /// Buckets for a server on `store`: in the database where replicas share it, else here.
    pub fn for_store(store: &Arc<Store>) -> Buckets {
        Buckets {
            buckets: Mutex::default(),
            shared: store.is_shared().then(|| store.clone()),
        }
    }

    /// Takes one token from each bucket that applies, or none if any of them is empty.
    pub fn take(
        &self,
        server: &str,
        limits: &Limits,
        write: bool,
        resource_type: Option<&str>,
    ) -> Result<(), Limited> {
        let mut applicable: Vec<(String, Rate)> = Vec::new();
        let class = if write { "write" } else { "read" };
        if let Some(r) = if write { limits.write } else { limits.read } {
            applicable.push((class.into(), r));
        }
        if let Some(rt) = resource_type
            && let Some((name, r)) = limits
                .per_type
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(rt))
        {
            applicable.push((format!("type:{name}"), *r));
        }
        if applicable.is_empty() {
            return Ok(());
        }
        if let Some(pg) = self.shared.as_ref().and_then(|s| s.shared()) {
            let wanted: Vec<(String, f64, f64)> = (applicable.iter())
                .map(|(k, r)| (k.clone(), r.capacity(), r.per_sec()))
                .collect();
            return match pg.take_tokens(server, &wanted) {
                Ok(None) => Ok(()),
                Ok(Some((i, wait))) => Err(Limited {
                    retry_after: Duration::from_secs_f64(wait.max(0.0)),
                    class: applicable[i].0.trim_start_matches("type:").to_string(),
                    rate: applicable[i].1,
                }),
                // The limiter failing is not the client's fault: the request goes on.
                Err(e) => {
                    tracing::warn!("rate limits: {e}");
                    Ok(())
                }
            };
        }
        let now = Instant::now();
        let mut all = crate::sync::lock(&self.buckets);
        let mut refused = None;
        for (key, rate) in &applicable {
            let b = all
                .entry((server.to_string(), key.clone()))
                .or_insert_with(|| Bucket {
                    rate: *rate,
                    tokens: rate.capacity(),
                    last: now,
                });
            if b.rate != *rate {
                // The limit changed (reload or admin API): start full at the new rate.
                *b = Bucket {
                    rate: *rate,
                    tokens: rate.capacity(),
                    last: now,
                };
            }
            b.refill(now);
            if b.tokens < 1.0 && refused.is_none() {
                let wait = (1.0 - b.tokens) / rate.per_sec();
                refused = Some(Limited {
                    retry_after: Duration::from_secs_f64(wait),
                    class: key.trim_start_matches("type:").to_string(),
                    rate: *rate,
                });
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        for (key, _) in &applicable {
            if let Some(b) = all.get_mut(&(server.to_string(), key.clone())) {
                b.tokens -= 1.0;
            }
        }
        Ok(())
    }

    /// Tokens left per bucket of a server, for the UI and the admin API.
    pub fn snapshot(&self, server: &str) -> Vec<(String, f64)> {
        if let Some(pg) = self.shared.as_ref().and_then(|s| s.shared()) {
            return pg.tokens(server).unwrap_or_default();
        }
        let now = Instant::now();
        let mut all = crate::sync::lock(&self.buckets);
        let mut out: Vec<(String, f64)> = all
            .iter_mut()
            .filter(|((s, _), _)| s == server)
            .map(|((_, k), b)| {
                b.refill(now);
                (k.clone(), b.tokens)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_refuses_nonsense() {
        assert_eq!(
            Rate::parse("600/min").unwrap(),
            Rate {
                count: 600,
                period_secs: 60,
                burst: None,
            }
        );
        assert_eq!(Rate::parse("600/min burst 180").unwrap().capacity(), 180.0);
        assert!(Rate::parse("600/min burst 0").is_err());
        assert!(Rate::parse("600/min burst x").is_err());
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("0/s").is_err());
        assert!(Rate::parse("5/fortnight").is_err());
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_retry_time() {
        let b = Buckets::default();
        let limits = Limits {
            write: Some(Rate::parse("3/hour").unwrap()),
            ..Default::default()
        };
        for _ in 0..3 {
            b.take("s", &limits, true, None).unwrap();
        }
        let refused = b.take("s", &limits, true, None).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(1000));
        // Reads are another class; another server another bucket.
        b.take("s", &limits, false, None).unwrap();
        b.take("t", &limits, true, None).unwrap();
    }
}
