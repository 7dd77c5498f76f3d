//! Reading definition files: YAML syntax and shape errors come back located by the YAML
//! deserializer (serde-saphyr); later problems are located by `locate`.

use super::{Diagnostic, ProfileDef, ServerDef};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A parsed YAML file, with its text kept for locating later (semantic) problems.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub path: PathBuf,
    pub text: String,
    pub def: T,
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
            text: text.to_string(),
            def,
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
    load_all(dir, true)
}

/// Reads every profile pack in `dir`; a missing directory simply holds no profiles.
pub fn load_profiles(dir: &Path) -> (Vec<LoadedProfile>, Vec<Diagnostic>) {
    load_all(dir, dir.exists())
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
        return (files, problems);
    }
    for path in yaml_files(dir) {
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&path, &text) {
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
