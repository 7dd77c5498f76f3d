//! Errors (RFC 7644 §3.12): the status and `scimType` of each client mistake, and the
//! shape of every error body seen.

use super::{Probe, TypeInfo};
use crate::client::{Answer, ClientError};
use crate::schema::urn;
use serde_json::json;

impl Probe<'_> {
    pub(super) async fn errors(&mut self) -> Result<(), ClientError> {
        let Some(t) = self
            .types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::USER))
            .or(self.types.first())
            .cloned()
        else {
            return Ok(());
        };
        let mut seen: Vec<Answer> = Vec::new();
        let missing = format!("{}/{}", t.endpoint, uuid::Uuid::new_v4());
        let a = self.client.send("GET", &missing, None).await?;
        self.outcome(
            "errors.not_found",
            &t.name,
            a.status == 404,
            "404",
            a.brief(),
            Some(&a.request),
        );
        seen.push(a);
        self.uniqueness(&t, &mut seen).await?;
        let a = self
            .client
            .request_raw(
                "POST",
                &t.endpoint,
                Some(b"{\"schemas\": [".to_vec()),
                &[("content-type", "application/scim+json")],
                true,
            )
            .await?;
        self.outcome(
            "errors.invalid_syntax",
            &t.name,
            a.status == 400 && a.at("scimType") == "invalidSyntax",
            "400 with scimType invalidSyntax",
            a.brief(),
            Some(&a.request),
        );
        seen.push(a);
        let required: Vec<String> = self
            .schema(&t.schema)
            .map(|s| {
                s.attributes
                    .iter()
                    .filter(|a| a.required && a.mutability != crate::schema::Mutability::ReadOnly)
                    .map(|a| a.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if required.is_empty() {
            self.skip(
                "errors.invalid_value",
                &t.name,
                "the schema has no required attribute",
            );
        } else {
            let mut body = self.sample(&t, false);
            for r in &required {
                if let Some(o) = body.as_object_mut() {
                    o.remove(r);
                }
            }
            let a = self.create(&t, &body).await?;
            self.outcome(
                "errors.invalid_value",
                &t.name,
                a.status == 400 && a.at("scimType") == "invalidValue",
                format!(
                    "400 with scimType invalidValue (without {})",
                    required.join(", ")
                ),
                a.brief(),
                Some(&a.request),
            );
            seen.push(a);
        }
        let a = self
            .client
            .request("GET", &t.endpoint, None, &[], false)
            .await?;
        self.outcome(
            "errors.unauthorized",
            &t.name,
            a.status == 401,
            "401",
            a.brief(),
            Some(&a.request),
        );
        seen.push(a);
        match self.spc["bulk"]["maxPayloadSize"].as_u64() {
            Some(max) if self.config_supported("bulk") && max <= 64 << 20 => {
                let filler = "x".repeat(max as usize + 1024);
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": [{"method": "POST", "path": t.endpoint, "bulkId": "big", "data": {"schemas": [t.schema], "padding": filler}}]
                });
                let a = self.client.send("POST", "/Bulk", Some(&body)).await?;
                self.outcome(
                    "errors.too_large",
                    "",
                    a.status == 413,
                    format!("413 for a Bulk body over bulk.maxPayloadSize ({max} bytes)"),
                    a.brief(),
                    Some(&a.request),
                );
                seen.push(a);
            }
            _ => self.skip(
                "errors.too_large",
                "",
                "no bulk.maxPayloadSize is advertised",
            ),
        }
        let mut bad = Vec::new();
        for a in seen.iter().filter(|a| a.status >= 400) {
            let schemas_ok = a
                .at("schemas")
                .as_array()
                .is_some_and(|s| s.iter().any(|u| u == urn::ERROR));
            let status_ok = a.at("status").as_str() == Some(a.status.to_string().as_str());
            if !(schemas_ok && status_ok) {
                bad.push(format!("{} → {}", a.request, a.brief()));
            }
        }
        self.outcome(
            "errors.body",
            "",
            bad.is_empty(),
            "{\"schemas\": [\"urn:ietf:params:scim:api:messages:2.0:Error\"], \"status\": \"<status as a string>\", \"detail\": …}",
            if bad.is_empty() { format!("{} error bodies well formed", seen.iter().filter(|a| a.status >= 400).count()) } else { bad.join("; ") },
            None,
        );
        Ok(())
    }

    /// A second create with the first one's unique value (userName, or the first unique
    /// attribute of the type) must be refused with 409 uniqueness.
    async fn uniqueness(
        &mut self,
        t: &TypeInfo,
        seen: &mut Vec<Answer>,
    ) -> Result<(), ClientError> {
        let unique = self.schema(&t.schema).and_then(|s| {
            s.attributes
                .iter()
                .find(|a| {
                    a.uniqueness != crate::schema::Uniqueness::None
                        && a.mutability != crate::schema::Mutability::ReadOnly
                })
                .map(|a| a.name.clone())
        });
        let Some(attr) = unique else {
            self.skip(
                "errors.uniqueness",
                &t.name,
                "no attribute of the type is unique",
            );
            return Ok(());
        };
        let first = self.sample(t, false);
        let a = self.create(t, &first).await?;
        if a.status != 201 {
            self.skip("errors.uniqueness", &t.name, "the first create failed");
            return Ok(());
        }
        let mut second = self.sample(t, false);
        second[&attr] = first[&attr].clone();
        let b = self.create(t, &second).await?;
        self.outcome(
            "errors.uniqueness",
            &t.name,
            b.status == 409 && b.at("scimType") == "uniqueness",
            format!(
                "409 with scimType uniqueness for a second {attr} {}",
                first[&attr]
            ),
            b.brief(),
            Some(&b.request),
        );
        seen.push(b);
        Ok(())
    }
}
