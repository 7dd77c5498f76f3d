//! Fault rules compiled for matching: a rule's path pattern is built once, when the definition
//! or the admin API's rules are loaded, not on every request (building a glob matcher compiles
//! a regular expression).

use crate::definition::FaultDef;

/// One fault rule, as written, and its path pattern compiled.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub def: FaultDef,
    path: Option<globset::GlobMatcher>,
}

impl FaultRule {
    /// Checks the rule ([`FaultDef::check`]) and compiles its path pattern.
    pub fn compile(def: FaultDef) -> Result<FaultRule, String> {
        def.check()?;
        let path = (def.path.as_deref())
            .map(crate::definition::path_pattern)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(FaultRule { def, path })
    }

    /// Whether a request matches the rule: its method, its path below the server's base URL
    /// and its resource type (each matched when the rule leaves it out).
    pub fn matches(&self, method: &str, path: &str, resource_type: Option<&str>) -> bool {
        let f = &self.def;
        (f.methods.is_empty() || f.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && self.path.as_ref().is_none_or(|p| p.is_match(path))
            && (f.resource_type.as_deref())
                .is_none_or(|t| resource_type.is_some_and(|rt| rt.eq_ignore_ascii_case(t)))
    }
}

#[cfg(test)]
impl FaultRule {
    /// A rule written in YAML, compiled (tests).
    pub fn from_yaml(yaml: &str) -> Result<FaultRule, String> {
        FaultRule::compile(serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?)
    }
}

/// Serialised as written (the admin API and the UI show rules in their YAML shape).
impl serde::Serialize for FaultRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.def.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_case_insensitively_with_stars_across_slashes() {
        let matches = |pattern: &str, path: &str| {
            FaultRule::from_yaml(&format!("{{path: '{pattern}', error_rate: 1.0}}"))
                .unwrap()
                .matches("GET", path, None)
        };
        assert!(matches("/Users*", "/Users/abc"));
        assert!(matches("/users", "/Users"));
        assert!(matches("/*/abc", "/Users/abc"));
        assert!(matches("/U*s/*c", "/Users/abc"));
        assert!(!matches("/Groups*", "/Users"));
    }

    #[test]
    fn a_rule_that_does_not_check_is_not_compiled() {
        assert!(FaultRule::from_yaml("{status: 404}").is_err());
        assert!(FaultRule::from_yaml("{error_rate: 2.0}").is_err());
        assert!(FaultRule::from_yaml("{path: Users}").is_err());
    }
}
