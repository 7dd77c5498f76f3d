//! Replays a HAR captured by the request inspector against another server: every request in
//! order, with the ids the new server assigns substituted for the recorded ones, comparing each
//! status with the recorded one. Reproduces an Okta or Entra session without the IdP. Requests
//! go through the probe's HTTP client (reqwest over rustls: http or https targets).

use crate::client::{Auth, Client, Transport};
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
    let url = url::Url::parse(base).with_context(|| {
        format!(
            "--to {base:?} is not a URL such as http://127.0.0.1:8080/scim-identifier/demo/scim/v2"
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--to must be an http:// or https:// URL, not {base:?}");
    }
    let auth = Auth {
        bearer: Some(token.to_string()),
        ..Auth::default()
    };
    let client = Client::new(url.as_str(), &auth, &Transport::default())?.without_retries();
    let Some(entries) = har["log"]["entries"].as_array() else {
        bail!("not a HAR file: log.entries is missing");
    };
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
        let answer = client
            .request_raw(
                &method,
                &path,
                (!body.is_empty()).then(|| body.into_bytes()),
                &[],
                true,
            )
            .await
            .with_context(|| format!("{method} {path}"))?;
        let (replayed, response) = (answer.status, answer.text);
        if method == "POST"
            && let (Some(old), Some(new)) = (
                e["response"]["content"]["text"].as_str().and_then(id_of),
                id_of(&response),
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
    fn relative_paths() {
        assert_eq!(
            relative("http://h/scim-identifier/okta/scim/v2/Users?filter=x"),
            "/Users?filter=x"
        );
    }
}
