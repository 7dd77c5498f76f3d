//! `--as okta|entra|onelogin`: the request sequences those identity providers really send
//! (`shared/reference/idp-behaviour.md` in the project notes, from their documentation and
//! issue trackers), replayed against the server, each step reported as a check.

use super::{Idp, Probe, TypeInfo, is_list, patched, q, resources};
use crate::client::{Answer, ClientError};
use crate::schema::urn;
use serde_json::{Value, json};

const ENTERPRISE: &str = urn::ENTERPRISE_USER;
const ONELOGIN_ENTERPRISE: &str = "urn:scim:schemas:extension:enterprise:2.0";

impl Probe<'_> {
    pub(super) async fn idp(&mut self, idp: Idp) -> Result<(), ClientError> {
        let users = self
            .types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::USER))
            .cloned();
        let groups = self
            .types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::GROUP))
            .cloned();
        let Some(u) = users else {
            let ids: &[&str] = match idp {
                Idp::Okta => &["okta.test_connection"],
                Idp::Entra => &["entra.test_connection"],
                Idp::Onelogin => &["onelogin.enterprise_urn"],
            };
            for id in ids {
                self.skip(id, "", "the server has no User type");
            }
            return Ok(());
        };
        match idp {
            Idp::Okta => self.okta(&u, groups.as_ref()).await,
            Idp::Entra => self.entra(&u, groups.as_ref()).await,
            Idp::Onelogin => self.onelogin(&u).await,
        }
    }

    /// A user body as IdPs send it: userName, name, emails, active.
    fn idp_user(&mut self) -> Value {
        let name = self.unique("idp");
        json!({
            "schemas": [urn::USER],
            "userName": format!("{name}@example.com"),
            "name": {"givenName": "Probe", "familyName": name},
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
            "displayName": format!("Probe {name}"),
            "active": true
        })
    }

    async fn okta(&mut self, u: &TypeInfo, g: Option<&TypeInfo>) -> Result<(), ClientError> {
        let a = self
            .client
            .send("GET", &format!("{}?startIndex=1&count=2", u.endpoint), None)
            .await?;
        self.outcome(
            "okta.test_connection",
            "",
            is_list(&a),
            "200 ListResponse",
            a.brief(),
            Some(&a.request),
        );

        let body = self.idp_user();
        let user_name = body["userName"].as_str().unwrap_or_default().to_string();
        let look = |name: &str| {
            format!(
                "{}?filter={}&startIndex=1&count=100",
                u.endpoint,
                q(&format!("userName eq \"{name}\""))
            )
        };
        let miss = self.client.send("GET", &look(&user_name), None).await?;
        let created = self
            .create_with(u, &body, &[("content-type", "application/json")])
            .await?;
        self.outcome(
            "okta.create_json",
            "",
            created.status == 201 && created.at("id").is_string(),
            "201 with the user",
            created.brief(),
            Some(&created.request),
        );
        let hit = self
            .client
            .send("GET", &look(&user_name.to_ascii_uppercase()), None)
            .await?;
        self.outcome(
            "okta.lookup",
            "",
            is_list(&miss)
                && miss.at("totalResults") == 0
                && is_list(&hit)
                && resources(&hit).len() == 1,
            "before the create an empty ListResponse; after it the user, whatever the case",
            format!("before: {}; after: {}", miss.brief(), hit.brief()),
            Some(&hit.request),
        );
        let Some(id) = created.at("id").as_str().map(str::to_string) else {
            for c in ["okta.put", "okta.deactivate"] {
                self.skip(c, "", "the create failed");
            }
            return self.okta_groups(u, g, None).await;
        };
        let path = format!("{}/{id}", u.endpoint);
        let mut put = created.json.clone().unwrap_or_default();
        put["name"]["familyName"] = json!("Renamed");
        let a = self.client.send("PUT", &path, Some(&put)).await?;
        let after = self.client.send("GET", &path, None).await?;
        self.outcome(
            "okta.put",
            "",
            a.status == 200 && after.at("name")["familyName"] == "Renamed",
            "200, then name.familyName = \"Renamed\"",
            format!("{}; then name = {}", a.brief(), after.at("name")),
            Some(&a.request),
        );
        let (a, after) = self
            .patch_then_get(
                &path,
                json!([{"op": "replace", "value": {"active": false}}]),
            )
            .await?;
        self.outcome(
            "okta.deactivate",
            "",
            patched(&a) && after.at("active") == false,
            "200 or 204, then active = false",
            format!("{}; then active = {}", a.brief(), after.at("active")),
            Some(&a.request),
        );
        self.okta_groups(u, g, Some(&id)).await
    }

    async fn okta_groups(
        &mut self,
        _u: &TypeInfo,
        g: Option<&TypeInfo>,
        member: Option<&str>,
    ) -> Result<(), ClientError> {
        let Some(g) = g else {
            self.skip("okta.group_rename", "", "the server has no Group type");
            self.skip("okta.members", "", "the server has no Group type");
            return Ok(());
        };
        let name = self.unique("okta-group");
        let created = self
            .create_with(
                g,
                &json!({"schemas": [urn::GROUP], "displayName": name}),
                &[("content-type", "application/json")],
            )
            .await?;
        let Some(gid) = created.at("id").as_str().map(str::to_string) else {
            self.skip("okta.group_rename", "", "creating a group failed");
            self.skip("okta.members", "", "creating a group failed");
            return Ok(());
        };
        let path = format!("{}/{gid}", g.endpoint);
        let renamed = format!("{name}-renamed");
        let (a, after) = self
            .patch_then_get(
                &path,
                json!([{"op": "replace", "value": {"id": gid, "displayName": renamed}}]),
            )
            .await?;
        self.outcome(
            "okta.group_rename",
            "",
            patched(&a) && after.at("displayName").as_str() == Some(&renamed),
            format!("200 or 204, then displayName = {renamed:?}"),
            format!(
                "{}; then displayName = {}",
                a.brief(),
                after.at("displayName")
            ),
            Some(&a.request),
        );
        match member {
            Some(uid) => {
                let (add, listed) = self.patch_then_get(&path, json!([{"op": "add", "path": "members", "value": [{"value": uid, "display": "Probe"}]}])).await?;
                let (remove, gone) = self
                    .patch_then_get(
                        &path,
                        json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
                    )
                    .await?;
                let has = |a: &Answer| {
                    a.at("members")
                        .as_array()
                        .is_some_and(|m| m.iter().any(|x| x["value"] == uid))
                };
                self.outcome(
                    "okta.members",
                    "",
                    patched(&add) && has(&listed) && patched(&remove) && !has(&gone),
                    "the member is listed after the add and gone after the removal",
                    format!(
                        "add {} (listed {}), remove {} (gone {})",
                        add.status,
                        has(&listed),
                        remove.status,
                        !has(&gone)
                    ),
                    Some(&add.request),
                );
            }
            None => self.skip("okta.members", "", "no user to add"),
        }
        Ok(())
    }

    async fn entra(&mut self, u: &TypeInfo, g: Option<&TypeInfo>) -> Result<(), ClientError> {
        let random = uuid::Uuid::new_v4().to_string();
        let a = self
            .client
            .send(
                "GET",
                &format!(
                    "{}?filter={}",
                    u.endpoint,
                    q(&format!("userName eq \"{random}\""))
                ),
                None,
            )
            .await?;
        self.outcome(
            "entra.test_connection",
            "",
            is_list(&a) && a.at("totalResults") == 0,
            "200 with totalResults 0",
            a.brief(),
            Some(&a.request),
        );
        let mut body = self.idp_user();
        body["externalId"] = json!(self.unique("ext"));
        let created = self.create(u, &body).await?;
        let Some(id) = created.at("id").as_str().map(str::to_string) else {
            for c in [
                "entra.capitalized_ops",
                "entra.boolean_strings",
                "entra.dotted_keys",
                "entra.work_email",
                "entra.group_lookup",
                "entra.member_remove",
            ] {
                self.skip(c, "", "creating a user failed");
            }
            return Ok(());
        };
        let path = format!("{}/{id}", u.endpoint);
        let display = self.unique("entra");
        let (a, after) = self
            .patch_then_get(
                &path,
                json!([{"op": "Replace", "path": "displayName", "value": display}]),
            )
            .await?;
        self.outcome(
            "entra.capitalized_ops",
            "",
            patched(&a) && after.at("displayName").as_str() == Some(&display),
            format!("200 or 204, then displayName = {display:?}"),
            format!(
                "{}; then displayName = {}",
                a.brief(),
                after.at("displayName")
            ),
            Some(&a.request),
        );
        let (a, after) = self
            .patch_then_get(
                &path,
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await?;
        self.outcome(
            "entra.boolean_strings",
            "",
            patched(&a) && after.at("active") == false,
            "200 or 204, then active = false",
            format!("{}; then active = {}", a.brief(), after.at("active")),
            Some(&a.request),
        );
        let has_enterprise = u
            .extensions
            .iter()
            .any(|(e, _)| e.eq_ignore_ascii_case(ENTERPRISE));
        let mut value = json!({"name.givenName": "Dotted"});
        if has_enterprise {
            value[format!("{ENTERPRISE}:employeeNumber")] = json!("4711");
        }
        let (a, after) = self
            .patch_then_get(&path, json!([{"op": "replace", "value": value}]))
            .await?;
        let applied = after.at("name")["givenName"] == "Dotted"
            && (!has_enterprise || after.at(ENTERPRISE)["employeeNumber"] == "4711");
        self.outcome(
            "entra.dotted_keys",
            "",
            patched(&a) && applied,
            "200 or 204, then name.givenName (and employeeNumber) set",
            format!("{}; then name = {}", a.brief(), after.at("name")),
            Some(&a.request),
        );
        // A user without emails gets a work email by value-filter path.
        let mut bare = self.idp_user();
        if let Some(o) = bare.as_object_mut() {
            o.remove("emails");
        }
        let b = self.create(u, &bare).await?;
        match b.at("id").as_str().map(str::to_string) {
            Some(bid) => {
                let bpath = format!("{}/{bid}", u.endpoint);
                let mail = format!("{}@example.com", self.unique("entra-mail"));
                let (a, after) = self.patch_then_get(&bpath, json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": mail}])).await?;
                let got = after.at("emails").as_array().is_some_and(|e| {
                    e.iter()
                        .any(|x| x["type"] == "work" && x["value"] == mail.as_str())
                });
                self.outcome(
                    "entra.work_email",
                    "",
                    patched(&a) && got,
                    format!("200 or 204, then a work email {mail}"),
                    format!("{}; then emails = {}", a.brief(), after.at("emails")),
                    Some(&a.request),
                );
            }
            None => self.skip(
                "entra.work_email",
                "",
                "creating a user without emails failed",
            ),
        }
        let Some(g) = g else {
            self.skip("entra.group_lookup", "", "the server has no Group type");
            self.skip("entra.member_remove", "", "the server has no Group type");
            return Ok(());
        };
        let name = self.unique("entra-group");
        let grp = self
            .create(
                g,
                &json!({"schemas": [urn::GROUP], "displayName": name, "members": [{"value": id}]}),
            )
            .await?;
        let a = self
            .client
            .send(
                "GET",
                &format!(
                    "{}?excludedAttributes=members&filter={}",
                    g.endpoint,
                    q(&format!("displayName eq \"{name}\""))
                ),
                None,
            )
            .await?;
        let found = resources(&a);
        self.outcome(
            "entra.group_lookup",
            "",
            is_list(&a) && found.len() == 1 && found[0].get("members").is_none(),
            "exactly the group, without members",
            a.brief(),
            Some(&a.request),
        );
        match grp.at("id").as_str().map(str::to_string) {
            Some(gid) => {
                let gpath = format!("{}/{gid}", g.endpoint);
                let (a, after) = self
                    .patch_then_get(
                        &gpath,
                        json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}]),
                    )
                    .await?;
                let still = after
                    .at("members")
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x["value"] == id.as_str()));
                self.outcome(
                    "entra.member_remove",
                    "",
                    patched(&a) && !still,
                    "200 or 204, then the member is gone",
                    format!("{}; member still listed: {still}", a.brief()),
                    Some(&a.request),
                );
            }
            None => self.skip("entra.member_remove", "", "creating a group failed"),
        }
        Ok(())
    }

    async fn onelogin(&mut self, u: &TypeInfo) -> Result<(), ClientError> {
        let mut body = self.idp_user();
        body["schemas"] = json!([urn::USER, ONELOGIN_ENTERPRISE]);
        body[ONELOGIN_ENTERPRISE] = json!({"department": "Probing"});
        let a = self.create(u, &body).await?;
        self.outcome(
            "onelogin.enterprise_urn",
            "",
            a.status == 201,
            "201",
            a.brief(),
            Some(&a.request),
        );
        Ok(())
    }
}
