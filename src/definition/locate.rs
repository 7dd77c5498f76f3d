//! Where a key path (`resource_types.User.attributes.costCenter`) sits in a YAML text, so
//! problems found after parsing still point at file:line:column. Positions come from the YAML
//! parser's own events (block and flow style, quoted keys, anchors alike); keys inside
//! sequence items are addressed without the item's index.

use serde_saphyr::granit_parser::{Event, Parser};
use std::collections::HashMap;

/// The 1-based (line, column) of the key `path` names or, when the file lacks it, of the
/// deepest enclosing key it has; (1, 1) when it has none of them.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let keys = key_positions(text);
    (1..=path.len())
        .rev()
        .find_map(|n| {
            let prefix: Vec<String> = path[..n].iter().map(|k| k.to_string()).collect();
            keys.get(&prefix).copied()
        })
        .unwrap_or((1, 1))
}

/// The key path of the key at (line, column), if a key starts there.
pub fn key_at(text: &str, at: (usize, usize)) -> Option<Vec<String>> {
    key_positions(text)
        .into_iter()
        .filter(|(_, pos)| *pos == at)
        .map(|(path, _)| path)
        .min_by_key(Vec::len)
}

/// One open collection while walking the events.
enum Open {
    /// A mapping; `key` is the key whose value comes next (None: a key comes next).
    Mapping {
        key: Option<String>,
    },
    Sequence,
}

/// Every mapping key of the first document, by key path, at its first occurrence.
fn key_positions(text: &str) -> HashMap<Vec<String>, (usize, usize)> {
    let mut out: HashMap<Vec<String>, (usize, usize)> = HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    // A problem past the keys already seen still leaves those keys located.
    for (event, span) in Parser::new_from_str(text).map_while(Result::ok) {
        let at = (span.start.line(), span.start.col() + 1);
        let expects_key = matches!(open.last(), Some(Open::Mapping { key: None }));
        match event {
            Event::Scalar(value, ..) if expects_key => {
                let mut path = current_path(&open);
                path.push(value.to_string());
                out.entry(path).or_insert(at);
                if let Some(Open::Mapping { key }) = open.last_mut() {
                    *key = Some(value.to_string());
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if expects_key {
                    // A complex key: stands for no name a path can give.
                    if let Some(Open::Mapping { key }) = open.last_mut() {
                        *key = Some(String::new());
                    }
                }
                open.push(if matches!(event, Event::MappingStart(..)) {
                    Open::Mapping { key: None }
                } else {
                    Open::Sequence
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                open.pop();
                value_done(&mut open);
            }
            Event::Scalar(..) | Event::Alias(_) => value_done(&mut open),
            Event::DocumentEnd => break,
            _ => {}
        }
    }
    out
}

/// The key path of the value being read.
fn current_path(open: &[Open]) -> Vec<String> {
    open.iter()
        .filter_map(|o| match o {
            Open::Mapping { key: Some(k) } => Some(k.clone()),
            _ => None,
        })
        .collect()
}

/// A value ended: its mapping now expects a key.
fn value_done(open: &mut [Open]) {
    if let Some(Open::Mapping { key }) = open.last_mut() {
        *key = None;
    }
}

#[cfg(test)]
mod tests {
    use super::{key_at, locate};

    const DOC: &str = "\
id: demo # the id
resource_types:
  User:
    attributes:
      costCenter: { type: string, canonical_values: [A, B] }
  Group: {}
validation:
  strict: true
";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(DOC, &["id"]), (1, 1));
        assert_eq!(locate(DOC, &["resource_types", "User"]), (3, 3));
        assert_eq!(
            locate(DOC, &["resource_types", "User", "attributes", "costCenter"]),
            (5, 7)
        );
        assert_eq!(
            locate(
                DOC,
                &[
                    "resource_types",
                    "User",
                    "attributes",
                    "costCenter",
                    "canonical_values"
                ]
            ),
            (5, 35)
        );
        assert_eq!(locate(DOC, &["validation", "strict"]), (8, 3));
    }

    #[test]
    fn finds_urn_keys() {
        let doc = "attributes:\n  userName: {}\n  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: { required: true }\n";
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
        assert_eq!(locate(doc, &["attributes", urn]), (3, 3));
        assert_eq!(locate(doc, &["attributes", urn, "required"]), (3, 76));
    }

    #[test]
    fn finds_keys_in_sequences_quoted_and_after_anchors() {
        let doc = "defaults: &d\n  strict: true\nfaults:\n  - path: /Users\n    status: 500\n  - { path: /Groups, \"rate\": 0.5 }\nvalidation: *d\nother:\n  'quoted key': 1\n";
        assert_eq!(locate(doc, &["faults", "status"]), (5, 5));
        assert_eq!(locate(doc, &["faults", "rate"]), (6, 22));
        assert_eq!(locate(doc, &["validation"]), (7, 1));
        assert_eq!(locate(doc, &["other", "quoted key"]), (9, 3));
    }

    #[test]
    fn names_the_key_at_a_position() {
        let want: Vec<String> = ["resource_types", "User"].map(String::from).to_vec();
        assert_eq!(key_at(DOC, (3, 3)), Some(want));
        assert_eq!(key_at(DOC, (3, 4)), None);
    }

    #[test]
    fn falls_back_to_the_deepest_key_found() {
        assert_eq!(locate(DOC, &["resource_types", "Group", "nope"]), (6, 3));
        assert_eq!(locate(DOC, &["missing"]), (1, 1));
    }
}
