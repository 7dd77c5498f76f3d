//! Search (RFC 7644 §3.4.2, §3.4.3): filters with every operator, value paths, case
//! rules, paging, sorting, `POST /.search`, and the resources a ListResponse carries.

use super::{Probe, TypeInfo, is_list, q, resources};
use crate::client::{Answer, ClientError};
use crate::schema::urn;
use serde_json::json;

const CHECKS: &[&str] = &[
    "search.eq",
    "search.case_insensitive",
    "search.operators",
    "search.value_path",
    "search.empty",
    "search.paging",
    "search.count_zero",
    "search.max_results",
    "search.cursor",
    "search.cursor_invalid",
    "search.sort",
    "search.post",
    "search.resources_valid",
    "search.invalid_filter",
];

fn names(a: &Answer) -> Vec<String> {
    resources(a)
        .iter()
        .filter_map(|r| r["userName"].as_str().map(str::to_string))
        .collect()
}

fn total(a: &Answer) -> Option<u64> {
    a.at("totalResults").as_u64()
}

impl Probe<'_> {
    async fn list(&self, t: &TypeInfo, query: &str) -> Result<Answer, ClientError> {
        self.client
            .send("GET", &format!("{}?{query}", t.endpoint), None)
            .await
    }

    pub(super) async fn search(&mut self) -> Result<(), ClientError> {
        if !self.config_supported("filter") {
            for c in CHECKS {
                self.skip(c, "", "filter.supported is false");
            }
            return Ok(());
        }
        let Some(u) = self
            .types
            .iter()
            .find(|t| t.schema.eq_ignore_ascii_case(urn::USER))
            .cloned()
        else {
            for c in CHECKS {
                self.skip(c, "", "the server has no User type");
            }
            return Ok(());
        };
        // Three users whose names sort as created: …search-1, -2, -3.
        let stem = format!("{}search-", self.prefix);
        let mut users = Vec::new();
        for i in 1..=3 {
            let mut body = self.sample(&u, true);
            body["userName"] = json!(format!("{stem}{i}"));
            let a = self.create(&u, &body).await?;
            if a.status != 201 {
                for c in CHECKS {
                    self.skip(c, "", "creating users failed");
                }
                return Ok(());
            }
            users.push(a.json.clone().unwrap_or_default());
        }
        let n = |i: usize| format!("{stem}{i}");
        let f = |filter: &str| format!("filter={}&count=50", q(filter));

        let a = self
            .list(&u, &f(&format!("userName eq \"{}\"", n(2))))
            .await?;
        self.outcome(
            "search.eq",
            "",
            is_list(&a) && names(&a) == [n(2)] && total(&a) == Some(1),
            format!("exactly {}", n(2)),
            format!("{:?} (totalResults {:?})", names(&a), total(&a)),
            Some(&a.request),
        );
        let upper = n(2).to_ascii_uppercase();
        let a = self
            .list(&u, &f(&format!("userName eq \"{upper}\"")))
            .await?;
        self.outcome(
            "search.case_insensitive",
            "",
            is_list(&a) && names(&a).len() == 1,
            format!("{upper} finds {}", n(2)),
            format!("{:?}", names(&a)),
            Some(&a.request),
        );
        let a = self
            .list(&u, &f(&format!("userName eq \"{stem}nobody\"")))
            .await?;
        self.outcome(
            "search.empty",
            "",
            is_list(&a) && total(&a) == Some(0) && resources(&a).is_empty(),
            "200, totalResults 0",
            a.brief(),
            Some(&a.request),
        );

        let cases: Vec<(String, usize)> = vec![
            (format!("userName sw \"{stem}\""), 3),
            (
                format!("userName sw \"{stem}\" and userName co \"search-2\""),
                1,
            ),
            (format!("userName sw \"{stem}\" and userName ew \"-3\""), 1),
            (format!("userName sw \"{stem}\" and userName pr"), 3),
            (
                format!("userName sw \"{stem}\" and meta.lastModified gt \"2000-01-01T00:00:00Z\""),
                3,
            ),
            (
                format!("userName sw \"{stem}\" and meta.lastModified ge \"2000-01-01T00:00:00Z\""),
                3,
            ),
            (
                format!("userName sw \"{stem}\" and meta.lastModified lt \"2000-01-01T00:00:00Z\""),
                0,
            ),
            (
                format!("userName sw \"{stem}\" and meta.lastModified le \"2000-01-01T00:00:00Z\""),
                0,
            ),
            (
                format!("userName eq \"{}\" or userName eq \"{}\"", n(1), n(3)),
                2,
            ),
            (
                format!("userName sw \"{stem}\" and not (userName eq \"{}\")", n(1)),
                2,
            ),
            (
                format!(
                    "userName sw \"{stem}\" and (userName eq \"{}\" or userName ne \"{}\")",
                    n(1),
                    n(1)
                ),
                3,
            ),
        ];
        let mut wrong = Vec::new();
        for (filter, want) in &cases {
            let a = self.list(&u, &f(filter)).await?;
            let got = names(&a).iter().filter(|x| x.starts_with(&stem)).count();
            if !is_list(&a) || got != *want {
                wrong.push(format!(
                    "{filter} → {} ({got} of the probe's users, want {want})",
                    a.status
                ));
            }
        }
        self.outcome(
            "search.operators",
            "",
            wrong.is_empty(),
            format!("{} filters with sw, co, ew, pr, gt, ge, lt, le, and, or, not, ne select what they should", cases.len()),
            if wrong.is_empty() { "all selected correctly".to_string() } else { wrong.join("; ") },
            Some(&format!("GET {}?filter=…", u.endpoint)),
        );

        let work = users[1]["emails"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["type"] == "work"))
            .and_then(|x| x["value"].as_str())
            .map(str::to_string);
        match work {
            Some(email) => {
                let a = self
                    .list(
                        &u,
                        &f(&format!(
                            "emails[type eq \"work\" and value eq \"{email}\"]"
                        )),
                    )
                    .await?;
                self.outcome(
                    "search.value_path",
                    "",
                    is_list(&a) && names(&a) == [n(2)],
                    format!("exactly {}", n(2)),
                    format!("{} {:?}", a.status, names(&a)),
                    Some(&a.request),
                );
            }
            None => self.skip("search.value_path", "", "the users have no work email"),
        }

        // The checks below scope their users with `userName sw`; a server that refuses that
        // operator has it reported by search.operators, and these are skipped, not failed.
        let sw = format!("userName sw \"{stem}\"");
        let scope = self.list(&u, &f(&sw)).await?;
        if scope.status == 400 {
            let why = format!(
                "the server refuses the filter these checks scope their users with ({sw}): {}",
                scope.at("detail").as_str().unwrap_or("400")
            );
            for check in [
                "search.paging",
                "search.cursor",
                "search.cursor_invalid",
                "search.count_zero",
                "search.max_results",
                "search.sort",
                "search.resources_valid",
            ] {
                self.skip(check, "", &why);
            }
        } else {
            self.scoped_searches(&u, &sw, &stem).await?;
            self.resources_valid(&u, scope)?;
        }

        let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": format!("userName eq \"{}\"", n(2))});
        let a = self
            .client
            .send("POST", &format!("{}/.search", u.endpoint), Some(&body))
            .await?;
        self.outcome(
            "search.post",
            "",
            is_list(&a) && names(&a) == [n(2)],
            format!("a ListResponse with exactly {}", n(2)),
            format!("{} {:?}", a.status, names(&a)),
            Some(&a.request),
        );

        let a = self.list(&u, "filter=userName%20eq").await?;
        let scim_type = a.at("scimType").as_str().unwrap_or_default().to_string();
        self.outcome(
            "search.invalid_filter",
            "",
            a.status == 400 && scim_type == "invalidFilter",
            "400 with scimType invalidFilter",
            a.brief(),
            Some(&a.request),
        );
        Ok(())
    }

    /// Paging, cursors, count=0, maxResults and sorting over the three users `sw` selects.
    async fn scoped_searches(
        &mut self,
        u: &TypeInfo,
        sw: &str,
        stem: &str,
    ) -> Result<(), ClientError> {
        let u = u.clone();
        let sw = sw.to_string();
        let n = |i: usize| format!("{stem}{i}");
        // Paging through the three users two at a time.
        let p1 = self
            .list(&u, &format!("filter={}&startIndex=1&count=2", q(&sw)))
            .await?;
        let p2 = self
            .list(&u, &format!("filter={}&startIndex=3&count=2", q(&sw)))
            .await?;
        let mut seen = names(&p1);
        seen.extend(names(&p2));
        seen.sort();
        let paged = is_list(&p1)
            && is_list(&p2)
            && p1.at("itemsPerPage") == 2
            && p2.at("itemsPerPage") == 1
            && p1.at("startIndex") == 1
            && p2.at("startIndex") == 3
            && total(&p1) == Some(3)
            && seen == [n(1), n(2), n(3)];
        self.outcome(
            "search.paging",
            "",
            paged,
            "pages of 2 and 1 (startIndex 1 and 3, totalResults 3) covering each user once",
            format!(
                "page 1: itemsPerPage {}, startIndex {}, totalResults {}; page 2: itemsPerPage {}, startIndex {}; users {seen:?}",
                p1.at("itemsPerPage"), p1.at("startIndex"), p1.at("totalResults"), p2.at("itemsPerPage"), p2.at("startIndex")
            ),
            Some(&p1.request),
        );
        self.cursor_paging(&u, &sw, &[n(1), n(2), n(3)]).await?;
        let z = self.list(&u, &format!("filter={}&count=0", q(&sw))).await?;
        self.outcome(
            "search.count_zero",
            "",
            is_list(&z) && total(&z) == Some(3) && resources(&z).is_empty(),
            "totalResults 3 and no Resources",
            z.brief(),
            Some(&z.request),
        );
        match self.spc["filter"]["maxResults"].as_u64() {
            Some(max) => {
                let a = self
                    .list(&u, &format!("filter={}&count={}", q(&sw), max + 1))
                    .await?;
                let items = resources(&a).len() as u64;
                self.outcome(
                    "search.max_results",
                    "",
                    is_list(&a) && items <= max,
                    format!("at most {max} resources (filter.maxResults)"),
                    format!("{items} resources"),
                    Some(&a.request),
                );
            }
            None => self.skip(
                "search.max_results",
                "",
                "filter.maxResults is not advertised",
            ),
        }

        if self.config_supported("sort") {
            let desc = self
                .list(
                    &u,
                    &format!("filter={}&sortBy=userName&sortOrder=descending", q(&sw)),
                )
                .await?;
            let asc = self
                .list(
                    &u,
                    &format!("filter={}&sortBy=userName&sortOrder=ascending", q(&sw)),
                )
                .await?;
            let ok = names(&desc) == [n(3), n(2), n(1)] && names(&asc) == [n(1), n(2), n(3)];
            self.outcome(
                "search.sort",
                "",
                ok,
                "descending 3, 2, 1; ascending 1, 2, 3",
                format!("descending {:?}; ascending {:?}", names(&desc), names(&asc)),
                Some(&desc.request),
            );
        } else {
            self.skip("search.sort", "", "sort.supported is false");
        }

        Ok(())
    }

    /// Every resource of a list answer carries its schemas, id, resourceType and attributes.
    fn resources_valid(&mut self, u: &TypeInfo, all: Answer) -> Result<(), ClientError> {
        let u = u.clone();
        let mut bad = Vec::new();
        for r in resources(&all) {
            let schemas_ok = r["schemas"].as_array().is_some_and(|s| {
                s.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&u.schema))
                })
            });
            let id_ok = r["id"].as_str().is_some_and(|s| !s.is_empty());
            let type_ok = r["meta"]["resourceType"].as_str() == Some(u.name.as_str());
            let lost = self.lost(&u, &json!({"userName": r["userName"]}), &r);
            if !(schemas_ok && id_ok && type_ok && lost.is_empty() && r["userName"].is_string()) {
                bad.push(format!("{}", r["userName"]));
            }
        }
        self.outcome(
            "search.resources_valid",
            "",
            is_list(&all) && bad.is_empty() && !resources(&all).is_empty(),
            "each resource with its schemas, id, meta.resourceType and attributes",
            if bad.is_empty() {
                format!("{} resources valid", resources(&all).len())
            } else {
                format!("invalid: {}", bad.join(", "))
            },
            Some(&all.request),
        );

        Ok(())
    }

    /// RFC 9865 where `/ServiceProviderConfig` advertises `pagination.cursor`: a walk by
    /// `nextCursor` one user at a time, and a made-up cursor.
    async fn cursor_paging(
        &mut self,
        u: &TypeInfo,
        filter: &str,
        want: &[String],
    ) -> Result<(), ClientError> {
        if self.spc["pagination"]["cursor"].as_bool() != Some(true) {
            for c in ["search.cursor", "search.cursor_invalid"] {
                self.skip(c, "", "pagination.cursor is not advertised (RFC 9865 §4)");
            }
            return Ok(());
        }
        let query = format!("filter={}&count=1", q(filter));
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut trouble = None;
        let mut first = None;
        for page in 1.. {
            let a = self
                .list(u, &format!("{query}&cursor={}", q(&cursor)))
                .await?;
            first.get_or_insert_with(|| a.request.clone());
            if !is_list(&a) {
                trouble = Some(format!("page {page}: {}", a.brief()));
                break;
            }
            seen.extend(names(&a));
            match a.at("nextCursor").as_str() {
                Some(c) if !c.is_empty() && page <= want.len() => cursor = c.to_string(),
                Some(_) => {
                    trouble = Some(format!("page {page} still has a nextCursor"));
                    break;
                }
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        self.outcome(
            "search.cursor",
            "",
            trouble.is_none() && sorted == want,
            format!(
                "{} pages of one user by nextCursor, each user once, the last without nextCursor",
                want.len()
            ),
            trouble.unwrap_or_else(|| format!("users {seen:?}")),
            first.as_deref(),
        );
        let a = self
            .list(
                u,
                &format!("{query}&cursor={}", q("scimlab-probe-not-a-cursor")),
            )
            .await?;
        self.outcome(
            "search.cursor_invalid",
            "",
            a.status == 400 && a.at("scimType") == "invalidCursor",
            "400 with scimType invalidCursor",
            a.brief(),
            Some(&a.request),
        );
        Ok(())
    }
}
