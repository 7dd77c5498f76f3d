//! Fault injection: matching requests get added latency (fixed or uniformly distributed) and/or
//! an error status at a given rate, optionally only for the next N matching requests. Rules come
//! from the server's YAML and from the admin API; each injected fault is marked in the request
//! log.

use crate::definition::FaultDef;
use crate::model::FaultRule;
use crate::vocab::rng::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Runtime state: admin-added rules, `next` counters, the random stream.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
    /// Servers with admin rules: while none has any, a request to a server whose definition
    /// has no rules is decided without taking the lock every server's requests share.
    with_admin_rules: AtomicUsize,
}

#[derive(Debug)]
struct State {
    rng: Rng,
    /// Rules added through the admin API, per server.
    admin: HashMap<String, Vec<FaultRule>>,
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
            with_admin_rules: AtomicUsize::new(0),
        }
    }
}

impl Faults {
    /// Replaces the admin rules of a server (empty clears them); counters start over. Rules
    /// are checked by the caller; one that does not check is left out.
    pub fn set_admin(&self, server: &str, rules: Vec<FaultDef>) {
        let rules: Vec<FaultRule> = (rules.into_iter())
            .filter_map(|r| FaultRule::compile(r).ok())
            .collect();
        let mut s = crate::sync::lock(&self.state);
        s.used.retain(|(srv, _), _| srv != server);
        if rules.is_empty() {
            s.admin.remove(server);
        } else {
            s.admin.insert(server.to_string(), rules);
        }
        self.with_admin_rules
            .store(s.admin.len(), Ordering::Relaxed);
    }

    pub fn admin_rules(&self, server: &str) -> Vec<FaultDef> {
        let s = crate::sync::lock(&self.state);
        (s.admin.get(server).into_iter().flatten())
            .map(|r| r.def.clone())
            .collect()
    }

    /// The first matching rule with budget left decides (YAML rules first, then admin rules).
    pub fn decide(
        &self,
        server: &str,
        yaml: &[FaultRule],
        method: &str,
        path: &str,
        resource_type: Option<&str>,
    ) -> Option<Injection> {
        if yaml.is_empty() && self.with_admin_rules.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut guard = crate::sync::lock(&self.state);
        let State { rng, admin, used } = &mut *guard;
        let yaml = yaml.iter().enumerate().map(|(i, f)| (("faults", i), f));
        let admin =
            (admin.get(server).into_iter().flatten().enumerate()).map(|(i, f)| (("admin", i), f));
        for ((source, i), rule) in yaml.chain(admin) {
            if !rule.matches(method, path, resource_type) {
                continue;
            }
            let f = &rule.def;
            let name = format!("{source}[{i}]");
            if let Some(next) = f.next {
                let used = used.entry((server.to_string(), name.clone())).or_insert(0);
                if *used >= next {
                    continue;
                }
                *used += 1;
            }
            let latency_ms = match f.latency_max_ms {
                Some(max) if max > f.latency_ms => {
                    f.latency_ms + rng.below((max - f.latency_ms + 1) as usize) as u64
                }
                _ => f.latency_ms,
            };
            let status = (f.error_rate > 0.0 && rng.chance(f.error_rate)).then_some(f.status);
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

    fn rule(yaml: &str) -> FaultRule {
        FaultRule::from_yaml(yaml).unwrap()
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
    }

    #[test]
    fn admin_rules_follow_the_definitions_and_count_their_own_budget() {
        let f = Faults::default();
        let def = |yaml: &str| serde_saphyr::from_str::<FaultDef>(yaml).unwrap();
        assert!(f.decide("s", &[], "GET", "/Users", None).is_none());
        f.set_admin("s", vec![def("{error_rate: 1.0, status: 429, next: 1}")]);
        // Another server's requests are not faulted by it.
        assert!(f.decide("t", &[], "GET", "/Users", None).is_none());
        let yaml = [rule("{methods: [POST], error_rate: 1.0}")];
        let first = f.decide("s", &yaml, "GET", "/Users", None).unwrap();
        assert_eq!((first.status, first.rule.as_str()), (Some(429), "admin[0]"));
        assert!(f.decide("s", &yaml, "GET", "/Users", None).is_none());
        assert_eq!(
            f.decide("s", &yaml, "POST", "/Users", None).unwrap().rule,
            "faults[0]"
        );
        assert_eq!(
            f.admin_rules("s"),
            vec![def("{error_rate: 1.0, status: 429, next: 1}")]
        );
        f.set_admin("s", Vec::new());
        assert!(f.admin_rules("s").is_empty());
        assert!(f.decide("s", &[], "GET", "/Users", None).is_none());
    }
}
