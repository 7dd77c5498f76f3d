//! Timestamps as stored and served: UTC, milliseconds, `Z` (RFC 3339), so that string order
//! is time order.

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// Now, in the stored form.
pub fn now() -> String {
    chrono::Utc::now().format(FORMAT).to_string()
}

/// Now, in seconds since the Unix epoch (JWT `iat`, cursor issue times).
pub fn unix_secs() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// Now, in milliseconds since the Unix epoch (push retry times).
pub fn unix_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Normalises an RFC 3339 dateTime to the stored form; None if it is not one.
pub fn normalize_datetime(s: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.with_timezone(&chrono::Utc).format(FORMAT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_fractions_normalise_to_utc_milliseconds() {
        assert_eq!(
            normalize_datetime("2024-01-02T03:04:05+02:00").as_deref(),
            Some("2024-01-02T01:04:05.000Z")
        );
        assert_eq!(
            normalize_datetime("2024-01-02T03:04:05.123456Z").as_deref(),
            Some("2024-01-02T03:04:05.123Z")
        );
        assert!(normalize_datetime("yesterday").is_none());
        assert!(now().as_str() < "2100" && now().ends_with('Z'));
    }
}
