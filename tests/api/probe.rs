//! `scimlab probe` against real servers: scimlab's shipped servers pass in strict mode, and a
//! deviation-injecting proxy in front of a scimlab server breaks one thing at a time. Every
//! deviation must be caught by the checks it names, and every check of the catalogue must fail
//! under at least one deviation (a check that cannot fail proves nothing). The test prints
//! both mappings.

use crate::common;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::TestApp;
use scimlab::probe::{self, Idp, Options, Status};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const TARGET: &str = r#"
id: target
tokens: [tok-target]
resource_types:
  User:
    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
    attributes:
      region: { type: string, canonical_values: [AMER, EMEA] }
      badge: { type: string, mutability: immutable }
      costCentre: { type: string, uniqueness: server }
  Group: {}
  Agent: {}
compat: [okta, entra, onelogin]
validation:
  strict: true
pagination: { cursor: true }
"#;

/// A request as the proxy sees it: path below the SCIM base, query, headers, body.
struct Req {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    fn set_json(&mut self, v: &Value) {
        self.body = v.to_string().into_bytes();
    }
    fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }
    /// Drops query parameters named `names`.
    fn drop_params(&mut self, names: &[&str]) {
        self.query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(self.query.as_bytes())
                    .filter(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n))),
            )
            .finish();
    }
    fn set_param(&mut self, name: &str, value: &str) {
        self.drop_params(&[name]);
        let extra = form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        self.query = if self.query.is_empty() {
            extra
        } else {
            format!("{}&{extra}", self.query)
        };
    }
    fn is(&self, method: &str, path_prefix: &str) -> bool {
        self.method.as_str() == method && self.path.starts_with(path_prefix)
    }
}

impl Resp {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    fn set_json(&mut self, v: &Value) {
        self.body = v.to_string().into_bytes();
        self.headers.remove("content-length");
    }
    fn new(status: u16, body: Value) -> Resp {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/scim+json"),
        );
        Resp {
            status,
            headers,
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
        }
    }
    /// Edits the JSON body in place.
    fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        if let Some(mut v) = self.json() {
            f(&mut v);
            self.set_json(&v);
        }
    }
}

fn nothing(_: &mut Req) -> Option<Resp> {
    None
}
fn unchanged(_: &Req, _: &mut Resp) {}

struct Deviation {
    name: &'static str,
    /// Checks that must fail under it.
    catches: &'static [&'static str],
    request: fn(&mut Req) -> Option<Resp>,
    response: fn(&Req, &mut Resp),
}

const fn req(
    name: &'static str,
    catches: &'static [&'static str],
    request: fn(&mut Req) -> Option<Resp>,
) -> Deviation {
    Deviation {
        name,
        catches,
        request,
        response: unchanged,
    }
}

const fn resp(
    name: &'static str,
    catches: &'static [&'static str],
    response: fn(&Req, &mut Resp),
) -> Deviation {
    Deviation {
        name,
        catches,
        request: nothing,
        response,
    }
}

fn empty_list() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []})
}

fn has_op(r: &Req, pred: impl Fn(&Value) -> bool) -> bool {
    r.method == Method::PATCH
        && r.json()
            .and_then(|b| b["Operations"].as_array().cloned())
            .is_some_and(|ops| ops.iter().any(pred))
}

fn deviations() -> Vec<Deviation> {
    vec![
        resp("nextCursor dropped", &["search.cursor"], |_, r| {
            r.edit(|v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("nextCursor");
                }
            })
        }),
        req(
            "made-up cursors accepted",
            &["search.cursor_invalid"],
            |q| {
                if q.param("cursor")
                    .is_some_and(|c| c.contains("not-a-cursor"))
                {
                    q.set_param("cursor", "");
                }
                None
            },
        ),
        resp(
            "application/json responses",
            &["http.content_type"],
            |_, r| {
                if r.headers.contains_key("content-type") {
                    r.headers
                        .insert("content-type", HeaderValue::from_static("application/json"));
                }
            },
        ),
        resp("no Location header", &["lifecycle.location"], |_, r| {
            r.headers.remove("location");
        }),
        resp(
            "200 instead of 201 on create",
            &["lifecycle.create", "okta.create_json", "lifecycle.burst"],
            |q, r| {
                if q.method == Method::POST && r.status == 201 {
                    r.status = 200;
                }
            },
        ),
        resp("no ETag", &["etag.header"], |_, r| {
            r.headers.remove("etag");
        }),
        req("If-Match ignored", &["etag.if_match"], |q| {
            q.headers.remove("if-match");
            None
        }),
        req("If-None-Match ignored", &["etag.if_none_match"], |q| {
            q.headers.remove("if-none-match");
            None
        }),
        req(
            "case-sensitive userName filter",
            &["search.case_insensitive", "okta.lookup"],
            |q| {
                let f = q.param("filter")?;
                (f.contains("userName eq")
                    && f != f.to_ascii_lowercase()
                    && f.split('"')
                        .nth(1)
                        .is_some_and(|v| v != v.to_ascii_lowercase()))
                .then(|| Resp::new(200, empty_list()))
            },
        ),
        req(
            "filter ignored",
            &[
                "search.eq",
                "search.operators",
                "search.empty",
                "entra.test_connection",
            ],
            |q| {
                q.drop_params(&["filter"]);
                None
            },
        ),
        req(
            "extension attributes dropped on PUT",
            &["lifecycle.put"],
            |q| {
                if q.method == Method::PUT
                    && let Some(mut v) = q.json()
                {
                    if let Some(o) = v.as_object_mut() {
                        o.retain(|k, _| {
                            !k.starts_with("urn:")
                                || k == "urn:ietf:params:scim:schemas:core:2.0:User"
                        });
                    }
                    q.set_json(&v);
                }
                None
            },
        ),
        req("PUT ignored", &["lifecycle.put", "okta.put"], |q| {
            if q.method == Method::PUT && q.headers.get("if-match").is_none() {
                q.method = Method::GET;
                q.body.clear();
            }
            None
        }),
        req(
            "non-atomic PATCH (only the first operation)",
            &["patch.atomic"],
            |q| {
                if q.method == Method::PATCH
                    && let Some(mut v) = q.json()
                    && let Some(ops) = v["Operations"].as_array_mut()
                    && ops.len() > 1
                {
                    ops.truncate(1);
                    q.set_json(&v);
                }
                None
            },
        ),
        resp("error bodies without schemas", &["errors.body"], |_, r| {
            if r.status >= 400 {
                r.edit(|v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("schemas");
                    }
                });
            }
        }),
        req("paging off by one", &["search.paging"], |q| {
            if let Some(s) = q.param("startIndex").and_then(|s| s.parse::<i64>().ok()) {
                q.set_param("startIndex", &(s + 1).to_string());
            }
            None
        }),
        req("count=0 ignored", &["search.count_zero"], |q| {
            if q.param("count").as_deref() == Some("0") {
                q.drop_params(&["count"]);
            }
            None
        }),
        resp(
            "maxResults not honoured",
            &["search.max_results"],
            |q, r| {
                if q.path == "/ServiceProviderConfig" {
                    r.edit(|v| v["filter"]["maxResults"] = json!(1));
                }
            },
        ),
        req("sorting ignored", &["search.sort"], |q| {
            q.drop_params(&["sortBy", "sortOrder"]);
            None
        }),
        req("no POST /.search", &["search.post"], |q| {
            q.path.ends_with("/.search").then(|| Resp::new(404, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404"})))
        }),
        resp(
            "unknown id answers 200",
            &["errors.not_found", "lifecycle.delete"],
            |q, r| {
                if q.method == Method::GET && r.status == 404 {
                    r.status = 200;
                    r.set_json(&json!({}));
                }
            },
        ),
        resp(
            "duplicates answer 400",
            &["errors.uniqueness", "contract.unique"],
            |_, r| {
                if r.status == 409 {
                    r.status = 400;
                    r.edit(|v| v["status"] = json!("400"));
                }
            },
        ),
        resp(
            "malformed JSON answers 500",
            &["errors.invalid_syntax"],
            |_, r| {
                if r.json().is_some_and(|v| v["scimType"] == "invalidSyntax") {
                    r.status = 500;
                    r.edit(|v| v["status"] = json!("500"));
                }
            },
        ),
        resp(
            "missing required attribute: wrong scimType",
            &["errors.invalid_value"],
            |q, r| {
                if q.method == Method::POST
                    && r.json().is_some_and(|v| v["scimType"] == "invalidValue")
                {
                    r.edit(|v| v["scimType"] = json!("invalidSyntax"));
                }
            },
        ),
        req(
            "no authentication required",
            &["errors.unauthorized"],
            |q| {
                q.headers
                    .entry("authorization")
                    .or_insert(HeaderValue::from_static("Bearer tok-target"));
                None
            },
        ),
        req("oversized Bulk accepted", &["errors.too_large"], |q| {
            (q.path == "/Bulk" && q.body.len() > 4 << 20).then(|| Resp::new(200, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": []})))
        }),
        resp(
            "malformed filter answers 500",
            &["search.invalid_filter"],
            |_, r| {
                if r.json().is_some_and(|v| v["scimType"] == "invalidFilter") {
                    r.status = 500;
                }
            },
        ),
        resp(
            "a filter matching nothing answers 404",
            &["search.empty", "okta.lookup", "entra.test_connection"],
            |q, r| {
                if q.param("filter").is_some() && r.json().is_some_and(|v| v["totalResults"] == 0) {
                    r.status = 404;
                    r.set_json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "no such user"}));
                }
            },
        ),
        req(
            "value paths in filters ignored",
            &["search.value_path"],
            |q| {
                q.param("filter")
                    .is_some_and(|f| f.contains('['))
                    .then(|| Resp::new(200, empty_list()))
            },
        ),
        req(
            "membership PATCHes ignored",
            &["groups.members", "okta.members"],
            |q| {
                (q.is("PATCH", "/Groups/")
                    && q.json()
                        .is_some_and(|b| b.to_string().contains("\"members")))
                .then(|| Resp::new(204, Value::Null))
            },
        ),
        resp("User.groups wrong", &["groups.user_groups"], |q, r| {
            if q.is("GET", "/Users/") {
                r.edit(|v| {
                    if v.get("groups").is_some() {
                        v["groups"] = json!([{"value": "not-the-group"}]);
                    }
                });
            }
        }),
        resp(
            "meta.location and resourceType missing",
            &["lifecycle.meta"],
            |_, r| {
                r.edit(|v| {
                    if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
                        m.remove("location");
                        m.remove("resourceType");
                    }
                });
            },
        ),
        resp(
            "incomplete ServiceProviderConfig",
            &["discovery.spc.shape"],
            |q, r| {
                if q.path == "/ServiceProviderConfig" {
                    r.edit(|v| {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("changePassword");
                        }
                    });
                }
            },
        ),
        req("no ServiceProviderConfig", &["discovery.spc"], |q| {
            (q.path == "/ServiceProviderConfig").then(|| Resp::new(404, Value::Null))
        }),
        resp(
            "malformed ResourceTypes",
            &["discovery.resource_types"],
            |q, r| {
                if q.path == "/ResourceTypes" {
                    r.edit(|v| v["Resources"][0]["endpoint"] = json!("Users"));
                }
            },
        ),
        resp(
            "no /Schemas",
            &["discovery.schemas", "discovery.schemas.complete"],
            |q, r| {
                if q.path == "/Schemas" {
                    r.status = 500;
                    r.set_json(&json!({}));
                }
            },
        ),
        resp(
            "malformed schema",
            &["discovery.schemas.wellformed"],
            |q, r| {
                if q.path == "/Schemas" {
                    r.edit(|v| v["Resources"][0]["attributes"][0]["type"] = json!("strng"));
                }
            },
        ),
        resp(
            "an extension schema not served",
            &["discovery.schemas.complete"],
            |q, r| {
                if q.path == "/Schemas" {
                    r.edit(|v| {
                        if let Some(list) = v["Resources"].as_array_mut() {
                            list.retain(|s| {
                                !s["id"].as_str().unwrap_or_default().contains("enterprise")
                            });
                        }
                    });
                }
            },
        ),
        resp("GET drops an attribute", &["lifecycle.get"], |q, r| {
            if q.method == Method::GET && q.path.starts_with("/Users/") {
                r.edit(|v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("nickName");
                    }
                });
            }
        }),
        req(
            "PATCH not implemented",
            &[
                "lifecycle.patch",
                "patch.pathless",
                "patch.value_filter",
                "patch.add_multi",
                "patch.remove_filter",
            ],
            |q| {
                (q.method == Method::PATCH).then(|| Resp::new(501, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "501"})))
            },
        ),
        req(
            "path-less PATCH ignored",
            &[
                "patch.pathless",
                "okta.deactivate",
                "entra.dotted_keys",
                "okta.group_rename",
            ],
            |q| has_op(q, |o| o.get("path").is_none()).then(|| Resp::new(204, Value::Null)),
        ),
        req(
            "value-filter PATCH paths refused",
            &[
                "patch.value_filter",
                "patch.remove_filter",
                "entra.work_email",
            ],
            |q| {
                has_op(q, |o| o["path"].as_str().is_some_and(|p| p.contains('[') && !p.starts_with("members"))).then(|| Resp::new(400, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidPath"})))
            },
        ),
        req("add replaces", &["patch.add_multi"], |q| {
            if q.method == Method::PATCH
                && q.path.starts_with("/Users/")
                && let Some(mut v) = q.json()
            {
                for op in v["Operations"].as_array_mut().into_iter().flatten() {
                    if op["op"] == "add" {
                        op["op"] = json!("replace");
                    }
                }
                q.set_json(&v);
            }
            None
        }),
        req(
            "DELETE ignored",
            &["lifecycle.delete", "lifecycle.burst"],
            |q| (q.method == Method::DELETE).then(|| Resp::new(204, Value::Null)),
        ),
        req("bulkId references unresolved", &["bulk.bulk_id"], |q| {
            if q.path == "/Bulk" && q.body.len() < 1 << 20 {
                let text = String::from_utf8_lossy(&q.body).replace("bulkId:", "unknown:");
                q.body = text.into_bytes();
            }
            None
        }),
        req(
            "application/json bodies refused",
            &["okta.create_json"],
            |q| {
                (q.method == Method::POST
                    && q.headers
                        .get("content-type")
                        .is_some_and(|c| c == "application/json"))
                .then(|| Resp::new(415, Value::Null))
            },
        ),
        req(
            "capitalised ops refused",
            &[
                "entra.capitalized_ops",
                "entra.boolean_strings",
                "entra.member_remove",
            ],
            |q| {
                has_op(q, |o| o["op"].as_str().is_some_and(|op| op.starts_with(char::is_uppercase))).then(|| Resp::new(400, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidSyntax"})))
            },
        ),
        req(
            "\"False\" strings refused",
            &["entra.boolean_strings"],
            |q| {
                has_op(q, |o| o["value"] == "False").then(|| Resp::new(400, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidValue"})))
            },
        ),
        req("excludedAttributes ignored", &["entra.group_lookup"], |q| {
            q.drop_params(&["excludedAttributes"]);
            None
        }),
        req(
            "OneLogin's URN refused",
            &["onelogin.enterprise_urn"],
            |q| {
                (q.method == Method::POST && String::from_utf8_lossy(&q.body).contains("urn:scim:schemas:extension:enterprise:2.0\"")).then(|| Resp::new(400, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidSyntax"})))
            },
        ),
        req("Test Connection fails", &["okta.test_connection"], |q| {
            (q.param("count").as_deref() == Some("2") && q.param("filter").is_none())
                .then(|| Resp::new(500, Value::Null))
        }),
        req(
            "non-canonical values accepted",
            &["contract.canonical"],
            |q| {
                if q.method == Method::POST {
                    let text = String::from_utf8_lossy(&q.body)
                        .replace("scimlab-probe-not-canonical", "AMER");
                    q.body = text.into_bytes();
                }
                None
            },
        ),
        resp(
            "Agent not advertised",
            &["contract.resource_types"],
            |q, r| {
                if q.path == "/ResourceTypes" {
                    r.edit(|v| {
                        if let Some(list) = v["Resources"].as_array_mut() {
                            list.retain(|t| t["name"] != "Agent");
                        }
                    });
                }
            },
        ),
        resp(
            "an attribute served with other characteristics",
            &["contract.attributes"],
            |q, r| {
                if q.path == "/Schemas" {
                    r.edit(|v| {
                        for s in v["Resources"].as_array_mut().into_iter().flatten() {
                            for a in s["attributes"].as_array_mut().into_iter().flatten() {
                                if a["name"] == "userName" {
                                    a["caseExact"] = json!(true);
                                }
                            }
                        }
                    });
                }
            },
        ),
        resp(
            "immutable values changeable",
            &["contract.immutable"],
            |q, r| {
                if q.method == Method::PUT
                    && r.json().is_some_and(|v| v["scimType"] == "mutability")
                {
                    r.status = 200;
                    r.body = q.body.clone();
                }
            },
        ),
        resp(
            "required attributes not enforced",
            &["contract.required", "errors.invalid_value"],
            |q, r| {
                if q.method == Method::POST
                    && r.status == 400
                    && r.json().is_some_and(|v| {
                        v["detail"].as_str().is_some_and(|d| d.contains("required"))
                    })
                {
                    r.status = 201;
                    r.set_json(&json!({"id": "fake", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}));
                }
            },
        ),
        resp(
            "list resources without schemas",
            &["search.resources_valid"],
            |_, r| {
                r.edit(|v| {
                    for res in v["Resources"].as_array_mut().into_iter().flatten() {
                        if let Some(o) = res.as_object_mut() {
                            o.remove("schemas");
                        }
                    }
                });
            },
        ),
        req(
            "a burst of Agent creates fails",
            &["lifecycle.burst"],
            |q| {
                (q.method == Method::POST && q.path == "/Agents" && q.body.len() < 400)
                    .then(|| Resp::new(503, Value::Null))
            },
        ),
    ]
}

/// A proxy in front of `target` applying `dev`.
async fn proxy(target: String, dev: Option<usize>) -> String {
    let client = common::http().build().unwrap();
    let devs = Arc::new(deviations());
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (client, target, devs) = (client.clone(), target.clone(), devs.clone());
            async move {
                let mut q = Req {
                    method,
                    path: uri.path().to_string(),
                    query: uri.query().unwrap_or_default().to_string(),
                    headers,
                    body: body.to_vec(),
                };
                let d = dev.map(|i| &devs[i]);
                let early = d.and_then(|d| (d.request)(&mut q));
                let mut r = match early {
                    Some(r) => r,
                    None => {
                        let url = if q.query.is_empty() {
                            format!("{target}{}", q.path)
                        } else {
                            format!("{target}{}?{}", q.path, q.query)
                        };
                        let mut headers = q.headers.clone();
                        headers.remove("host");
                        headers.remove("content-length");
                        let a = client
                            .request(q.method.clone(), url)
                            .headers(headers)
                            .body(q.body.clone())
                            .send()
                            .await
                            .unwrap();
                        let status = a.status().as_u16();
                        let mut headers = a.headers().clone();
                        headers.remove("content-length");
                        headers.remove("transfer-encoding");
                        Resp {
                            status,
                            headers,
                            body: a.bytes().await.unwrap().to_vec(),
                        }
                    }
                };
                if let Some(d) = d {
                    (d.response)(&q, &mut r);
                }
                let mut out = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
                for (k, v) in &r.headers {
                    out.headers_mut().insert(k, v.clone());
                }
                out
            }
        },
    );
    let app = app.layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn options(base: &str, contract: &Arc<scimlab::model::ServerModel>) -> Options {
    let mut o = Options::new(base);
    o.auth.bearer = Some("tok-target".into());
    o.idps = vec![Idp::Okta, Idp::Entra, Idp::Onelogin];
    o.contract = Some(contract.clone());
    o
}

async fn failed(opts: &Options) -> BTreeSet<String> {
    let report = probe::run(opts, &mut |_| {}).await.unwrap();
    report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_deviation_is_caught_and_every_check_can_fail() {
    let app = TestApp::spawn(&[("target.yaml", TARGET)]).await;
    let contract =
        scimlab::model::compile_file(&app.servers_dir().join("target.yaml"), &app.profiles_dir())
            .unwrap();
    let target = app.base("target");
    // Through the proxy without a deviation: nothing fails.
    let clean = proxy(target.clone(), None).await;
    let report = probe::run(&options(&clean, &contract), &mut |_| {})
        .await
        .unwrap();
    let fails: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .collect();
    assert!(fails.is_empty(), "{}", report.text(false));
    let never_skipped: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skip)
        .map(|r| r.id.clone())
        .collect();
    assert!(
        never_skipped.is_empty(),
        "every check applies to this server: {never_skipped:?}"
    );

    let devs = deviations();
    let mut caught_by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut misses = Vec::new();
    for chunk in (0..devs.len()).collect::<Vec<_>>().chunks(4) {
        let mut runs = Vec::new();
        for &i in chunk {
            let (target, contract) = (target.clone(), contract.clone());
            runs.push(tokio::spawn(async move {
                let base = proxy(target, Some(i)).await;
                (i, failed(&options(&base, &contract)).await)
            }));
        }
        for r in runs {
            let (i, fails) = r.await.unwrap();
            let d = &devs[i];
            eprintln!("deviation {:?} → failed {:?}", d.name, fails);
            for want in d.catches {
                if !fails.contains(*want) {
                    misses.push(format!("{:?} should fail {want}; failed {fails:?}", d.name));
                }
            }
            for f in fails {
                caught_by.entry(f).or_default().push(d.name);
            }
        }
    }
    eprintln!("\ncheck → deviations that fail it:");
    for c in probe::catalogue::CHECKS {
        eprintln!(
            "  {} ← {:?}",
            c.id,
            caught_by.get(c.id).cloned().unwrap_or_default()
        );
    }
    assert!(
        misses.is_empty(),
        "deviations not caught:\n{}",
        misses.join("\n")
    );
    let never: Vec<&str> = probe::catalogue::CHECKS
        .iter()
        .map(|c| c.id)
        .filter(|id| !caught_by.contains_key(*id))
        .collect();
    assert!(
        never.is_empty(),
        "checks that no deviation made fail: {never:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_servers_pass_in_strict_mode() {
    let app = TestApp::shipped().await;
    for (id, token, idps) in [
        ("okta-sandbox", "dev-token-okta", vec![]),
        ("entra", "dev-token-entra", vec![Idp::Entra]),
        ("agents", "dev-token-agents", vec![]),
        ("devices", "dev-token-devices", vec![]),
    ] {
        let mut o = Options::new(&app.base(id));
        o.auth.bearer = Some(token.into());
        o.idps = idps;
        let report = probe::run(&o, &mut |_| {}).await.unwrap();
        assert!(report.ok(), "{id}:\n{}", report.text(false));
        assert!(report.summary.passed > 40, "{id}: {:?}", report.summary);
        // Everything the run created is gone again.
        let filter = common::urlencode(&format!("userName sw \"{}\"", report.run_prefix));
        let users: Value = app
            .client
            .get(format!("{}/Users?filter={filter}", app.base(id)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(users["totalResults"], 0, "{id}: {users}");
    }
}

/// The index of the deviation named `name`.
fn deviation(name: &str) -> usize {
    deviations()
        .iter()
        .position(|d| d.name == name)
        .unwrap_or_else(|| panic!("no deviation {name:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn compat_forgives_the_listed_deviations_only() {
    let app = TestApp::spawn(&[("target.yaml", TARGET)]).await;
    let base = proxy(
        app.base("target"),
        Some(deviation("application/json responses")),
    )
    .await;
    let mut o = Options::new(&base);
    o.auth.bearer = Some("tok-target".into());
    let strict = probe::run(&o, &mut |_| {}).await.unwrap();
    assert!(!strict.ok());
    o.compat = true;
    let compat = probe::run(&o, &mut |_| {}).await.unwrap();
    assert!(compat.ok(), "{}", compat.text(false));
    assert_eq!(compat.mode, "compat");
    let warned = compat
        .results
        .iter()
        .find(|r| r.id == "http.content_type")
        .unwrap();
    assert_eq!(warned.status, Status::Warn);
    assert!(
        warned.got.contains("forgiven by --compat"),
        "{}",
        warned.got
    );
    // A deviation that breaks compliant clients stays a failure in compat mode.
    let base = proxy(
        app.base("target"),
        Some(deviation("case-sensitive userName filter")),
    )
    .await;
    let mut o = Options::new(&base);
    o.auth.bearer = Some("tok-target".into());
    o.compat = true;
    let report = probe::run(&o, &mut |_| {}).await.unwrap();
    let r = report
        .results
        .iter()
        .find(|r| r.id == "search.case_insensitive")
        .unwrap();
    assert_eq!(r.status, Status::Fail);
    // The fix summary puts it first and says how many failures it explains.
    assert_eq!(report.fixes[0].priority, "P1");
    assert!(
        report.fixes[0]
            .checks
            .contains(&"search.case_insensitive".to_string())
    );
}

fn scimlab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_needs_consent_reports_json_and_junit_and_never_prints_credentials() {
    let app = TestApp::spawn(&[("target.yaml", TARGET)]).await;
    let base = app.base("target");
    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || scimlab(&["probe", &base, "--token", "tok-target"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--i-accept-side-effects"));
    let junit = app.dir.path().join("probe.xml");
    let (base2, junit2) = (base.clone(), junit.clone());
    let out = tokio::task::spawn_blocking(move || {
        scimlab(&[
            "probe",
            &base2,
            "--token",
            "tok-target",
            "--i-accept-side-effects",
            "--json",
            "--junit",
            junit2.to_str().unwrap(),
            "--as",
            "okta,entra",
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["version"], 1);
    assert_eq!(report["summary"]["failed"], 0);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["phase"] == "okta")
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites") && xml.contains("scimlab.probe.search"),
        "{xml}"
    );
    assert!(!xml.contains("<failure"));
    // A failing run: exit 1, failures in the JUnit file; the token appears nowhere, even when
    // the server echoes it.
    let echo = proxy(base.clone(), Some(deviation("no authentication required"))).await;
    let junit3 = junit.clone();
    let out = tokio::task::spawn_blocking(move || {
        scimlab(&[
            "probe",
            &echo,
            "--token",
            "tok-target",
            "--i-accept-side-effects",
            "--junit",
            junit3.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL errors.unauthorized") && text.contains("What to fix first"),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<failure")
    );
    for output in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(output).contains("tok-target"));
    }
}

/// A TLS front for `target` (a TCP forwarder) with a self-signed certificate for localhost;
/// returns its https base URL and the certificate's PEM.
async fn tls_front(target: std::net::SocketAddr, path: &str) -> (String, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = key.cert.pem();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut up) = tokio::net::TcpStream::connect(target).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    (format!("https://localhost:{port}{path}"), pem)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_needs_a_trusted_certificate_or_insecure() {
    let app = TestApp::spawn(&[("target.yaml", TARGET)]).await;
    let (base, pem) = tls_front(app.addr, "/scim-identifier/target/scim/v2").await;
    let mut o = Options::new(&base);
    o.auth.bearer = Some("tok-target".into());
    let err = probe::run(&o, &mut |_| {}).await.unwrap_err();
    assert!(
        err.to_string().contains("GET /ServiceProviderConfig"),
        "{err}"
    );
    let bundle = app.dir.path().join("ca.pem");
    std::fs::write(&bundle, pem).unwrap();
    o.transport.ca_bundle = Some(bundle);
    let report = probe::run(&o, &mut |_| {}).await.unwrap();
    assert!(report.ok(), "{}", report.text(false));
    o.transport.ca_bundle = None;
    o.transport.insecure = true;
    assert!(probe::run(&o, &mut |_| {}).await.unwrap().ok());
}

/// scim2-server (PyPI), a third-party SCIM server, as `.ci/run` installs it.
fn scim2_server() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("SCIM2_SERVER") {
        return Some(p.into());
    }
    let home = std::env::var("HOME").ok()?;
    let p = std::path::Path::new(&home).join(".cache/scimlab-scim2-server/bin/scim2-server");
    p.exists().then_some(p)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_third_party_server_shows_only_true_deviations() {
    let Some(bin) = scim2_server() else {
        assert!(
            std::env::var("CI").is_err(),
            "scim2-server is not installed (.ci/run installs it)"
        );
        eprintln!("scim2-server not installed; set SCIM2_SERVER or run .ci/run");
        return;
    };
    let port = common::free_port();
    let mut child = std::process::Command::new(bin)
        .args(["--port", &port.to_string(), "--bearer-token", "peer-token"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = common::answers_soon(&format!("{base}/ServiceProviderConfig"), Some(&mut child)).await;
    let mut o = Options::new(&base);
    o.auth.bearer = Some("peer-token".into());
    let report = if up {
        Some(probe::run(&o, &mut |_| {}).await.unwrap())
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let report = report.expect("scim2-server started");
    // Its PATCH answers 204 (RFC 7644 §3.5.2 allows it): not a failure. It does not fill
    // User.groups, which RFC 7643 does not require: a skip. Nothing else deviates.
    assert!(report.ok(), "{}", report.text(false));
    assert!(report.summary.passed >= 45, "{:?}", report.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_and_a_failed_create_is_retried_once() {
    // scimlab's own fault injection: the first config read answers 429 (Retry-After: 1) and
    // the first create 503.
    let flaky = format!(
        "{TARGET}faults:\n  - {{ methods: [GET], path: /ServiceProviderConfig, error_rate: 1.0, status: 429, next: 1 }}\n  - {{ methods: [POST], path: /Users, error_rate: 1.0, status: 503, next: 1 }}\n"
    );
    let app = TestApp::spawn(&[("target.yaml", &flaky)]).await;
    let mut o = Options::new(&app.base("target"));
    o.auth.bearer = Some("tok-target".into());
    let started = std::time::Instant::now();
    let report = probe::run(&o, &mut |_| {}).await.unwrap();
    assert!(report.ok(), "{}", report.text(false));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    let warned: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Warn)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].got.contains("transient instability") && warned[0].got.contains("503"),
        "{}",
        warned[0].got
    );
    let (_, log) = app
        .admin(
            reqwest::Method::GET,
            "/admin/servers/target/requests?path=/ServiceProviderConfig",
            None,
        )
        .await;
    let statuses: Vec<i64> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [200, 429],
        "newest first: the 429, then the retry"
    );
}

/// `scimlab probe` against each shipped persona reports the persona's documented deviations
/// and nothing else: checks that only scope their data with an operator the persona refuses
/// are skipped (the operator itself fails search.operators).
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_reports_each_persona_s_deviations_and_nothing_else() {
    let app = TestApp::shipped().await;
    for (id, token, want) in [
        (
            "aws-iam-identity-center",
            "dev-token-aws",
            vec![
                "groups.members",      // GetGroup returns no members
                "patch.add_multi",     // one value per multi-valued attribute
                "patch.remove_filter", // (so no second value to remove by filter)
                "search.operators",    // only eq and and
                "search.post",         // no /.search
                "search.value_path",   // no value paths
            ],
        ),
        (
            "snowflake",
            "dev-token-snowflake",
            vec!["search.operators", "search.value_path"],
        ),
        // Rate limits deviate from nothing: the probe waits them out.
        ("slack", "dev-token-slack", vec![]),
    ] {
        let mut o = Options::new(&app.base(id));
        o.auth.bearer = Some(token.into());
        let report = probe::run(&o, &mut |_| {}).await.unwrap();
        let mut failed: Vec<&str> = (report.results.iter())
            .filter(|r| r.status == scimlab::probe::Status::Fail)
            .map(|r| r.id.as_str())
            .collect();
        failed.sort();
        failed.dedup();
        assert_eq!(failed, want, "{id}:\n{}", report.text(false));
    }
}
