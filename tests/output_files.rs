//! Files where users put them: every flag that writes a file (`--output`,
//! `--plot`, `watch --state` and `--prometheus`) writes through symlinks
//! (a node_exporter textfile folder, a Kubernetes ConfigMap-style `..data`
//! link) and keeps the links, and a file that cannot be written at all is
//! refused with exit 2 before anything runs, so a long `burn` cannot end by
//! losing its report. Runs without a GPU (`common::gpuprobe_without_driver`),
//! and against the fake driver where a run must take long.
#![cfg(target_os = "linux")]
mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{command_with, gpuprobe_without_driver, parse_report};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_symlink()
}

/// gpuprobe without a driver: `args`, then `flag path`.
fn run(args: &[&str], flag: &str, path: &Path) -> Output {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.args(args).arg(flag).arg(path).output().unwrap()
}

#[test]
fn a_symlinked_output_keeps_the_link_and_its_target_gets_the_report() {
    let collector = tempfile::tempdir().unwrap();
    let target = collector.path().join("report.json");
    std::fs::write(&target, "old").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("report.json");
    symlink(&target, &link).unwrap();
    let out = run(&["--json"], "--output", &link);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(is_link(&link), "the link was replaced by a file");
    let written = std::fs::read(&target).unwrap();
    assert_eq!(written, out.stdout, "the target holds the report");
    parse_report(&written);
}

/// Kubernetes' atomic writer (ConfigMaps, Secrets, the downward API) lays
/// files out as `name -> ..data/name`, `..data -> ..<timestamp>`.
fn configmap_style(dir: &Path, names: &[&str]) -> PathBuf {
    let real = dir.join("..2026_01_01_00_00_00.42");
    std::fs::create_dir(&real).unwrap();
    symlink("..2026_01_01_00_00_00.42", dir.join("..data")).unwrap();
    for name in names {
        std::fs::write(real.join(name), "old").unwrap();
        symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    real
}

#[test]
fn watch_writes_its_files_through_a_configmap_style_chain() {
    let dir = tempfile::tempdir().unwrap();
    let real = configmap_style(dir.path(), &["state.json", "gpu.prom"]);
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .args(["watch", "--count", "1", "--interval", "1h", "--quiet"])
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .arg("--prometheus")
        .arg(dir.path().join("gpu.prom"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    for link in ["state.json", "gpu.prom", "..data"] {
        assert!(is_link(&dir.path().join(link)), "{link} was replaced");
    }
    parse_report(&std::fs::read(real.join("state.json")).unwrap());
    let prom = std::fs::read_to_string(real.join("gpu.prom")).unwrap();
    assert!(prom.contains("# TYPE gpuprobe_"), "{prom}");
    // The temporaries were made, and renamed, in the real folder.
    let mut left: Vec<_> = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["gpu.prom", "state.json"]);
}

#[test]
fn plots_and_outputs_of_bench_and_burn_go_through_symlinks() {
    for command in ["bench", "burn"] {
        let dir = tempfile::tempdir().unwrap();
        let real = configmap_style(dir.path(), &["plot.svg", "report.json"]);
        let (mut cmd, _lib) = gpuprobe_without_driver();
        let out = cmd
            .args([command, "--json", "--plot"])
            .arg(dir.path().join("plot.svg"))
            .arg("--output")
            .arg(dir.path().join("report.json"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{command}: {}", text(&out));
        for link in ["plot.svg", "report.json"] {
            assert!(is_link(&dir.path().join(link)), "{command}: {link}");
        }
        let svg = std::fs::read_to_string(real.join("plot.svg")).unwrap();
        assert!(svg.contains("<svg"), "{command}: {svg}");
        assert_eq!(std::fs::read(real.join("report.json")).unwrap(), out.stdout);
    }
}

/// Every file-writing flag of every command, with what keeps the run short
/// on today's code too (one watch cycle, a one-second burn, a tiny exec).
const FLAGS: [(&[&str], &str, &[&str]); 9] = [
    (&[], "--output", &[]),
    (&["list"], "--output", &[]),
    (
        &["exec", "--warn-only"],
        "--output",
        &["--", "/bin/echo", "workload ran"],
    ),
    (
        &["watch", "--count", "1", "--interval", "1h"],
        "--state",
        &[],
    ),
    (
        &["watch", "--count", "1", "--interval", "1h"],
        "--prometheus",
        &[],
    ),
    (&["bench"], "--output", &[]),
    (&["bench"], "--plot", &[]),
    (&["burn", "--duration", "1s"], "--output", &[]),
    (&["burn", "--duration", "1s"], "--plot", &[]),
];

/// Paths no file can be written to, even by root (who ignores permission
/// bits): a missing folder, a directory, a name over NAME_MAX (255), a file
/// as the folder, and /proc, where nobody can create a file.
fn unwritable(dir: &Path) -> Vec<PathBuf> {
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    vec![
        dir.join("no-such-folder/report"),
        dir.to_path_buf(),
        dir.join("n".repeat(300)),
        file.join("report"),
        PathBuf::from("/proc/gpuprobe-report"),
    ]
}

#[test]
fn a_file_that_cannot_be_written_is_refused_with_exit_2_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for path in unwritable(dir.path()) {
        for (args, flag, after) in FLAGS {
            let (mut cmd, _lib) = gpuprobe_without_driver();
            let out = cmd
                .args(args)
                .arg(flag)
                .arg(&path)
                .args(after)
                .output()
                .unwrap();
            let what = format!("{args:?} {flag} {}: {}", path.display(), text(&out));
            assert_eq!(out.status.code(), Some(2), "{what}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("cannot write {flag} {}", path.display())),
                "{what}"
            );
            assert!(stderr.contains("nothing was run"), "{what}");
            // Nothing ran: no report, no JSON line, no workload.
            assert!(out.stdout.is_empty(), "{what}");
        }
    }
    // Nothing was left behind where it could be written.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["a-file"]);
}

#[test]
fn every_unwritable_file_is_named_not_only_the_first() {
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .args(["burn", "--output", "/no-such-folder/burn.json"])
        .args(["--plot", "/no-such-folder/burn.svg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write --output"), "{stderr}");
    assert!(stderr.contains("cannot write --plot"), "{stderr}");
    assert!(
        stderr.contains("/no-such-folder does not exist"),
        "{stderr}"
    );
}

/// The point of checking first: a 20-second burn with a report it cannot
/// write ends at once, not after 20 seconds of load.
#[test]
fn a_long_burn_with_an_unwritable_report_ends_at_once() {
    let (mut cmd, _lib) = command_with("burn-steady");
    let started = Instant::now();
    let out = cmd
        .args(["burn", "--duration", "20s", "--size", "16", "--json"])
        .args(["--output", "/no-such-folder/burn.json"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A failure only writing can find (a FIFO nobody reads) is still exit 5,
/// with the report on stdout: the check before the run opens no FIFO, whose
/// reader may come later. (Not /dev/full: the old `--plot` renamed a file
/// over it.)
#[test]
fn a_write_that_fails_at_the_end_stays_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()));
    for (args, flag) in [
        (&["--json"][..], "--output"),
        (&["bench", "--json"], "--plot"),
        (&["burn", "--json", "--duration", "1s"], "--plot"),
    ] {
        let out = run(args, flag, &fifo);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("nobody reads"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!out.stdout.is_empty(), "{args:?}: the report went out");
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert!(!meta.is_file(), "{args:?}: the FIFO was replaced by a file");
    }
}
