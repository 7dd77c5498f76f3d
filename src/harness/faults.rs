//! Fault injection: matching requests get added latency (fixed or uniformly distributed) and/or
//! an error status at a given rate, optionally only for the next N matching requests. Rules come
//! from the server's YAML and from the admin API; each injected fault is marked in the request
//! log.

use crate::definition::FaultDef;
use crate::vocab::rng::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What to do to one request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Injection {
    pub latency_ms: u64,
    /// Status to answer with instead of handling the request.
    pub status: Option<u16>,
    /// Which rule: `faults[0]` (YAML) or `admin[1]`.
    pub rule: String,
}

impl Injection {
    pub fn describe(&self) -> String {
        match (self.latency_ms, self.status) {
            (0, Some(s)) => format!("{}: injected {s}", self.rule),
            (ms, Some(s)) => format!("{}: +{ms} ms, injected {s}", self.rule),
            (ms, None) => format!("{}: +{ms} ms", self.rule),
        }
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    crate::definition::path_pattern(pattern).is_ok_and(|m| m.is_match(text))
}

/// Runtime state: admin-added rules, `next` counters, the random stream.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rng: Rng,
    /// Rules added through the admin API, per server.
    admin: HashMap<String, Vec<FaultDef>>,
    /// Matches so far per (server, rule), for `next`.
    used: HashMap<(String, String), u64>,
}

impl Default for Faults {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Faults {
            state: Mutex::new(State {
                rng: Rng::new(seed),
                admin: HashMap::new(),
                used: HashMap::new(),
            }),
        }
    }
}

impl Faults {
    /// Replaces the admin rules of a server (empty clears them); counters start over.
    pub fn set_admin(&self, server: &str, rules: Vec<FaultDef>) {
        let mut s = crate::sync::lock(&self.state);
        s.used.retain(|(srv, _), _| srv != server);
        if rules.is_empty() {
            s.admin.remove(server);
        } else {
            s.admin.insert(server.to_string(), rules);
        }
    }

    pub fn admin_rules(&self, server: &str) -> Vec<FaultDef> {
        let s = crate::sync::lock(&self.state);
        s.admin.get(server).cloned().unwrap_or_default()
    }

    /// The first matching rule with budget left decides (YAML rules first, then admin rules).
    pub fn decide(
        &self,
        server: &str,
        yaml: &[FaultDef],
        method: &str,
        path: &str,
        resource_type: Option<&str>,
    ) -> Option<Injection> {
        let mut s = crate::sync::lock(&self.state);
        let admin = s.admin.get(server).cloned().unwrap_or_default();
        let rules = yaml
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("faults[{i}]"), f))
            .chain(
                admin
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (format!("admin[{i}]"), f)),
            );
        for (name, f) in rules {
            let method_ok =
                f.methods.is_empty() || f.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
            let path_ok = f.path.as_deref().is_none_or(|p| glob(p, path));
            let type_ok = f
                .resource_type
                .as_deref()
                .is_none_or(|t| resource_type.is_some_and(|rt| rt.eq_ignore_ascii_case(t)));
            if !(method_ok && path_ok && type_ok) {
                continue;
            }
            let key = (server.to_string(), name.clone());
            let used = s.used.get(&key).copied().unwrap_or(0);
            if f.next.is_some_and(|n| used >= n) {
                continue;
            }
            s.used.insert(key, used + 1);
            let latency_ms = match f.latency_max_ms {
                Some(max) if max > f.latency_ms => {
                    f.latency_ms + s.rng.below((max - f.latency_ms + 1) as usize) as u64
                }
                _ => f.latency_ms,
            };
            let status = (f.error_rate > 0.0 && s.rng.chance(f.error_rate)).then_some(f.status);
            if latency_ms == 0 && status.is_none() {
                continue;
            }
            return Some(Injection {
                latency_ms,
                status,
                rule: name,
            });
        }
        None
    }
}

impl Injection {
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> FaultDef {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("/Users*", "/Users/abc"));
        assert!(glob("/users", "/Users"));
        assert!(glob("*/abc", "/Users/abc"));
        assert!(glob("/U*s/*c", "/Users/abc"));
        assert!(!glob("/Groups*", "/Users"));
    }

    #[test]
    fn next_n_then_stops_and_matching_is_by_method_path_and_type() {
        let f = Faults::default();
        let rules = vec![rule(
            "{methods: [GET], path: /Users*, error_rate: 1.0, status: 500, next: 2}",
        )];
        assert!(
            f.decide("s", &rules, "POST", "/Users", Some("User"))
                .is_none()
        );
        assert!(
            f.decide("s", &rules, "GET", "/Groups", Some("Group"))
                .is_none()
        );
        for _ in 0..2 {
            let i = f
                .decide("s", &rules, "GET", "/Users/1", Some("User"))
                .unwrap();
            assert_eq!(i.status, Some(500));
        }
        assert!(
            f.decide("s", &rules, "GET", "/Users/1", Some("User"))
                .is_none()
        );
        let lat = vec![rule(
            "{resource_type: Group, latency_ms: 5, latency_max_ms: 9}",
        )];
        let i = f
            .decide("s", &lat, "GET", "/Groups", Some("Group"))
            .unwrap();
        assert!((5..=9).contains(&i.latency_ms) && i.status.is_none());
        assert!(FaultDef::check(&rule("{status: 404}")).is_err());
        assert!(FaultDef::check(&rule("{error_rate: 2.0}")).is_err());
    }
}
