//! Property tests for the filter parser: printing any AST and parsing it back gives the same
//! AST, and no input (however malformed or deeply nested) makes the parser panic.
use proptest::prelude::*;
use scimlab::filter::{CompValue, CompareOp, Filter, MAX_DEPTH, parse};
use scimlab::model::AttrPath;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userName".to_string()),
        Just("emails".to_string()),
        Just("meta".to_string()),
        Just("$ref".to_string()),
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
    ]
}

fn path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::of(Just(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string(),
        )),
        name(),
        prop::option::of(name()),
    )
        .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
}

fn value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        any::<String>().prop_map(CompValue::Str),
        any::<i64>().prop_map(|i| CompValue::Num(i.into())),
        Just(CompValue::Num(serde_json::Number::from_f64(1.5).unwrap())),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

/// Filters without value paths (what may appear inside `attr[...]`).
fn simple() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        (path(), op(), value()).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        path().prop_map(Filter::Present),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        simple(),
        (path(), simple()).prop_map(|(mut path, f)| {
            path.sub = None;
            Filter::ValuePath {
                path,
                filter: Box::new(f),
            }
        }),
    ];
    leaf.prop_recursive(3, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

fn depth(f: &Filter) -> usize {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => depth(a).max(depth(b)),
        Filter::Not(a) => 1 + depth(a),
        Filter::ValuePath { filter, .. } => 1 + depth(filter),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_round_trips(f in filter()) {
        prop_assume!(depth(&f) < MAX_DEPTH / 2);
        let text = f.to_string();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(back, f, "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn filter_like_text_never_panics(s in r#"[a-z.:\[\]() "0-9\\-]{0,80}"#) {
        let _ = parse(&s);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed(n in 0usize..5000, kind in 0usize..3) {
        let text = match kind {
            0 => format!("{}a pr{}", "(".repeat(n), ")".repeat(n)),
            1 => format!("{}a pr{}", "not (".repeat(n), ")".repeat(n)),
            _ => format!("{}a pr", "(".repeat(n)),
        };
        let r = parse(&text);
        if n > MAX_DEPTH {
            prop_assert!(r.is_err());
        }
    }
}
