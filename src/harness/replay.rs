//! Replays a HAR captured by the request inspector against another server: every request in
//! order, with the ids the new server assigns substituted for the recorded ones, comparing each
//! status with the recorded one. Reproduces an Okta or Entra session without the IdP.

use super::client::{Conn, request};
use anyhow::{Context, bail};
use serde_json::Value;

/// One replayed request.
#[derive(Debug, Clone)]
pub struct Step {
    pub method: String,
    /// Path and query under the server's base, after id substitution.
    pub path: String,
    pub recorded: u16,
    pub replayed: u16,
}

/// `http://host:port/prefix` → (host:port, prefix without a trailing slash).
fn split_base(base: &str) -> anyhow::Result<(String, String)> {
    let rest = base.strip_prefix("http://").context(
        "--to must be an http:// URL such as http://127.0.0.1:8080/scim-identifier/demo/scim/v2",
    )?;
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Ok((host.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// The part of a recorded URL under its server's base (`/Users/1?x=y`).
fn relative(url: &str) -> String {
    match url.find("/scim/v2") {
        Some(i) => url[i + "/scim/v2".len()..].to_string(),
        None => url
            .split_once("://")
            .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
            .unwrap_or_default(),
    }
}

fn id_of(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_string)
}

/// Sends every request of `har` to `base` with `token`, in order.
pub async fn replay(har: &Value, base: &str, token: &str) -> anyhow::Result<Vec<Step>> {
    let (host, prefix) = split_base(base)?;
    let addr = tokio::net::lookup_host(&host)
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let Some(entries) = har["log"]["entries"].as_array() else {
        bail!("not a HAR file: log.entries is missing");
    };
    let mut conn = Conn::open(addr).await?;
    // Recorded id → id the replay target assigned.
    let mut ids: Vec<(String, String)> = Vec::new();
    let substitute = |text: &str, ids: &[(String, String)]| {
        ids.iter()
            .fold(text.to_string(), |t, (old, new)| t.replace(old, new))
    };
    let mut steps = Vec::new();
    for e in entries {
        let method = e["request"]["method"].as_str().unwrap_or("GET").to_string();
        let url = e["request"]["url"].as_str().unwrap_or_default();
        let path = substitute(&relative(url), &ids);
        let body = substitute(
            e["request"]["postData"]["text"]
                .as_str()
                .unwrap_or_default(),
            &ids,
        );
        let recorded = e["response"]["status"].as_u64().unwrap_or(0) as u16;
        let (replayed, response) = conn
            .send(&request(
                &method,
                &format!("{prefix}{path}"),
                &host,
                token,
                &body,
            ))
            .await
            .with_context(|| format!("{method} {path}"))?;
        if method == "POST"
            && let (Some(old), Some(new)) = (
                e["response"]["content"]["text"].as_str().and_then(id_of),
                id_of(&String::from_utf8_lossy(&response)),
            )
            && old != new
        {
            ids.push((old, new));
        }
        steps.push(Step {
            method,
            path,
            recorded,
            replayed,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_and_relative_paths() {
        assert_eq!(
            split_base("http://127.0.0.1:8080/scim-identifier/a/scim/v2/").unwrap(),
            ("127.0.0.1:8080".into(), "/scim-identifier/a/scim/v2".into())
        );
        assert!(split_base("https://x").is_err());
        assert_eq!(
            relative("http://h/scim-identifier/okta/scim/v2/Users?filter=x"),
            "/Users?filter=x"
        );
    }
}
