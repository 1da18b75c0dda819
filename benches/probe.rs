//! gpuprobe end to end, as a container would run it: the no-driver run (the
//! most common first contact), and a full probe against the fake driver.
//! Peak memory is measured by scripts/bench-startup (GNU time): a
//! fork of this large benchmark process would count its pages too.
#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("gpuprobe")
}

fn probe(c: &mut Criterion) {
    let empty = tempfile::tempdir().unwrap();
    let no_driver = || {
        let mut cmd = Command::new(binary());
        cmd.env("LD_LIBRARY_PATH", empty.path())
            .arg("--json")
            .stdout(std::process::Stdio::null());
        cmd
    };
    c.bench_function("no_driver_run", |b| {
        b.iter(|| no_driver().status().unwrap());
    });

    let dir = common::fake_driver(&common::scenario("healthy"));
    let env = common::scenario_env(dir.path());
    let mut group = c.benchmark_group("fake_driver");
    group.sample_size(10);
    group.bench_function("full_probe_size_64", |b| {
        b.iter(|| {
            Command::new(binary())
                .envs(env.iter().cloned())
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
