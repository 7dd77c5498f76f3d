//! Reading definition files: YAML syntax and shape errors come back located by the YAML
//! deserializer (serde-saphyr); later problems are located by `locate`.

use super::{Diagnostic, ProfileDef, ServerDef};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed YAML file, with its text kept for locating later (semantic) problems. Shared, so
/// that a reload reusing an unchanged file copies nothing.
#[derive(Debug)]
pub struct Loaded<T> {
    pub path: PathBuf,
    pub text: Arc<str>,
    pub def: Arc<T>,
}

impl<T> Clone for Loaded<T> {
    fn clone(&self) -> Self {
        Loaded {
            path: self.path.clone(),
            text: self.text.clone(),
            def: self.def.clone(),
        }
    }
}

/// A server definition file (`servers.d/*.yaml`).
pub type LoadedFile = Loaded<ServerDef>;
/// A profile pack (`profiles/*.yaml`).
pub type LoadedProfile = Loaded<ProfileDef>;

impl<T> Loaded<T> {
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
    parse(path, text)
}

/// Parses one YAML text of either kind.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Loaded<T>, Diagnostic> {
    match serde_saphyr::from_str::<T>(text) {
        Ok(def) => Ok(Loaded {
            path: path.to_path_buf(),
            text: text.into(),
            def: Arc::new(def),
        }),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((1, 1));
            // An unknown or misplaced key: name where it sits, as in `resource_types.User`.
            let message = match super::locate::key_at(text, (line, column)) {
                Some(path) if path.len() > 1 => {
                    format!(
                        "{}: {}",
                        path[..path.len() - 1].join("."),
                        plain_message(&e)
                    )
                }
                _ => plain_message(&e),
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

/// What is wrong, without the deserializer's own position suffix and source snippet (the
/// diagnostic carries the position as `file:line:column`).
fn plain_message(e: &serde_saphyr::Error) -> String {
    struct Unlocated;
    impl serde_saphyr::Localizer for Unlocated {
        fn attach_location<'a>(
            &self,
            base: std::borrow::Cow<'a, str>,
            _: serde_saphyr::Location,
        ) -> std::borrow::Cow<'a, str> {
            base
        }
    }
    let formatter = serde_saphyr::DefaultMessageFormatter.with_localizer(&Unlocated);
    e.render_with_options(serde_saphyr::render_options! {
        formatter: &formatter,
        snippets: serde_saphyr::SnippetMode::Off,
    })
}

/// Reads every `*.yaml` / `*.yml` file in `dir` (sorted by name). Files that do not parse are
/// reported; the others are returned so that all problems can be reported at once.
pub fn load_dir(dir: &Path) -> (Vec<LoadedFile>, Vec<Diagnostic>) {
    load_dir_reusing(dir, &mut Parsed::default())
}

/// Reads every profile pack in `dir`; a missing directory simply holds no profiles.
pub fn load_profiles(dir: &Path) -> (Vec<LoadedProfile>, Vec<Diagnostic>) {
    load_profiles_reusing(dir, &mut Parsed::default())
}

/// Files parsed by an earlier load, by path: a file whose text has not changed is not parsed
/// again (a reload reads every file; with 200 servers, parsing them all was most of its time).
#[derive(Debug)]
pub struct Parsed<T>(HashMap<PathBuf, Loaded<T>>);

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed(HashMap::new())
    }
}

/// [`load_dir`], reusing what `parsed` holds and keeping what it parses there.
pub fn load_dir_reusing(
    dir: &Path,
    parsed: &mut Parsed<ServerDef>,
) -> (Vec<LoadedFile>, Vec<Diagnostic>) {
    load_all(dir, true, parsed)
}

/// [`load_profiles`], reusing what `parsed` holds and keeping what it parses there.
pub fn load_profiles_reusing(
    dir: &Path,
    parsed: &mut Parsed<ProfileDef>,
) -> (Vec<LoadedProfile>, Vec<Diagnostic>) {
    load_all(dir, dir.exists(), parsed)
}

/// The YAML files of `dir`, sorted by name.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
    paths.sort();
    paths
}

fn load_all<T: DeserializeOwned>(
    dir: &Path,
    must_exist: bool,
    parsed: &mut Parsed<T>,
) -> (Vec<Loaded<T>>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if let Err(e) = std::fs::read_dir(dir) {
        if must_exist {
            problems.push(Diagnostic {
                file: dir.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read directory: {e}"),
            });
        }
        parsed.0.clear();
        return (files, problems);
    }
    // Only the files read this time are kept: a deleted file is forgotten.
    let mut kept = HashMap::new();
    for path in yaml_files(dir) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let loaded = match parsed.0.remove(&path) {
                    Some(same) if *same.text == *text => Ok(same),
                    _ => parse(&path, &text),
                };
                match loaded {
                    Ok(f) => {
                        kept.insert(path, f.clone());
                        files.push(f);
                    }
                    Err(d) => problems.push(d),
                }
            }
            Err(e) => problems.push(Diagnostic {
                file: path,
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    parsed.0 = kept;
    (files, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reusing earlier parses must never serve a stale definition: a changed file is parsed
    /// again, a broken one reported, a deleted one forgotten.
    #[test]
    fn reused_parses_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let def = |id: &str, token: &str| {
            format!("id: {id}\ntokens: [{token}]\nresource_types: {{ User: {{}} }}\n")
        };
        std::fs::write(dir.path().join("a.yaml"), def("a", "t1")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), def("b", "t2")).unwrap();
        let mut parsed = Parsed::default();
        let tokens = |files: &[LoadedFile]| -> Vec<(String, Vec<String>)> {
            (files.iter())
                .map(|f| (f.def.id.clone(), f.def.tokens.clone()))
                .collect()
        };
        let (files, problems) = load_dir_reusing(dir.path(), &mut parsed);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tokens(&files).len(), 2);

        std::fs::write(dir.path().join("a.yaml"), def("a", "t3")).unwrap();
        let (files, _) = load_dir_reusing(dir.path(), &mut parsed);
        assert_eq!(
            tokens(&files),
            vec![
                ("a".to_string(), vec!["t3".to_string()]),
                ("b".to_string(), vec!["t2".to_string()])
            ]
        );

        std::fs::write(dir.path().join("b.yaml"), "id: [").unwrap();
        let (files, problems) = load_dir_reusing(dir.path(), &mut parsed);
        assert_eq!(tokens(&files).len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].file.ends_with("b.yaml"));

        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), def("b", "t2")).unwrap();
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        let (files, problems) = load_dir_reusing(dir.path(), &mut parsed);
        assert!(problems.is_empty());
        assert_eq!(
            tokens(&files),
            vec![("b".to_string(), vec!["t2".to_string()])]
        );
        assert_eq!(parsed.0.len(), 1);
    }
}
