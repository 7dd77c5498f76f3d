//! Finds where a key path (`resource_types.User.attributes.costCenter`) sits in a YAML text,
//! so problems found after parsing still point at file:line:column.
//!
//! serde_yaml keeps no positions in parsed values; this scanner understands the block style the
//! shipped files use plus flow mappings on one line, and falls back to the deepest key found.

/// Returns the 1-based (line, column) of the last key of `path` that could be found.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let mut best = (1, 1);
    let mut best_depth = 0;
    // (indent, key) of the enclosing block keys for the current line.
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (lineno, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        let mut body = trimmed;
        // A list item's mapping keys are indented past the dash.
        while let Some(rest) = body.strip_prefix("- ") {
            indent += 2 + (rest.len() - rest.trim_start().len());
            body = rest.trim_start();
        }
        let Some(key) = block_key(body) else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        let depth = stack.len();
        if depth <= path.len() && stack.iter().zip(path).all(|((_, k), p)| k == p) {
            if depth >= best_depth {
                best = (lineno + 1, indent + 1);
                best_depth = depth;
            }
            // Deeper keys written as a flow mapping on this same line.
            let mut col = indent + key.len();
            for p in &path[depth..] {
                match find_flow_key(line, col, p) {
                    Some(c) => {
                        best = (lineno + 1, c + 1);
                        best_depth += 1;
                        col = c + p.len();
                    }
                    None => break,
                }
            }
            if depth == path.len() {
                return best;
            }
        }
    }
    best
}

fn strip_comment(line: &str) -> &str {
    let mut in_single = false;
    let mut in_double = false;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !in_double => in_single = !in_single,
            '"' if !in_single => in_double = !in_double,
            '#' if !in_single && !in_double && (i == 0 || line[..i].ends_with(' ')) => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

fn block_key(body: &str) -> Option<&str> {
    // The key ends at the first ':' followed by a space or the end of the line, so URN keys
    // (`urn:ietf:…:department: {}`) are found whole.
    let end = body
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| body[i + 1..].is_empty() || body[i + 1..].starts_with(' '))?;
    let key = body[..end].trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || (key.contains(' ') && !body.starts_with('"')) {
        return None;
    }
    Some(key)
}

fn find_flow_key(line: &str, from: usize, key: &str) -> Option<usize> {
    let hay = line.get(from..)?;
    let mut start = 0;
    while let Some(pos) = hay[start..].find(key) {
        let at = start + pos;
        let before = hay[..at].chars().last();
        let after = &hay[at + key.len()..];
        if matches!(before, Some('{' | ',' | ' ' | '"' | '\''))
            && after.trim_start_matches(['"', '\'']).starts_with(':')
        {
            return Some(from + at);
        }
        start = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

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
    fn falls_back_to_the_deepest_key_found() {
        assert_eq!(locate(DOC, &["resource_types", "Group", "nope"]), (6, 3));
        assert_eq!(locate(DOC, &["missing"]), (1, 1));
    }
}
