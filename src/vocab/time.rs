//! Timestamps as stored and served: UTC, milliseconds, `Z` (RFC 3339), so that string order
//! is time order.

use chrono::SecondsFormat;

/// A UTC time in the stored form, `2024-01-02T03:04:05.123Z` (chrono's RFC 3339 writer: a
/// format string would be parsed again on every call, and this runs on every request).
pub fn stored(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, in the stored form.
pub fn now() -> String {
    stored(chrono::Utc::now())
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
    Some(stored(t.with_timezone(&chrono::Utc)))
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
