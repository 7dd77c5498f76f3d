//! Reading definition files: YAML syntax and shape errors come back located by serde_yaml.

use super::{Diagnostic, ServerDef};
use std::path::{Path, PathBuf};

/// A parsed definition file, with its text kept for locating later (semantic) problems.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub text: String,
    pub def: ServerDef,
}

impl LoadedFile {
    /// A diagnostic at the key path `keys` in this file.
    pub fn diagnostic(&self, keys: &[&str], message: impl Into<String>) -> Diagnostic {
        let (line, column) = super::locate(&self.text, keys);
        Diagnostic {
            file: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Parses one definition text.
pub fn load_str(path: &Path, text: &str) -> Result<LoadedFile, Diagnostic> {
    match serde_yaml::from_str::<ServerDef>(text) {
        Ok(def) => Ok(LoadedFile {
            path: path.to_path_buf(),
            text: text.to_string(),
            def,
        }),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            // serde_yaml prefixes the message with the position; keep only what is wrong.
            let msg = e.to_string();
            let message = match msg.find(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            Err(Diagnostic {
                file: path.to_path_buf(),
                line,
                column,
                message,
            })
        }
    }
}

/// Reads every `*.yaml` / `*.yml` file in `dir` (sorted by name). Files that do not parse are
/// reported; the others are returned so that all problems can be reported at once.
pub fn load_dir(dir: &Path) -> (Vec<LoadedFile>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Diagnostic {
                file: dir.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read definitions directory: {e}"),
            });
            return (files, problems);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => match load_str(&path, &text) {
                Ok(f) => files.push(f),
                Err(d) => problems.push(d),
            },
            Err(e) => problems.push(Diagnostic {
                file: path,
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    (files, problems)
}
