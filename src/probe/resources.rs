//! Resource phases: the lifecycle of every advertised type (POST, GET, PUT, PATCH, DELETE),
//! group membership, PATCH semantics, ETags and Bulk.

use super::data::lost_attributes;
use super::{Probe, TypeInfo, patch_body, patched};
use crate::client::{Answer, ClientError};
use crate::schema::{AttrType, AttributeDef, Mutability, urn};
use serde_json::{Value, json};

impl Probe<'_> {
    /// The served definition of `name` in `schema` (`schema` "" is the type's core schema).
    pub(super) fn attr_def(&self, t: &TypeInfo, schema: &str, name: &str) -> Option<AttributeDef> {
        let urn = if schema.is_empty() { &t.schema } else { schema };
        self.schema(urn)?.attr(name).cloned()
    }

    /// Lost attributes of `sent` in `got`, per the served schemas of `t`.
    pub(super) fn lost(&self, t: &TypeInfo, sent: &Value, got: &Value) -> Vec<String> {
        lost_attributes(sent, got, &|schema, name| self.attr_def(t, schema, name))
    }

    /// A writable simple string attribute of `t`'s core schema to change (not the one that
    /// identifies the resource), e.g. displayName.
    pub(super) fn changeable(&self, t: &TypeInfo) -> Option<String> {
        let core = self.schema(&t.schema)?;
        let ok = |a: &&AttributeDef| {
            a.ty == AttrType::String
                && !a.multi_valued
                && a.mutability == Mutability::ReadWrite
                && a.canonical_values.is_empty()
                && a.returned != crate::schema::Returned::Never
        };
        ["displayName", "nickName", "title", "description"]
            .iter()
            .filter_map(|n| core.attr(n))
            .find(ok)
            .or_else(|| {
                core.attributes
                    .iter()
                    .filter(|a| !a.required && a.uniqueness == crate::schema::Uniqueness::None)
                    .find(ok)
            })
            .map(|a| a.name.clone())
    }

    /// GET a resource by id.
    pub(super) async fn read(&self, t: &TypeInfo, id: &str) -> Result<Answer, ClientError> {
        self.client
            .send("GET", &format!("{}/{id}", t.endpoint), None)
            .await
    }

    /// Creates a minimal resource of `t` for a later phase; None (with the failure already
    /// reported by the lifecycle phase) if the server refuses.
    pub(super) async fn fixture(
        &mut self,
        t: &TypeInfo,
        full: bool,
    ) -> Result<Option<(String, Value)>, ClientError> {
        let body = self.sample(t, full);
        let a = self.create(t, &body).await?;
        Ok(a.at("id")
            .as_str()
            .filter(|_| a.status == 201)
            .map(|id| (id.to_string(), a.json.clone().unwrap_or_default())))
    }

    pub(super) async fn lifecycle(&mut self) -> Result<(), ClientError> {
        for t in self.types.clone() {
            self.lifecycle_of(&t).await?;
        }
        if let Some(agent) = self.type_named("Agent") {
            self.burst(&agent).await?;
        }
        Ok(())
    }

    async fn lifecycle_of(&mut self, t: &TypeInfo) -> Result<(), ClientError> {
        let sent = self.sample(t, true);
        let a = self.create(t, &sent).await?;
        let id = a.at("id").as_str().unwrap_or_default().to_string();
        let created = a.status == 201 && !id.is_empty();
        self.outcome(
            "lifecycle.create",
            &t.name,
            created && a.at("schemas").is_array(),
            "201 with the resource, its id, schemas and meta",
            a.brief(),
            Some(&a.request),
        );
        if !created {
            for check in [
                "lifecycle.location",
                "lifecycle.meta",
                "lifecycle.get",
                "lifecycle.put",
                "lifecycle.patch",
                "lifecycle.delete",
            ] {
                self.skip(check, &t.name, "the create failed");
            }
            return Ok(());
        }
        let meta_location = a.at("meta")["location"].as_str().unwrap_or_default();
        let location = a.header("location").unwrap_or_default().to_string();
        self.outcome(
            "lifecycle.location",
            &t.name,
            !location.is_empty()
                && (location == meta_location || location.ends_with(&format!("/{id}"))),
            format!("Location: {meta_location}"),
            if location.is_empty() {
                "no Location header".to_string()
            } else {
                format!("Location: {location}")
            },
            Some(&a.request),
        );
        let meta = a.at("meta");
        let missing: Vec<&str> = ["resourceType", "created", "lastModified", "location"]
            .into_iter()
            .filter(|k| meta[*k].as_str().is_none_or(str::is_empty))
            .collect();
        let type_ok = meta["resourceType"].as_str() == Some(t.name.as_str());
        self.outcome(
            "lifecycle.meta",
            &t.name,
            missing.is_empty() && type_ok,
            format!(
                "meta.resourceType {:?}, created, lastModified, location",
                t.name
            ),
            format!("meta = {meta}"),
            Some(&a.request),
        );
        let g = self.read(t, &id).await?;
        let lost = self.lost(t, &sent, g.json.as_ref().unwrap_or(&Value::Null));
        self.outcome(
            "lifecycle.get",
            &t.name,
            g.status == 200 && g.at("id").as_str() == Some(&id) && lost.is_empty(),
            "200 with the resource as created",
            if lost.is_empty() {
                g.brief()
            } else {
                format!("{}; not returned as sent: {}", g.status, lost.join(", "))
            },
            Some(&g.request),
        );
        // PUT: the same resource with every changeable string changed.
        let mut put = sent.clone();
        self.change_strings(t, &mut put);
        let p = self
            .client
            .send("PUT", &format!("{}/{id}", t.endpoint), Some(&put))
            .await?;
        let after = self.read(t, &id).await?;
        let lost = self.lost(t, &put, after.json.as_ref().unwrap_or(&Value::Null));
        self.outcome(
            "lifecycle.put",
            &t.name,
            p.status == 200 && lost.is_empty(),
            "200, and every attribute sent is then returned as sent",
            if lost.is_empty() {
                p.brief()
            } else {
                format!("{}; lost or changed: {}", p.status, lost.join(", "))
            },
            Some(&p.request),
        );
        match self.changeable(t) {
            Some(attr) => {
                let value = self.unique("patched");
                let a = self
                    .client
                    .send(
                        "PATCH",
                        &format!("{}/{id}", t.endpoint),
                        Some(&patch_body(
                            json!([{"op": "replace", "path": attr, "value": value}]),
                        )),
                    )
                    .await?;
                let g = self.read(t, &id).await?;
                self.outcome(
                    "lifecycle.patch",
                    &t.name,
                    patched(&a) && g.at(&attr).as_str() == Some(&value),
                    format!("200 or 204, then {attr} = {value:?}"),
                    format!("{}; then {attr} = {}", a.brief(), g.at(&attr)),
                    Some(&a.request),
                );
            }
            None => self.skip("lifecycle.patch", &t.name, "no writable string attribute"),
        }
        let d = self
            .client
            .send("DELETE", &format!("{}/{id}", t.endpoint), None)
            .await?;
        let g = self.read(t, &id).await?;
        if d.status == 204 {
            self.forget(&id);
        }
        self.outcome(
            "lifecycle.delete",
            &t.name,
            d.status == 204 && g.status == 404,
            "204, then GET answers 404",
            format!("DELETE {}, then GET {}", d.status, g.status),
            Some(&d.request),
        );
        Ok(())
    }

    /// Changes every writable simple string (core and extension) of a generated resource.
    fn change_strings(&mut self, t: &TypeInfo, doc: &mut Value) {
        let Some(obj) = doc.as_object_mut() else {
            return;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        for k in keys {
            if k.starts_with("urn:") {
                let inner: Vec<String> = obj[&k]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                for k2 in inner {
                    if let Some(d) = self.attr_def(t, &k, &k2)
                        && self.rewritable(&d)
                    {
                        obj[&k][&k2] = json!(self.unique(&k2));
                    }
                }
            } else if let Some(d) = self.attr_def(t, "", &k)
                && self.rewritable(&d)
            {
                obj[&k] = json!(self.unique(&k));
            }
        }
    }

    fn rewritable(&self, d: &AttributeDef) -> bool {
        d.ty == AttrType::String
            && !d.multi_valued
            && d.mutability == Mutability::ReadWrite
            && d.canonical_values.is_empty()
            && !["type", "locale", "preferredLanguage", "timezone"].contains(&d.name.as_str())
            && super::data::formatted(&d.name.to_ascii_lowercase()).is_none()
    }

    async fn burst(&mut self, t: &TypeInfo) -> Result<(), ClientError> {
        let mut statuses = Vec::new();
        for _ in 0..10 {
            let body = self.sample(t, false);
            let a = self.create(t, &body).await?;
            let (d, gone) = match a.at("id").as_str() {
                Some(id) => {
                    let id = id.to_string();
                    let d = self
                        .client
                        .send("DELETE", &format!("{}/{id}", t.endpoint), None)
                        .await?;
                    if d.status == 204 {
                        self.forget(&id);
                    }
                    (d.status, self.read(t, &id).await?.status)
                }
                None => (0, 0),
            };
            statuses.push((a.status, d, gone));
        }
        let ok = statuses.iter().all(|s| *s == (201, 204, 404));
        self.outcome(
            "lifecycle.burst",
            &t.name,
            ok,
            "10 × (create 201, delete 204, then GET 404)",
            format!("{statuses:?}"),
            Some(&format!("POST/DELETE {}", t.endpoint)),
        );
        Ok(())
    }

    fn group_type(&self) -> Option<TypeInfo> {
        self.types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::GROUP))
            .cloned()
    }

    fn user_type(&self) -> Option<TypeInfo> {
        self.types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::USER))
            .cloned()
    }

    pub(super) async fn groups(&mut self) -> Result<(), ClientError> {
        let (Some(u), Some(g)) = (self.user_type(), self.group_type()) else {
            self.skip(
                "groups.members",
                "",
                "the server has no User and Group types",
            );
            self.skip(
                "groups.user_groups",
                "",
                "the server has no User and Group types",
            );
            return Ok(());
        };
        let (Some((uid, _)), Some((gid, _))) = (
            self.fixture(&u, false).await?,
            self.fixture(&g, false).await?,
        ) else {
            self.skip("groups.members", "", "creating a user or a group failed");
            self.skip(
                "groups.user_groups",
                "",
                "creating a user or a group failed",
            );
            return Ok(());
        };
        let path = format!("{}/{gid}", g.endpoint);
        let (add, after_add) = self
            .patch_then_get(
                &path,
                json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
            )
            .await?;
        let has = |a: &Answer| {
            a.at("members")
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x["value"] == uid.as_str()))
        };
        let added = patched(&add) && has(&after_add);
        let user = self.read(&u, &uid).await?;
        if self
            .schema(&u.schema)
            .and_then(|s| s.attr("groups"))
            .is_none()
        {
            self.skip(
                "groups.user_groups",
                "",
                "the User schema has no groups attribute",
            );
        } else if user.at("groups").is_null() {
            // RFC 7643 §4.1.2 defines the attribute but does not oblige a server to fill it.
            self.skip(
                "groups.user_groups",
                "",
                "the server does not return User.groups (RFC 7643 §4.1.2 allows that)",
            );
        } else {
            let listed = user
                .at("groups")
                .as_array()
                .is_some_and(|gs| gs.iter().any(|x| x["value"] == gid.as_str()));
            self.outcome(
                "groups.user_groups",
                "",
                listed,
                format!("the user's groups list group {gid}"),
                format!("groups = {}", user.at("groups")),
                Some(&user.request),
            );
        }
        let (remove, after_remove) = self
            .patch_then_get(
                &path,
                json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
            )
            .await?;
        let removed = patched(&remove) && !has(&after_remove);
        self.outcome(
            "groups.members",
            "",
            added && removed,
            "the member is listed after the add and gone after the remove",
            format!(
                "add: {} (member listed: {}); remove: {} (member gone: {})",
                add.status,
                has(&after_add),
                remove.status,
                !has(&after_remove)
            ),
            Some(&add.request),
        );
        Ok(())
    }

    pub(super) async fn patch(&mut self) -> Result<(), ClientError> {
        const CHECKS: [&str; 6] = [
            "patch.pathless",
            "patch.value_filter",
            "patch.remove_filter",
            "patch.add_multi",
            "patch.atomic",
            "config.change_password",
        ];
        if !self.config_supported("patch") {
            for c in CHECKS {
                self.skip(c, "", "patch.supported is false");
            }
            return Ok(());
        }
        let Some(u) = self.user_type() else {
            for c in CHECKS {
                self.skip(c, "", "the server has no User type");
            }
            return Ok(());
        };
        let Some((id, _)) = self.fixture(&u, true).await? else {
            for c in CHECKS {
                self.skip(c, "", "creating a user failed");
            }
            return Ok(());
        };
        let path = format!("{}/{id}", u.endpoint);
        let attr = self.changeable(&u).unwrap_or_else(|| "displayName".into());
        // Path-less replace.
        let v = self.unique("pathless");
        let (a, g) = self
            .patch_then_get(
                &path,
                json!([{"op": "replace", "value": {attr.clone(): v}}]),
            )
            .await?;
        self.outcome(
            "patch.pathless",
            "",
            patched(&a) && g.at(&attr).as_str() == Some(&v),
            format!("{attr} = {v:?}"),
            format!("{}; then {attr} = {}", a.brief(), g.at(&attr)),
            Some(&a.request),
        );
        let has_emails = self
            .schema(&u.schema)
            .and_then(|s| s.attr("emails"))
            .is_some();
        if has_emails {
            let email = |a: &Answer, ty: &str| -> Option<String> {
                a.at("emails").as_array().and_then(|e| {
                    e.iter()
                        .find(|x| x["type"] == ty)
                        .and_then(|x| x["value"].as_str().map(str::to_string))
                })
            };
            // Make sure there is a work email to select, then replace its value by filter.
            let work = format!("{}@example.com", self.unique("work"));
            self.client
                .send("PATCH", &path, Some(&patch_body(json!([{"op": "replace", "path": "emails", "value": [{"value": work, "type": "work", "primary": true}]}]))))
                .await?;
            let new = format!("{}@example.org", self.unique("new"));
            let (a, g) = self.patch_then_get(&path, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": new}])).await?;
            self.outcome(
                "patch.value_filter",
                "",
                patched(&a) && email(&g, "work").as_deref() == Some(&new),
                format!("the work email becomes {new}"),
                format!("{}; then emails = {}", a.brief(), g.at("emails")),
                Some(&a.request),
            );
            let home = format!("{}@example.net", self.unique("home"));
            let (a, g) = self.patch_then_get(&path, json!([{"op": "add", "path": "emails", "value": [{"value": home, "type": "home"}]}])).await?;
            self.outcome(
                "patch.add_multi",
                "",
                patched(&a)
                    && email(&g, "home").as_deref() == Some(&home)
                    && email(&g, "work").is_some(),
                "the home email is added beside the work email",
                format!("{}; then emails = {}", a.brief(), g.at("emails")),
                Some(&a.request),
            );
            let (a, g) = self
                .patch_then_get(
                    &path,
                    json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
                )
                .await?;
            self.outcome(
                "patch.remove_filter",
                "",
                patched(&a) && email(&g, "home").is_none() && email(&g, "work").is_some(),
                "the home email is removed, the work email stays",
                format!("{}; then emails = {}", a.brief(), g.at("emails")),
                Some(&a.request),
            );
        } else {
            for c in [
                "patch.value_filter",
                "patch.add_multi",
                "patch.remove_filter",
            ] {
                self.skip(c, "", "the User schema has no emails");
            }
        }
        self.change_password(&u, &path).await?;
        // Atomicity: the last operation must fail (remove without a path: RFC 7644
        // §3.5.2.2 noTarget), so the first must not stick.
        let before = self.read(&u, &id).await?;
        let v = self.unique("atomic");
        let (a, after) = self
            .patch_then_get(
                &path,
                json!([{"op": "replace", "path": attr, "value": v}, {"op": "remove"}]),
            )
            .await?;
        self.outcome(
            "patch.atomic",
            "",
            a.status == 400 && after.at(&attr) == before.at(&attr),
            format!("400, and {attr} still {}", before.at(&attr)),
            format!("{}; then {attr} = {}", a.status, after.at(&attr)),
            Some(&a.request),
        );
        Ok(())
    }

    /// `changePassword`: when supported, a PATCH of the (writeOnly) password works and the
    /// password is never returned.
    async fn change_password(&mut self, u: &TypeInfo, path: &str) -> Result<(), ClientError> {
        let has_password = self
            .schema(&u.schema)
            .and_then(|s| s.attr("password"))
            .is_some();
        if !self.config_supported("changePassword") || !has_password {
            self.skip(
                "config.change_password",
                "",
                "changePassword.supported is false or the User schema has no password",
            );
            return Ok(());
        }
        let secret = format!("Pw-{}-x9!", self.unique("pw"));
        let (a, g) = self
            .patch_then_get(
                path,
                json!([{"op": "replace", "path": "password", "value": secret}]),
            )
            .await?;
        let echoed = a.text.contains(&secret) || g.text.contains(&secret);
        self.outcome(
            "config.change_password",
            "",
            patched(&a) && !echoed,
            "200 or 204, and the password in no answer",
            format!(
                "{}{}",
                a.status,
                if echoed {
                    "; the password was returned"
                } else {
                    ""
                }
            ),
            Some(&a.request),
        );
        Ok(())
    }

    pub(super) async fn etag(&mut self) -> Result<(), ClientError> {
        const CHECKS: [&str; 3] = ["etag.header", "etag.if_match", "etag.if_none_match"];
        if !self.config_supported("etag") {
            for c in CHECKS {
                self.skip(c, "", "etag.supported is false");
            }
            return Ok(());
        }
        let Some(t) = self.user_type().or_else(|| self.types.first().cloned()) else {
            return Ok(());
        };
        let Some((id, _)) = self.fixture(&t, false).await? else {
            for c in CHECKS {
                self.skip(c, "", "creating a resource failed");
            }
            return Ok(());
        };
        let g = self.read(&t, &id).await?;
        let etag = g.header("etag").unwrap_or_default().to_string();
        let version = g.at("meta")["version"].as_str().unwrap_or_default();
        self.outcome(
            "etag.header",
            &t.name,
            !etag.is_empty() && (version.is_empty() || version == etag),
            format!(
                "ETag: {}",
                if version.is_empty() {
                    "<version>"
                } else {
                    version
                }
            ),
            format!("ETag: {etag:?}, meta.version: {version:?}"),
            Some(&g.request),
        );
        let body = g.json.clone().unwrap_or_default();
        let stale = self
            .client
            .request(
                "PUT",
                &format!("{}/{id}", t.endpoint),
                Some(&body),
                &[("if-match", "W/\"scimlab-probe-stale\"")],
                true,
            )
            .await?;
        self.outcome(
            "etag.if_match",
            &t.name,
            stale.status == 412,
            "412 Precondition Failed",
            stale.brief(),
            Some(&stale.request),
        );
        if etag.is_empty() {
            self.skip("etag.if_none_match", &t.name, "no ETag to send back");
        } else {
            let same = self
                .client
                .request(
                    "GET",
                    &format!("{}/{id}", t.endpoint),
                    None,
                    &[("if-none-match", &etag)],
                    true,
                )
                .await?;
            self.outcome(
                "etag.if_none_match",
                &t.name,
                same.status == 304,
                "304 Not Modified",
                same.brief(),
                Some(&same.request),
            );
        }
        Ok(())
    }

    pub(super) async fn bulk(&mut self) -> Result<(), ClientError> {
        if !self.config_supported("bulk") {
            self.skip("bulk.bulk_id", "", "bulk.supported is false");
            return Ok(());
        }
        let (Some(u), Some(g)) = (self.user_type(), self.group_type()) else {
            self.skip("bulk.bulk_id", "", "the server has no User and Group types");
            return Ok(());
        };
        let user = self.sample(&u, false);
        let mut group = self.sample(&g, false);
        group["members"] = json!([{"value": "bulkId:probe-user"}]);
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": u.endpoint, "bulkId": "probe-user", "data": user},
                {"method": "POST", "path": g.endpoint, "bulkId": "probe-group", "data": group},
            ]
        });
        let a = self.client.send("POST", "/Bulk", Some(&body)).await?;
        let ops = a.at("Operations").as_array().cloned().unwrap_or_default();
        let id_of = |bulk_id: &str| {
            ops.iter()
                .find(|o| o["bulkId"] == bulk_id)
                .and_then(|o| o["location"].as_str())
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_string)
        };
        let (uid, gid) = (id_of("probe-user"), id_of("probe-group"));
        for (id, t) in [(&uid, &u), (&gid, &g)] {
            if let Some(id) = id {
                self.created.push((t.endpoint.clone(), id.clone()));
            }
        }
        let member_ok = match (&uid, &gid) {
            (Some(uid), Some(gid)) => {
                let grp = self.read(&g, gid).await?;
                grp.at("members")
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x["value"] == uid.as_str()))
            }
            _ => false,
        };
        self.outcome(
            "bulk.bulk_id",
            "",
            a.status == 200 && member_ok,
            "200; the group lists the user it references as bulkId:probe-user",
            format!("{}; member resolved: {member_ok}", a.brief()),
            Some(&a.request),
        );
        Ok(())
    }
}
