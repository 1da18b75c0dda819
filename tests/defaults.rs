//! Every scenario in tests/scenarios finishes, at the defaults of each
//! command it is meant for, before that command's deadline: the probe,
//! `health` and `list` on every scenario, `burn` on the burn-* ones, `memtest`
//! on the memtest-* ones, `bench`
//! on those whose image carries cuBLAS. Each runs through
//! scripts/with-fakegpu exactly as a person would run it, so with the
//! script's fake-sized defaults (`--size 128`, `--sizes 32,64,128`, 1 MiB
//! bandwidth buffers) and every other default of gpuprobe's own. This holds
//! the fake's modelled times and its emulated work together: a fake that
//! reports a GPU faster than it emulates makes gpuprobe's loops, sized from
//! the events, overrun their deadlines and end TIMEOUT, blaming a driver
//! that was only slow. Scenarios whose driver call hangs on purpose end at
//! their deadline by design; they get `--timeout 5s` so the suite stays
//! short (a command that never reaches the hanging call, as `list`, just
//! finishes).
#![cfg(target_os = "linux")]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gpuprobe::report::Verdict;
use serde_json::Value;

/// How long past its own deadline a run may take to leave (writing its
/// report, the fake's start-up, a loaded test machine).
const MARGIN: Duration = Duration::from_secs(20);
/// The deadline given to scenarios that hang on purpose.
const HANG_TIMEOUT: &str = "5s";

fn scenarios() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = std::fs::read_dir(common::root().join("tests/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, json)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(all.len() > 50, "found only {} scenarios", all.len());
    all
}

/// Whether a scenario's driver call never returns, by its `faults`.
fn hangs(scenario: &Value) -> bool {
    scenario["faults"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["hang"] == true))
}

struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `scripts/with-fakegpu SCENARIO gpuprobe ARGS`, killed at `deadline` plus
/// the margin.
fn run(name: &str, args: &[&str], deadline: Duration) -> Ended {
    let script: PathBuf = common::root().join("scripts/with-fakegpu");
    let started = Instant::now();
    let out = assert_cmd::Command::new(script)
        .arg(common::scenario(name))
        .arg(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .args(args)
        .env_remove("GPUPROBE_BANDWIDTH_SIZE")
        .env_remove("FAKEGPU_SIZE")
        .env_remove("FAKEGPU_SIZES")
        .timeout(deadline + MARGIN)
        .output()
        .unwrap();
    Ended {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Runs `command` (the probe when empty) with `--json` on every scenario
/// `wanted` picks, and lists every one that did not end in time or in its
/// expected way.
fn each(command: &[&str], deadline: Duration, wanted: impl Fn(&str, &Value) -> bool) {
    let mut wrong = Vec::new();
    let mut ran = 0;
    for (name, scenario) in scenarios() {
        if !wanted(&name, &scenario) {
            continue;
        }
        ran += 1;
        let hang = hangs(&scenario);
        let mut args: Vec<&str> = command.to_vec();
        // `health` prints one line, which ends with its verdict.
        if command != ["health"] {
            args.push("--json");
        }
        let deadline = if hang {
            args.extend(["--timeout", HANG_TIMEOUT]);
            humantime::parse_duration(HANG_TIMEOUT).unwrap()
        } else {
            deadline
        };
        let ended = run(&name, &args, deadline);
        if let Some(problem) = judge(&ended, hang, deadline) {
            wrong.push(format!(
                "{name} ({}): {problem} after {:.1} s\n  stderr: {}",
                if command.is_empty() {
                    "probe"
                } else {
                    command[0]
                },
                ended.took.as_secs_f64(),
                ended.stderr.lines().last().unwrap_or("")
            ));
        }
        eprintln!("{name}: {:.1} s", ended.took.as_secs_f64());
    }
    assert!(ran > 0, "no scenario picked");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What is wrong with a run, if anything.
fn judge(ended: &Ended, hang: bool, deadline: Duration) -> Option<String> {
    let Some(code) = ended.code else {
        return Some(format!(
            "killed past its deadline ({deadline:?}) plus the margin"
        ));
    };
    if ended.took > deadline + MARGIN {
        return Some(format!("took past its deadline ({deadline:?})"));
    }
    let (verdict, summary) = if ended.stdout.starts_with('{') {
        let (_, report) = common::parse_report(ended.stdout.as_bytes());
        (report.verdict, report.summary)
    } else {
        let Some(verdict) = health_verdict(&ended.stdout) else {
            return Some(format!("printed no verdict: {:?}", ended.stdout));
        };
        (verdict, ended.stdout.clone())
    };
    // `health` answers 0 or 1 only (Docker's HEALTHCHECK contract).
    let timeout_code = if ended.stdout.starts_with('{') { 4 } else { 1 };
    match (hang, verdict) {
        (false, Verdict::Timeout) => Some(format!("ended TIMEOUT: {summary}")),
        (true, Verdict::Timeout) if code != timeout_code => {
            Some(format!("timed out with exit {code}, not {timeout_code}"))
        }
        _ => None,
    }
}

/// The verdict in `health`'s line: `... [degraded, 42 ms]`, before any
/// `Fix: ...`.
fn health_verdict(line: &str) -> Option<Verdict> {
    // `[failed, 6 ms]`, or with the diagnoses' action `[failed, 6 ms,
    // action drain_and_service]`.
    let upto = &line[..line.rfind(" ms")?];
    let inside = &upto[upto.rfind('[')? + 1..];
    let word = inside.split(',').next()?;
    serde_json::from_value(Value::String(word.to_string())).ok()
}

fn every(_: &str, _: &Value) -> bool {
    true
}

/// Scenarios in the first half of the alphabet (the probe is the longest
/// of these runs: two tests, so they run side by side).
fn first_half(name: &str, _: &Value) -> bool {
    name < "h"
}

#[test]
fn the_probe_finishes_on_every_scenario_a_to_g() {
    each(&[], Duration::from_secs(60), first_half);
}

#[test]
fn the_probe_finishes_on_every_scenario_h_to_z() {
    each(&[], Duration::from_secs(60), |n, s| !first_half(n, s));
}

#[test]
fn health_finishes_on_every_scenario() {
    each(&["health"], Duration::from_secs(10), every);
}

#[test]
fn list_finishes_on_every_scenario() {
    each(&["list"], Duration::from_secs(60), every);
}

#[test]
fn bench_finishes_where_the_image_has_cublas() {
    each(&["bench"], Duration::from_secs(180), |_, s| {
        s["cublas"] == true || s["cublas"].is_object()
    });
}

/// `memtest` at its defaults (30 s; deadline the duration plus 2 minutes;
/// with-fakegpu's 4 MiB region) on the memtest-* scenarios.
#[test]
fn memtest_finishes_on_the_memtest_scenarios() {
    each(&["memtest"], Duration::from_secs(150), |name, _| {
        name.starts_with("memtest-")
    });
}

/// One burn scenario at burn's defaults (60 s; deadline the duration plus
/// 2 minutes): a test each, so they run beside the others.
fn burn(scenario: &str) {
    each(&["burn"], Duration::from_secs(180), |name, _| {
        name == scenario
    });
}

#[test]
fn burn_finishes_on_burn_steady() {
    burn("burn-steady");
}

#[test]
fn burn_finishes_on_burn_throttles() {
    burn("burn-throttles");
}

#[test]
fn burn_finishes_on_burn_transient_fault() {
    burn("burn-transient-fault");
}

#[test]
fn burn_finishes_on_burn_corrupts_when_hot() {
    burn("burn-corrupts-when-hot");
}

#[test]
fn burn_finishes_on_burn_hangs_mid_run() {
    burn("burn-hangs-mid-run");
}

#[test]
fn burn_finishes_on_burn_ecc_contained() {
    burn("burn-ecc-contained");
}

#[test]
fn every_burn_scenario_has_its_test() {
    let burns: Vec<String> = scenarios()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("burn-"))
        .collect();
    let source = std::fs::read_to_string(file!()).unwrap();
    for name in burns {
        let test = format!("fn burn_finishes_on_{}()", name.replace('-', "_"));
        assert!(source.contains(&test), "add `{test}` for {name}");
    }
}
