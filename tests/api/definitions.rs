//! Definitions: located errors (all at once), `scimlab validate`, shipped files and README blocks.
use std::path::Path;
use std::process::Command;

fn validate(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("validate")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn write_all(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn every_problem_is_reported_with_file_line_and_column() {
    let dir = write_all(&[
        (
            "a.yaml",
            "id: dup\ntokens: [t1]\nresource_types:\n  User: {}\n",
        ),
        (
            "b.yaml",
            "id: dup\ntokens: [t1]\nresource_types:\n  User:\n    extensions: [urn:nope]\n  Widget: {}\n  Group:\n    endpoint: /Users\n",
        ),
        (
            "c.yaml",
            "id: c\ntokens: [t3]\nresource_types:\n  User:\n    colour: blue\n",
        ),
        (
            "d.yaml",
            "id: d\ntokens: [t4]\nresource_types:\n  User:\n    attributes:\n      level: { type: integer, canonical_values: [a] }\n      box: { type: complex }\n      k: { type: string, required: true, mutability: readOnly }\nvalidation:\n  check_references: [bogus]\n",
        ),
        ("e.yaml", "id: [unclosed\n"),
    ]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    let d = dir.path().display().to_string();
    for want in [
        format!("{d}/b.yaml:1:1: server id \"dup\" is already defined in"),
        format!("{d}/b.yaml:2:1: a token of server \"dup\""),
        format!("{d}/b.yaml:5:5: unknown schema URN \"urn:nope\""),
        format!("{d}/b.yaml:6:3: no schema named \"Widget\""),
        format!("{d}/b.yaml:4:3: endpoint \"/Users\" is also used by resource type \"Group\""),
        format!("{d}/c.yaml:5:5: resource_types.User: unknown field `colour`"),
        format!("{d}/d.yaml:6:7: canonical_values need a string attribute"),
        format!("{d}/d.yaml:7:7: complex attribute \"box\" needs sub_attributes"),
        format!("{d}/d.yaml:8:7: \"k\" is required but readOnly"),
        format!("{d}/d.yaml:10:3: unknown reference attribute \"bogus\""),
        format!("{d}/e.yaml:1:"),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn shipped_definitions_are_valid() {
    let (code, out) = validate(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/servers.d")));
    assert_eq!(code, 0, "{out}");
    for id in [
        "okta-sandbox",
        "entra",
        "agents",
        "aws-iam-identity-center",
        "devices",
        "hr-portal",
        "it-desk",
        "sales-crm",
        "slack",
        "snowflake",
    ] {
        assert!(out.contains(id), "{out}");
    }
}

/// Every ```yaml block in the README that defines a server compiles.
#[test]
fn readme_yaml_blocks_compile() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```yaml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(!blocks.is_empty(), "README has no yaml blocks");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut profiles = 0;
    for (i, block) in blocks.iter().enumerate() {
        // A profile pack block is checked by applying it to a server.
        if let Ok(pack) = serde_saphyr::from_str::<scimlab::definition::ProfileDef>(block) {
            profiles += 1;
            let dir = tempfile::tempdir().unwrap();
            let (servers, packs) = (dir.path().join("servers.d"), dir.path().join("profiles"));
            std::fs::create_dir_all(&servers).unwrap();
            std::fs::create_dir_all(&packs).unwrap();
            std::fs::write(packs.join("readme.yaml"), block).unwrap();
            std::fs::write(
                servers.join("s.yaml"),
                format!(
                    "id: s\ntokens: [t]\nprofiles: [{}]\nresource_types:\n  User: {{}}\n",
                    pack.id
                ),
            )
            .unwrap();
            let result = scimlab::model::Sources::new(&servers, &packs).compile();
            assert!(
                result.is_ok(),
                "README profile block {i}: {result:?}\n{block}"
            );
            continue;
        }
        let dir = write_all(&[("readme.yaml", block)]);
        let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .arg("validate")
            .arg(dir.path())
            .arg("--profiles")
            .arg(&shipped)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README yaml block {i} is invalid:\n{}\n{block}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(profiles >= 1, "the README shows a profile pack");
}

#[test]
fn committed_json_schema_matches_the_definition_types() {
    for (args, file) in [
        (&["schema"][..], "server-definition.schema.json"),
        (&["schema", "--profile"][..], "profile.schema.json"),
        (
            &["probe", "--report-schema"][..],
            "probe-report.schema.json",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .args(args)
            .output()
            .unwrap();
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("schemas")
                    .join(file),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            printed,
            committed,
            "run `scimlab {} > schemas/{file}`",
            args.join(" ")
        );
    }
}

#[test]
fn new_with_profiles_writes_a_starter_that_applies_them() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles"));
    let run_with = |profiles: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .args(args)
            .arg("--servers")
            .arg(dir.path())
            .arg("--profiles")
            .arg(profiles)
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| run_with(profiles, args);
    let out = run(&["new", "hris", "--profile", "hr,finance"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("hris.yaml")).unwrap();
    assert!(text.contains("profiles: [hr, finance]"), "{text}");
    let model = scimlab::model::Sources::new(dir.path(), profiles)
        .compile()
        .unwrap();
    assert_eq!(model.server("hris").unwrap().profiles, ["hr", "finance"]);
    // An unknown profile is refused before anything is written.
    let out = run(&["new", "bad", "--profile", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("unknown profile \"nope\"; the loaded profile packs are: "),
        "{err}"
    );
    assert!(!dir.path().join("bad.yaml").exists());
    // Run where no profile pack is found (outside the checkout), it says where packs come from.
    let out = run_with(
        &dir.path().join("no-such-dir"),
        &["new", "hris2", "--profile", "hr"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no profile pack is loaded; point --profiles"),
        "{err}"
    );
    assert!(!dir.path().join("hris2.yaml").exists());
}

#[test]
fn new_writes_a_valid_starter_and_diff_names_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args([
            "new",
            "starter",
            "--resource-types",
            "User,Group,Agent",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("starter.yaml")).unwrap();
    assert!(
        text.starts_with("# yaml-language-server: $schema="),
        "{text}"
    );
    assert_eq!(validate(dir.path()).0, 0);
    // Refuses to overwrite, and refuses types it cannot serve.
    let again = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(["new", "starter", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let bad = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(["new", "x", "--resource-types", "Widget", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success() && !dir.path().join("x.yaml").exists());

    let newer = tempfile::tempdir().unwrap();
    let changed = text
        .replace("  Agent: {}\n", "  Role: {}\n")
        .replace("    # attributes:\n", "    attributes:\n")
        .replace("    #   costCentre", "      costCentre");
    std::fs::write(newer.path().join("starter.yaml"), changed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("diff")
        .arg(dir.path())
        .arg(newer.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    for want in [
        "starter: resource type Role added at /Roles",
        "starter: resource type Agent removed",
        "starter: User attribute urn:scimlab:schemas:extension:starter:2.0:User:costCentre added",
    ] {
        assert!(said.contains(want), "missing {want:?} in:\n{said}");
    }
}
