//! Cursor paging (RFC 9865): walking pages by `nextCursor`, stable under concurrent creates
//! and deletes; the errors of invalid, altered, foreign, expired cursors and changed counts;
//! cursor-only and index-only servers; `pagination` in `/ServiceProviderConfig`.

use crate::common::{TestApp, assert_error, urlencode};
use serde_json::{Value, json};
use std::collections::HashSet;

const PAGED: &str = "id: paged\ntokens: [tok-paged]\nresource_types: { User: {}, Group: {} }\npagination: { cursor: true, index: true, default: index, max_page_size: 50, cursor_timeout: 1 }\n";
const CURSOR_ONLY: &str = "id: conly\ntokens: [tok-conly]\nresource_types: { User: {} }\npagination: { cursor: true, index: false }\n";
const INDEX_ONLY: &str = "id: ionly\ntokens: [tok-ionly]\nresource_types: { User: {} }\n";

async fn app() -> TestApp {
    TestApp::spawn(&[
        ("paged.yaml", PAGED),
        ("conly.yaml", CURSOR_ONLY),
        ("ionly.yaml", INDEX_ONLY),
    ])
    .await
}

fn names(page: &Value) -> Vec<String> {
    (page["Resources"].as_array().into_iter().flatten())
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a walk from an empty cursor, following `nextCursor`.
async fn walk(app: &TestApp, server: &str, params: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = app
            .get(
                server,
                &format!("/Users?cursor={}&{params}", urlencode(&cursor)),
            )
            .await;
        assert_eq!(s, 200, "{page}");
        let next = page["nextCursor"].as_str().map(str::to_string);
        pages.push(page);
        match next {
            Some(n) => cursor = n,
            None => return pages,
        }
        assert!(pages.len() < 1000, "the walk does not end");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn next_cursors_walk_every_resource_once_in_order() {
    let app = app().await;
    for i in 0..10 {
        app.user("paged", &format!("user{i:02}")).await;
    }
    let pages = walk(
        &app,
        "paged",
        "count=3&sortBy=userName&sortOrder=descending",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| names(p).len()).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    let all: Vec<String> = pages.iter().flat_map(names).collect();
    let want: Vec<String> = (0..10).rev().map(|i| format!("user{i:02}")).collect();
    assert_eq!(all, want);
    for p in &pages {
        assert_eq!(p["totalResults"], 10, "{p}");
        assert!(
            p.get("startIndex").is_none(),
            "cursor pages have no startIndex: {p}"
        );
        let c = p["nextCursor"].as_str().unwrap_or("");
        assert!(
            c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-._~".contains(ch)),
            "only unreserved characters (RFC 9865 §2): {c}"
        );
    }
    assert!(pages.last().unwrap().get("nextCursor").is_none());
    // POST /.search pages the same way.
    let body = |cursor: &str| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": cursor, "count": 6, "sortBy": "userName"});
    let (s, first) = app.post("paged", "/Users/.search", body("")).await;
    assert_eq!(s, 200, "{first}");
    let next = first["nextCursor"].as_str().unwrap().to_string();
    let (_, second) = app.post("paged", "/Users/.search", body(&next)).await;
    assert_eq!(names(&first).len() + names(&second).len(), 10);
    assert!(second.get("nextCursor").is_none(), "{second}");
    // count=0: the total only, and no cursor to loop on.
    let (_, p) = app.get("paged", "/Users?cursor=&count=0").await;
    assert_eq!(p["totalResults"], 10);
    assert!(p.get("nextCursor").is_none(), "{p}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_walk_under_concurrent_creates_and_deletes_repeats_and_skips_nothing() {
    let app = app().await;
    let mut stable = HashSet::new();
    let mut doomed = Vec::new();
    for i in 0..60 {
        let name = format!("m{i:03}");
        let id = app.user("paged", &name).await;
        if i % 3 == 0 {
            doomed.push(id);
        } else {
            stable.insert(name);
        }
    }
    // Writers run during the whole walk: new users appear, a third of the old ones go.
    let writer = {
        let (base, client) = (app.base("paged"), app.client.clone());
        tokio::spawn(async move {
            for (i, id) in doomed.iter().enumerate() {
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("m{:03}x", i * 3)});
                let r = client
                    .post(format!("{base}/Users"))
                    .bearer_auth("tok-paged")
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let r = client
                    .delete(format!("{base}/Users/{id}"))
                    .bearer_auth("tok-paged")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            }
        })
    };
    // ...and between pages the walker itself deletes users ahead of and behind its cursor
    // and creates new ones, so changes certainly fall inside the walk.
    let mut late: Vec<String> = Vec::new();
    for i in 0..30 {
        if i % 3 == 1 {
            late.push(app.user("paged", &format!("n{i:03}")).await);
        } else {
            stable.insert(format!("n{i:03}"));
            app.user("paged", &format!("n{i:03}")).await;
        }
    }
    let filter = urlencode("userName sw \"m\" or userName sw \"n\"");
    let params = format!("count=4&sortBy=userName&filter={filter}");
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for step in 0.. {
        let (s, page) = app
            .get(
                "paged",
                &format!("/Users?cursor={}&{params}", urlencode(&cursor)),
            )
            .await;
        assert_eq!(s, 200, "{page}");
        seen.extend(names(&page));
        if let Some(id) = late.pop() {
            assert_eq!(app.delete("paged", &format!("/Users/{id}")).await, 204);
        }
        app.user("paged", &format!("z{step:03}")).await;
        match page["nextCursor"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a resource came twice: {seen:?}");
    let missing: Vec<&String> = stable.iter().filter(|n| !unique.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "skipped though present all along: {missing:?}"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages keep the sort order");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cursors_get_the_rfc_9865_errors() {
    let app = app().await;
    for i in 0..5 {
        app.user("paged", &format!("e{i}")).await;
    }
    let (_, first) = app
        .get("paged", "/Users?cursor=&count=2&sortBy=userName")
        .await;
    let next = first["nextCursor"].as_str().unwrap().to_string();
    let get = |path: String| {
        let app = &app;
        async move { app.get("paged", &path).await }
    };
    // Altered, made up, or from another query: invalidCursor (§2.1).
    let mut altered = next.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for (cursor, rest) in [
        (altered.as_str(), "count=2&sortBy=userName"),
        ("garbage", "count=2&sortBy=userName"),
        (next.as_str(), "count=2&sortBy=displayName"),
        (
            next.as_str(),
            "count=2&sortBy=userName&filter=userName%20pr",
        ),
    ] {
        let (s, b) = get(format!("/Users?cursor={}&{rest}", urlencode(cursor))).await;
        assert_error(s, &b, 400, Some("invalidCursor"));
    }
    // Another endpoint: invalidCursor.
    let (s, b) = app
        .get(
            "paged",
            &format!("/Groups?cursor={}&count=2", urlencode(&next)),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidCursor"));
    // Another count: invalidCount (§2.4).
    let (s, b) = get(format!(
        "/Users?cursor={}&count=3&sortBy=userName",
        urlencode(&next)
    ))
    .await;
    assert_error(s, &b, 400, Some("invalidCount"));
    // Both methods at once.
    let (s, b) = get("/Users?cursor=&startIndex=1".to_string()).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // The same cursor works... until cursorTimeout (1 s here) passes: expiredCursor (§2.3).
    let (s, b) = get(format!(
        "/Users?cursor={}&count=2&sortBy=userName",
        urlencode(&next)
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (s, b) = get(format!(
        "/Users?cursor={}&count=2&sortBy=userName",
        urlencode(&next)
    ))
    .await;
    assert_error(s, &b, 400, Some("expiredCursor"));
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_page_by_the_methods_their_definition_names() {
    let app = app().await;
    for server in ["conly", "ionly"] {
        for i in 0..3 {
            app.user(server, &format!("p{i}")).await;
        }
    }
    // Cursor-only: index paging is refused; a request naming no method gets a cursor page.
    let (s, b) = app.get("conly", "/Users?startIndex=1").await;
    assert_error(s, &b, 501, None);
    let (s, b) = app.get("conly", "/Users?count=2").await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["nextCursor"].is_string() && b.get("startIndex").is_none(),
        "{b}"
    );
    let (_, spc) = app.get("conly", "/ServiceProviderConfig").await;
    assert_eq!(
        spc["pagination"],
        json!({"cursor": true, "index": false, "defaultPaginationMethod": "cursor", "defaultPageSize": 100, "maxPageSize": 1000, "cursorTimeout": 3600})
    );
    // Index-only (the default): a cursor is refused.
    let (s, b) = app.get("ionly", "/Users?cursor=").await;
    assert_error(s, &b, 501, None);
    let (_, spc) = app.get("ionly", "/ServiceProviderConfig").await;
    assert_eq!(spc["pagination"]["cursor"], false);
    assert_eq!(spc["pagination"]["defaultPaginationMethod"], "index");
    // Both, index by default: no parameter pages by index; maxPageSize caps count.
    let (_, b) = app.get("paged", "/Users?count=500").await;
    assert_eq!(b["startIndex"], 1, "{b}");
    let (_, spc) = app.get("paged", "/ServiceProviderConfig").await;
    assert_eq!(spc["pagination"]["maxPageSize"], 50);
    // The pagination schema is served with the ServiceProviderConfig schema.
    let (_, schema) = app
        .get(
            "paged",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
        )
        .await;
    assert!(
        schema.to_string().contains("defaultPaginationMethod"),
        "{schema}"
    );
}

/// `previousCursor` (RFC 9865 §2, optional): from the last page back to the first, every page
/// is the one the forward walk had, for every order, missing values included.
#[tokio::test(flavor = "multi_thread")]
async fn previous_cursors_walk_back_through_the_same_pages() {
    let app = app().await;
    for i in 0..11 {
        let title = if i % 4 == 0 {
            json!(null)
        } else {
            json!(format!("t{}", i % 3))
        };
        let (s, b) = app
            .post(
                "paged",
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": format!("p{i:02}"), "title": title}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    for params in [
        "count=3",
        "count=3&sortBy=userName",
        "count=4&sortBy=title",
        "count=4&sortBy=title&sortOrder=descending",
        "count=2&sortBy=title&filter=userName%20sw%20%22p0%22",
    ] {
        let forward = walk(&app, "paged", params).await;
        assert!(
            forward[0].get("previousCursor").is_none(),
            "the first page has none"
        );
        let mut back = vec![forward.last().unwrap().clone()];
        while let Some(prev) = back.last().unwrap()["previousCursor"].as_str() {
            let (s, page) = app
                .get(
                    "paged",
                    &format!("/Users?cursor={}&{params}", urlencode(prev)),
                )
                .await;
            assert_eq!(s, 200, "{page}");
            // A page reached backward leads forward again.
            assert!(page["nextCursor"].is_string(), "{params}: {page}");
            back.push(page);
            assert!(
                back.len() <= forward.len(),
                "{params}: the walk back is longer"
            );
        }
        back.reverse();
        let pages = |ps: &[Value]| ps.iter().map(names).collect::<Vec<_>>();
        assert_eq!(pages(&back), pages(&forward), "{params}");
    }
    // The page before the second page, when everything on the first is gone: the first page.
    let (_, first) = app
        .get("paged", "/Users?cursor=&count=3&sortBy=userName")
        .await;
    let next = first["nextCursor"].as_str().unwrap().to_string();
    let (_, second) = app
        .get(
            "paged",
            &format!("/Users?cursor={}&count=3&sortBy=userName", urlencode(&next)),
        )
        .await;
    for r in first["Resources"].as_array().unwrap() {
        assert_eq!(
            app.delete("paged", &format!("/Users/{}", r["id"].as_str().unwrap()))
                .await,
            204
        );
    }
    let prev = second["previousCursor"].as_str().unwrap();
    let (s, again) = app
        .get(
            "paged",
            &format!("/Users?cursor={}&count=3&sortBy=userName", urlencode(prev)),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(names(&again), names(&second), "{again}");
    assert!(again.get("previousCursor").is_none(), "{again}");
}
