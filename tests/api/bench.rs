//! `scimlab bench` and `bench-reload` end to end, on small stores: the figures they print come
//! from real requests.

/// Runs the built binary with `args`, which must succeed; its standard output.
fn bench(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `--server-alone` runs `scimlab serve` as a process of its own and reports that process's
/// CPU per request and peak RSS for each workload (the load driver's left out); `--repeat`
/// runs it all again and sums each figure up over the runs.
#[test]
fn bench_reports_the_server_process_alone_and_figures_over_runs() {
    let stdout = bench(&[
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
        "--repeat",
        "2",
    ]);
    assert_eq!(stdout.matches("scimlab serve alone").count(), 2, "{stdout}");
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
    let (_, over) = (stdout.split_once("over 2 runs"))
        .unwrap_or_else(|| panic!("no figures over the runs: {stdout}"));
    for name in ["PATCH /Users/{id}", "alone: PATCH /Users/{id}"] {
        let row = (over.lines())
            .find(|l| l.starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("no row for {name}: {over}"));
        // Four figures as a median and its range ("1234 (1100–1300)"); the one the workload
        // lacks (share of bare alone, peak RSS in-process) as "-".
        let figures = &row[name.len()..];
        assert_eq!(figures.matches(" (").count(), 4, "{row}");
        let missing = figures.split_whitespace().filter(|w| *w == "-").count();
        assert_eq!(missing, 1, "{row}");
    }
}

/// `scimlab bench-reload` runs end to end (edits served, then writes with every server
/// loaded) and reports a row per number of servers.
#[test]
fn bench_reload_reports_reload_and_write_latency_per_number_of_servers() {
    let stdout = bench(&["bench-reload", "--servers", "1,3", "--edits", "2"]);
    assert!(stdout.contains("create p50 ms"), "{stdout}");
    let rows: Vec<Vec<f64>> = stdout
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect::<Vec<f64>>()
        })
        .filter(|cols| cols.len() == 6)
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [1.0, 3.0],
        "{stdout}"
    );
    assert!(rows.iter().all(|r| r[4] > 0.0 && r[5] > 0.0), "{stdout}");
}
