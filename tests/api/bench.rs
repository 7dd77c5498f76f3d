//! `scimlab bench` end to end, on a small store: the figures it prints come from real requests.

/// `--server-alone` runs `scimlab serve` as a process of its own and reports that process's
/// CPU per request and peak RSS for each workload (the load driver's left out).
#[test]
fn bench_reports_the_server_process_alone() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args([
            "bench",
            "--users",
            "300",
            "--seconds",
            "0.3",
            "--connections",
            "4",
            "--only",
            "PATCH /Users",
            "--server-alone",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alone = stdout
        .split_once("scimlab serve alone")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no figures of the server alone: {stdout}"));
    let workloads = [
        "create (POST /Users)",
        "GET /Users?filter=userName eq",
        "GET /Users/{id}",
        "GET /Users page of 100",
        "PATCH /Users/{id}",
    ];
    for name in workloads {
        let row = (alone.lines())
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {alone}"));
        let figures: Vec<f64> = (row[name.len()..].split_whitespace())
            .map(|w| w.parse().unwrap())
            .collect();
        // A rate, a CPU time per request and the peak RSS so far, all measured.
        assert_eq!(figures.len(), 3, "{row}");
        assert!(figures.iter().all(|f| *f > 0.0), "{row}");
    }
    assert!(alone.contains("RSS at the end"), "{alone}");
}
