//! The memory test against the fake driver's faulty memory (a scenario's
//! `memory_faults`): healthy memory passes every pattern; a stuck bit is
//! caught with its offset and bit; a coupling between two cells is caught
//! by the moving inversions of random words and by nothing else; a GPU
//! shared with another process gets a capped test; the probe runs one pass
//! only when asked (`--memtest`), `burn --memtest` a pattern after each of
//! its intervals, and `health` and `watch` never.
#![cfg(target_os = "linux")]
mod common;

use common::{command_with, gpuprobe_args, gpuprobe_with, Run};
use gpuprobe::report::{CheckStatus, Memtest, MemtestPatternKind as Kind, Report, Verdict};

/// A short test over 4 MiB: the emulator runs the kernels on the CPU. The
/// seed fixes the random patterns; with 8 the first pass's random words
/// differ in the coupled cells' bit (memtest-coupled-cells).
fn memtest(scenario: &str) -> Run {
    gpuprobe_args(
        scenario,
        &[
            "memtest",
            "--json",
            "--duration",
            "1ms",
            "--size",
            "4MiB",
            "--seed",
            "8",
        ],
    )
}

fn found(report: &Report) -> &Memtest {
    report.devices[0]
        .memtest
        .as_ref()
        .expect("a memtest report")
}

fn check(report: &Report) -> (CheckStatus, &str) {
    let c = report.devices[0]
        .checks
        .iter()
        .find(|c| c.name == "memtest")
        .expect("a memtest check");
    (c.status, &c.detail)
}

fn caught_by(m: &Memtest, kind: Kind) -> u64 {
    m.patterns
        .iter()
        .filter(|p| p.pattern == kind)
        .map(|p| p.mismatches)
        .sum()
}

const ALL: [Kind; 5] = [
    Kind::WalkingOnes,
    Kind::WalkingZeros,
    Kind::OwnAddress,
    Kind::MovingInversionsOnesZeros,
    Kind::MovingInversionsRandom,
];

#[test]
fn healthy_memory_passes_every_pattern() {
    let run = memtest("healthy");
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    assert_eq!(run.code(), 0);
    let m = found(&run.report);
    assert_eq!(m.bytes_tested, 4 << 20);
    assert_eq!(m.mismatches, 0);
    assert!(m.first_mismatches.is_empty());
    assert!(m.passes >= 1);
    assert!(!m.capped_for_other_process);
    for kind in ALL {
        let p = m.patterns.iter().find(|p| p.pattern == kind).expect("ran");
        assert!(p.runs >= 1, "{kind:?}");
    }
    // Writes and reads of every pattern, on the GPU's clock, against the
    // theoretical bandwidth.
    assert!(m.bytes_moved > 0 && m.gbps > 0.0);
    assert!(m
        .efficiency
        .and_then(gpuprobe::report::Figure::value)
        .is_some());
    assert_eq!(check(&run.report).0, CheckStatus::Pass);
    assert!(run.report.diagnoses.is_empty());
}

#[test]
fn a_stuck_bit_is_caught_with_its_offset_and_bit() {
    let run = memtest("memtest-stuck-bit");
    assert_eq!(run.report.verdict, Verdict::Failed);
    assert_eq!(run.code(), 1);
    let m = found(&run.report);
    assert!(m.mismatches > 0);
    let first = &m.first_mismatches[0];
    // The scenario's cell: bit 13 of the word 3 MiB + 0x124 in, stuck at 1.
    assert_eq!(first.offset, 3 * (1 << 20) + 0x124);
    assert_eq!(first.bits, [13]);
    assert_eq!(first.actual & (1 << 13), 1 << 13);
    assert_eq!(first.expected & (1 << 13), 0);
    assert!(m
        .first_mismatches
        .iter()
        .all(|x| x.offset == first.offset && x.bits == [13]));
    // Walking ones sets bit 13 in 1 of its 32 patterns; the other 31 catch
    // the stuck 1, in every pass.
    assert_eq!(caught_by(m, Kind::WalkingOnes), 31 * u64::from(m.passes));
    let (status, detail) = check(&run.report);
    assert_eq!(status, CheckStatus::Fail);
    assert!(detail.contains("0x300124"), "{detail}");
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP044"]);
    assert!(run.report.diagnoses[0].evidence[0].contains("bit 13"));
}

#[test]
fn a_coupling_is_caught_by_the_moving_inversions_of_random_words_only() {
    let run = memtest("memtest-coupled-cells");
    assert_eq!(
        run.report.verdict,
        Verdict::Failed,
        "{}",
        run.report.summary
    );
    let m = found(&run.report);
    assert!(caught_by(m, Kind::MovingInversionsRandom) > 0);
    // Solid, walking and own-address patterns write both cells alike.
    for kind in [
        Kind::WalkingOnes,
        Kind::WalkingZeros,
        Kind::OwnAddress,
        Kind::MovingInversionsOnesZeros,
    ] {
        assert_eq!(caught_by(m, kind), 0, "{kind:?}");
    }
    let first = &m.first_mismatches[0];
    assert_eq!(first.offset, 2 * (1 << 20) + 0x10);
    assert_eq!(first.bits, [7]);
}

#[test]
fn a_gpu_shared_with_another_process_gets_a_capped_test() {
    let run = gpuprobe_args(
        "memtest-shared-gpu",
        &["memtest", "--json", "--duration", "1ms", "--size", "4MiB"],
    );
    let m = found(&run.report);
    assert!(m.capped_for_other_process);
    assert!(m.bytes_tested <= 1 << 30);
    let (status, detail) = check(&run.report);
    assert_eq!(status, CheckStatus::Pass);
    assert!(detail.contains("another compute process"), "{detail}");
}

#[test]
fn the_probe_runs_one_pass_only_when_asked() {
    let small = ["--size", "16", "--iterations", "1", "--bandwidth-size", "0"];
    let plain = gpuprobe_with("healthy", &small, &[]);
    assert!(plain.report.devices[0].memtest.is_none());
    assert!(!plain.report.devices[0]
        .checks
        .iter()
        .any(|c| c.name == "memtest"));
    let mut asked = small.to_vec();
    asked.extend(["--memtest", "4MiB", "--seed", "8"]);
    let run = gpuprobe_with("memtest-stuck-bit", &asked, &[]);
    let m = found(&run.report);
    assert_eq!(m.passes, 1);
    assert!(m.mismatches > 0);
    assert_eq!(run.report.verdict, Verdict::Failed);
}

#[test]
fn health_and_watch_take_no_memtest() {
    for args in [
        &["health", "--memtest", "4MiB"][..],
        &["watch", "--memtest", "4MiB"][..],
    ] {
        let (mut cmd, _dir) = command_with("healthy");
        let out = cmd.args(args).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--memtest")
                || String::from_utf8_lossy(&out.stderr).contains("--memtest"),
            "{args:?}"
        );
    }
}

#[test]
fn burn_interleaves_the_patterns_with_its_intervals() {
    let run = gpuprobe_args(
        "memtest-stuck-bit",
        &[
            "burn",
            "--json",
            "--duration",
            "2s",
            "--sample-every",
            "200ms",
            "--size",
            "32",
            "--iterations",
            "1",
            "--memtest",
            "4MiB",
        ],
    );
    let d = &run.report.devices[0];
    let burn = d.burn.as_ref().expect("the burn ran");
    assert!(burn.errors.is_empty(), "the burn's own products are right");
    let m = found(&run.report);
    // One pattern after each interval: as many as the burn had, at most.
    let runs: u32 = m.patterns.iter().map(|p| p.runs).sum();
    assert!(runs >= 2, "{runs} pattern runs");
    assert!(runs as usize <= burn.intervals.len() + 1);
    assert_eq!(m.first_mismatches[0].bits, [13]);
    assert_eq!(run.report.verdict, Verdict::Failed);
    // GP044 leads; the emulator's pace under a loaded test machine may
    // add a slowdown warning (GP032), which this test does not judge.
    assert_eq!(run.report.diagnoses[0].code, "GP044");
}

#[test]
fn a_soft_error_flips_once_and_is_counted_once() {
    // The fake's `flip`: the cell flips after the first write that reaches
    // its allocation (the first sweep of walking ones), then holds.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memtest-flip.json");
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::scenario("healthy")).unwrap())
            .unwrap();
    scenario["devices"][0]["memory_faults"] =
        serde_json::json!([{"offset": 1_048_576, "bit": 30, "kind": "flip"}]);
    std::fs::write(&path, scenario.to_string()).unwrap();
    let (mut cmd, _fake) = common::command_with_file(&path);
    let out = cmd
        .args(["memtest", "--json", "--duration", "1ms", "--size", "4MiB"])
        .output()
        .unwrap();
    let (_, report) = common::parse_report(&out.stdout);
    let m = found(&report);
    assert_eq!(m.mismatches, 1);
    assert_eq!(caught_by(m, Kind::WalkingOnes), 1);
    let first = &m.first_mismatches[0];
    assert_eq!(
        (first.offset, first.expected, first.actual),
        (1 << 20, 1, 1 | 1 << 30)
    );
    assert_eq!(first.bits, [30]);
}

#[test]
fn memtest_holds_no_speed_requirement_it_does_not_measure() {
    let run = gpuprobe_args(
        "healthy",
        &[
            "memtest",
            "--json",
            "--duration",
            "1ms",
            "--size",
            "4MiB",
            "--require-speedup",
            "2",
            "--require-gpus",
            "1",
        ],
    );
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    let checks = &run.report.devices[0].checks;
    let speedup = checks
        .iter()
        .chain(&run.report.checks)
        .find(|c| c.name == "require_speedup")
        .expect("the requirement is recorded");
    assert_eq!(speedup.status, CheckStatus::Skip);
}
