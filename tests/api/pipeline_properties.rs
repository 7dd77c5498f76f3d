//! Property tests of the whole pipeline below HTTP on a real store (`scimlab::fuzzing`):
//! generated filters run through SQL compilation and execution, generated PatchOps are applied
//! to stored resources, generated bodies go through validation and storage. No input may panic,
//! give an internal error, or (for a refused PatchOp) change the resource. The cargo-fuzz
//! targets in `fuzz/` run the same entry points for longer.

use proptest::prelude::*;
use scimlab::fuzzing::Pipeline;
use serde_json::{Value, json};
use std::sync::LazyLock;

static PIPELINE: LazyLock<Pipeline> = LazyLock::new(Pipeline::new);

const EXT: &str = "urn:scimlab:schemas:extension:fuzz:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Attribute paths: real ones of every type, sub-attributes, extension paths, and nonsense.
fn attr() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "userName".to_string(),
        "displayName".into(),
        "active".into(),
        "emails".into(),
        "emails.value".into(),
        "emails.type".into(),
        "emails.primary".into(),
        "name.givenName".into(),
        "name".into(),
        "members".into(),
        "members.value".into(),
        "groups".into(),
        "groups.display".into(),
        "meta.lastModified".into(),
        "meta.created".into(),
        "meta.version".into(),
        "meta".into(),
        "id".into(),
        "externalId".into(),
        "schemas".into(),
        format!("{EXT}:level"),
        format!("{EXT}:score"),
        format!("{EXT}:hired"),
        format!("{EXT}:region"),
        format!("{EXT}:tags"),
        format!("{ENTERPRISE}:employeeNumber"),
        format!("{ENTERPRISE}:manager.value"),
        "nope".into(),
        "x.y".into(),
    ])
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9@.'%_^ é-]{0,12}".prop_map(|s| Value::String(s).to_string()),
        Just("\"2024-01-02T10:00:00Z\"".to_string()),
        Just("\"not a date\"".to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        Just("1.5".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
    ]
}

/// Attribute paths with a value of their type (what a well-behaved client sends).
fn typed() -> impl Strategy<Value = (String, Value)> {
    let word = "[a-zA-Z0-9.'é-]{1,10}";
    prop_oneof![
        word.prop_map(|w| ("userName".to_string(), json!(format!("u-{w}")))),
        word.prop_map(|w| ("displayName".to_string(), json!(w))),
        word.prop_map(|w| ("name.givenName".to_string(), json!(w))),
        any::<bool>().prop_map(|b| ("active".to_string(), json!(b))),
        word.prop_map(|w| (
            "emails".to_string(),
            json!([{"value": format!("{w}@example.com"), "type": "work"}])
        )),
        word.prop_map(|w| (
            "emails.value".to_string(),
            json!(format!("{w}@example.org"))
        )),
        word.prop_map(|w| (
            "emails[type eq \"work\"].value".to_string(),
            json!(format!("{w}@example.net"))
        )),
        word.prop_map(|w| ("externalId".to_string(), json!(w))),
        any::<i32>().prop_map(|i| (format!("{EXT}:level"), json!(i))),
        any::<i16>().prop_map(|i| (format!("{EXT}:score"), json!(f64::from(i) / 4.0))),
        prop::sample::select(vec!["AMER", "EMEA"])
            .prop_map(|r| (format!("{EXT}:region"), json!(r))),
        (1u8..28).prop_map(|d| (
            format!("{EXT}:hired"),
            json!(format!("2024-02-{d:02}T01:02:03Z"))
        )),
        word.prop_map(|w| (format!("{EXT}:tags"), json!([w]))),
        word.prop_map(|w| (format!("{ENTERPRISE}:employeeNumber"), json!(w))),
    ]
}

fn comparison() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec![
        "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ",
    ]);
    let string_op = prop::sample::select(vec!["eq", "ne", "co", "sw", "ew"]);
    prop_oneof![
        // Well typed: the attribute with a value of its type.
        4 => (typed(), string_op).prop_map(|((a, v), o)| {
            let v = match v {
                Value::Array(mut a) => a.pop().map(|x| x.get("value").cloned().unwrap_or(x)).unwrap_or(json!("x")),
                v => v,
            };
            let o = if v.is_string() { o } else { "eq" };
            format!("{} {o} {v}", a.split('[').next().unwrap_or(&a))
        }),
        1 => (attr(), op, literal()).prop_map(|(a, o, v)| format!("{a} {o} {v}")),
        1 => attr().prop_map(|a| format!("{a} pr")),
        1 => (
            prop::sample::select(vec!["emails", "members", "groups", "name", "nope"]),
            prop::sample::select(vec!["type", "value", "display", "primary", "x"]),
            literal()
        )
            .prop_map(|(a, s, v)| format!("{a}[{s} eq {v}]")),
    ]
}

/// Filter text, mostly well formed, sometimes not.
fn filter_text() -> impl Strategy<Value = String> {
    let leaf = comparison();
    let tree = leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.prop_map(|a| format!("({a})")),
        ]
    });
    prop_oneof![
        8 => tree,
        1 => "[ -~]{0,40}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        Just(json!(2.25)),
        "[a-zA-Z0-9@. -]{0,10}".prop_map(Value::String),
        Just(json!("2024-05-06T07:08:09Z")),
        Just(json!("EMEA")),
        Just(json!("work")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "value",
                        "type",
                        "primary",
                        "display",
                        "givenName",
                        "level",
                        "x",
                        "userName",
                        "id",
                        "Value",
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn patch_path() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        4 => attr().prop_map(Some),
        2 => (
            prop::sample::select(vec!["emails", "members", "name", "nope"]),
            comparison(),
            prop::option::of(prop::sample::select(vec!["value", "type", "primary", "x"]))
        )
            .prop_map(|(a, f, s)| Some(match s {
                Some(s) => format!("{a}[{f}].{s}"),
                None => format!("{a}[{f}]"),
            })),
        1 => "[ -~]{0,20}".prop_map(Some),
    ]
}

fn operation() -> impl Strategy<Value = Value> {
    let any_op = (
        prop::sample::select(vec!["add", "remove", "replace", "Replace", "move"]),
        patch_path(),
        prop::option::of(json_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut o = json!({"op": op});
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            if let Some(v) = value {
                o["value"] = v;
            }
            o
        });
    let well_formed = (
        prop::sample::select(vec!["add", "replace", "remove"]),
        typed(),
        any::<bool>(),
    )
        .prop_map(|(op, (path, value), pathless)| match (op, pathless) {
            ("remove", _) => json!({"op": "remove", "path": path}),
            (_, true) if !path.contains(['.', '[', ':']) => {
                json!({"op": op, "value": {path: value}})
            }
            _ => json!({"op": op, "path": path, "value": value}),
        });
    prop_oneof![3 => well_formed, 1 => any_op]
}

fn any_body() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec![
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
            json!(["urn:ietf:params:scim:schemas:core:2.0:User", EXT]),
            json!(["urn:ietf:params:scim:schemas:core:2.0:Group"]),
            json!([]),
            json!("x"),
        ])),
        prop::collection::vec(prop_oneof![3 => typed(), 1 => (attr(), json_value())], 0..6),
    )
        .prop_map(|(schemas, attrs)| {
            let mut o = serde_json::Map::new();
            if let Some(s) = schemas {
                o.insert("schemas".into(), s);
            }
            for (k, v) in attrs {
                // URN and dotted paths become nested objects, as clients write them.
                let k = k.split('[').next().unwrap_or(&k).to_string();
                match (k.rsplit_once(':'), k.split_once('.')) {
                    (Some((urn, name)), _) if k.starts_with("urn:") => {
                        o.insert(urn.to_string(), json!({ name: v }));
                    }
                    (_, Some((parent, sub))) => {
                        o.insert(parent.to_string(), json!({ sub: v }));
                    }
                    _ => {
                        o.insert(k, v);
                    }
                }
            }
            Value::Object(o)
        })
}

/// Resource bodies: mostly a User a client could send (a fresh userName, every schema its
/// attributes need), sometimes anything.
fn resource_body() -> impl Strategy<Value = Value> {
    let user = ("[a-z0-9]{8,14}", any_body()).prop_map(|(name, mut body)| {
        body["schemas"] = json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            EXT,
            ENTERPRISE
        ]);
        body["userName"] = json!(format!("gen-{name}"));
        body
    });
    prop_oneof![3 => user, 1 => any_body()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_filter_runs_or_is_a_client_error(f in filter_text()) {
        PIPELINE.filter(&f).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn any_patchop_applies_or_changes_nothing(ops in prop::collection::vec(operation(), 1..5)) {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        PIPELINE.patch(&body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn any_body_is_stored_or_is_a_client_error(body in resource_body()) {
        PIPELINE.write(&body).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn generated_inputs_reach_the_store() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut applied, mut ran, mut stored) = (0, 0, 0);
    for _ in 0..200 {
        let ops = prop::collection::vec(operation(), 1..3)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let id = &PIPELINE.users[2];
        if PIPELINE.patch_one("User", id, &body).is_ok() {
            applied += 1;
        }
        let body = resource_body().new_tree(&mut runner).unwrap().current();
        if PIPELINE.create_one("User", &body).is_ok() {
            stored += 1;
        }
        let f = filter_text().new_tree(&mut runner).unwrap().current();
        if PIPELINE.search("User", &f).is_ok() {
            ran += 1;
        }
    }
    eprintln!(
        "{applied} of 200 PatchOps applied, {ran} of 200 filters ran, {stored} of 200 bodies stored"
    );
    // The generators are worth their time only if much of what they make is valid.
    assert!(
        applied >= 40 && ran >= 40 && stored >= 20,
        "{applied} applied, {ran} ran, {stored} stored"
    );
}
