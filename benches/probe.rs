//! gpuprobe end to end, as a container would run it: the no-driver run (the
//! most common first contact), and a full probe against the fake driver.
//!
//! Before timing, it prints the peak resident memory of the no-driver run
//! (getrusage of the child), the number the README's target is about.
#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("gpuprobe")
}

/// Peak RSS in KiB of one run of `cmd` (Linux getrusage of children).
#[cfg(target_os = "linux")]
fn peak_rss_kib(cmd: &mut Command) -> i64 {
    let before = children_maxrss();
    let status = cmd.status().expect("running gpuprobe");
    assert!(status.code().is_some());
    // ru_maxrss of children is the largest of any child so far; the first
    // child measured is this one.
    children_maxrss().max(before)
}

#[cfg(target_os = "linux")]
fn children_maxrss() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) };
    usage.ru_maxrss
}

fn probe(c: &mut Criterion) {
    let empty = tempfile::tempdir().unwrap();
    let no_driver = || {
        let mut cmd = Command::new(binary());
        cmd.env("LD_LIBRARY_PATH", empty.path()).arg("--json").stdout(std::process::Stdio::null());
        cmd
    };
    #[cfg(target_os = "linux")]
    eprintln!("no-driver run: peak RSS {} KiB", peak_rss_kib(&mut no_driver()));
    c.bench_function("no_driver_run", |b| b.iter(|| no_driver().status().unwrap()));

    let scenario = common::scenario("healthy");
    let dir = common::fake_driver(&scenario);
    let mut group = c.benchmark_group("fake_driver");
    group.sample_size(10);
    group.bench_function("full_probe_size_64", |b| {
        b.iter(|| {
            Command::new(binary())
                .env("LD_LIBRARY_PATH", dir.path())
                .env("FAKEGPU_SCENARIO", &scenario)
                .args(["--json", "--size", "64", "--iterations", "1"])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, probe);
criterion_main!(benches);
