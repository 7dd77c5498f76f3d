//! A server's rate limits, compiled from its definition (`rate_limits`) or an admin call; the
//! token buckets that enforce them are the harness's.

use crate::definition::RateLimitsDef;
use serde::Serialize;

/// `N/s`, `N/min` or `N/hour`, optionally `… burst B`: N requests per period on average,
/// at most B at once (default N).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub count: u32,
    pub period_secs: u32,
    /// Most requests at once (the bucket's size); `None`: `count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || {
            format!(
                "rate {text:?} must look like 100/s, 600/min or 5000/hour, optionally with \"burst N\""
            )
        };
        let (rate, burst) = match text.split_once("burst") {
            Some((r, b)) => (r, Some(b.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (text, None),
        };
        if burst == Some(0) {
            return Err(format!(
                "rate {text:?} has a burst of 0: nothing could pass"
            ));
        }
        let (n, per) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let period_secs = match per.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!(
                "rate {text:?} allows nothing; remove the limit instead"
            ));
        }
        Ok(Rate {
            count,
            period_secs,
            burst,
        })
    }

    pub fn per_sec(&self) -> f64 {
        self.count as f64 / self.period_secs as f64
    }

    /// The bucket's size: most requests at once.
    pub fn capacity(&self) -> f64 {
        self.burst.unwrap_or(self.count) as f64
    }
}

/// A server's compiled limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    pub read: Option<Rate>,
    pub write: Option<Rate>,
    pub per_type: Vec<(String, Rate)>,
}

impl Limits {
    pub fn compile(def: &RateLimitsDef) -> Result<Limits, Vec<(Vec<String>, String)>> {
        let mut problems = Vec::new();
        let mut one = |key: Vec<String>, text: &Option<String>| match text {
            None => None,
            Some(t) => Rate::parse(t).map_err(|e| problems.push((key, e))).ok(),
        };
        let read = one(vec!["read".into()], &def.read);
        let write = one(vec!["write".into()], &def.write);
        let mut per_type = Vec::new();
        for (name, text) in &def.per_type {
            if let Some(r) = one(vec!["per_type".into(), name.clone()], &Some(text.clone())) {
                per_type.push((name.clone(), r));
            }
        }
        if problems.is_empty() {
            Ok(Limits {
                read,
                write,
                per_type,
            })
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_none() && self.write.is_none() && self.per_type.is_empty()
    }
}
