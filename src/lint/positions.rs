//! Where each value of a JSON text starts, by JSON pointer (from jsonc-parser's syntax tree),
//! as `line:column` for findings.

use std::collections::HashMap;

pub struct Positions {
    /// JSON pointer → byte offset (of the member's key for object members).
    at: HashMap<String, usize>,
    /// Byte offset of each line start.
    lines: Vec<usize>,
    text_len: usize,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Positions {
    pub fn new(text: &str) -> Positions {
        let mut at = HashMap::new();
        let options = jsonc_parser::ParseOptions::default();
        if let Ok(parsed) =
            jsonc_parser::parse_to_ast(text, &jsonc_parser::CollectOptions::default(), &options)
            && let Some(v) = &parsed.value
        {
            walk(v, String::new(), &mut at);
        }
        let mut lines = vec![0];
        lines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Positions {
            at,
            lines,
            text_len: text.len(),
        }
    }

    /// `line:column` (1-based, column in characters) of `pointer`, or of its nearest parent.
    pub fn of(&self, text: &str, pointer: &str) -> (usize, usize) {
        let mut p = pointer.to_string();
        let offset = loop {
            if let Some(o) = self.at.get(&p) {
                break *o;
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => break 0,
            }
        };
        let offset = offset.min(self.text_len);
        let line = self.lines.partition_point(|&s| s <= offset).max(1);
        let start = self.lines[line - 1];
        let column = text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }
}

fn walk(v: &jsonc_parser::ast::Value<'_>, pointer: String, at: &mut HashMap<String, usize>) {
    use jsonc_parser::ast::Value;
    match v {
        Value::Object(o) => {
            for prop in &o.properties {
                let p = format!("{pointer}/{}", escape(prop.name.as_str()));
                at.insert(p.clone(), prop.range.start);
                walk(&prop.value, p, at);
            }
        }
        Value::Array(a) => {
            for (i, e) in a.elements.iter().enumerate() {
                let p = format!("{pointer}/{i}");
                at.insert(p.clone(), jsonc_parser::common::Ranged::range(e).start);
                walk(e, p, at);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_to_lines_and_columns() {
        let text = "{\n  \"userName\": \"x\",\n  \"emails\": [\n    {\"value\": 1}\n  ],\n  \"a/b\": true\n}";
        let p = Positions::new(text);
        assert_eq!(p.of(text, "/userName"), (2, 3));
        assert_eq!(p.of(text, "/emails/0"), (4, 5));
        assert_eq!(p.of(text, "/emails/0/value"), (4, 6));
        assert_eq!(p.of(text, "/emails/0/nope"), (4, 6 - 1));
        assert_eq!(p.of(text, "/a~1b"), (6, 3));
        assert_eq!(p.of(text, ""), (1, 1));
    }
}
