//! `gpuprobe bench` end to end against the fake driver: every kernel at
//! every size verified, cuBLAS measured when the image has it (on the
//! loader's path, CUDA 13's included, in a pip wheel's folder, or at the
//! path `--cublas` names) and absent without harm, wrong results failing
//! the run, sizes that do not fit
//! skipped with their reason, the probe's diagnoses and exit codes on a
//! machine without a GPU, and the SVG plot. Sizes stay tiny: the fake runs
//! kernels on a CPU emulation.
mod common;

use common::{command_with, gpuprobe_without_driver, parse_report};
use gpuprobe::report::{
    BenchKernel, BenchRow, BenchStatus, CheckStatus, CublasSource, CublasStatus, Report,
    ReportCommand, Verdict,
};

/// `gpuprobe bench --json ARGS` against a scenario: exit code and report.
fn bench(scenario: &str, args: &[&str]) -> (i32, Report) {
    let (mut cmd, _dir) = command_with(scenario);
    let output = cmd
        .env_remove("GPUPROBE_CUBLAS")
        .arg("bench")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let (_, report) = parse_report(&output.stdout);
    let code = output.status.code().expect("exited by a signal");
    assert_eq!(code, report.exit_code, "the exit code is the report's");
    (code, report)
}

fn rows(report: &Report, kernel: BenchKernel) -> Vec<&BenchRow> {
    report.devices[0]
        .bench
        .iter()
        .filter(|r| r.kernel == kernel)
        .collect()
}

fn sizes(rows: &[&BenchRow]) -> Vec<u32> {
    rows.iter().map(|r| r.size).collect()
}

#[test]
fn every_kernel_is_timed_and_verified_at_every_size_beside_the_cpu() {
    // Unsorted and repeated on purpose: the sweep runs each size once,
    // ascending.
    let (code, r) = bench("healthy", &["--sizes", "64,16,64", "--iterations", "1"]);
    assert_eq!(code, 0, "{}", r.summary);
    assert_eq!(r.command, ReportCommand::Bench);
    assert_eq!(r.verdict, Verdict::Healthy);
    assert_eq!(r.settings.size, 64);
    // No bandwidth check in the bench.
    assert_eq!(r.settings.bandwidth_bytes, None);
    // In use by others: NVML's reading from before gpuprobe's context,
    // which does not count that context (the scenario's 540 MiB).
    assert_eq!(r.devices[0].memory_used_bytes, Some(566_231_040));
    let bench = r.bench.as_ref().expect("the bench section");
    assert_eq!(bench.sizes, [16, 64]);
    assert_eq!(
        bench.cpu.iter().map(|c| c.size).collect::<Vec<_>>(),
        [16, 64]
    );
    assert!(bench
        .cpu
        .iter()
        .all(|c| c.status == BenchStatus::Pass && c.gflops.is_some_and(|g| g > 0.0)));
    // No cuBLAS in this image: said once, and the bench goes on without it.
    assert_eq!(bench.cublas.status, CublasStatus::NotFound);
    assert!(rows(&r, BenchKernel::Cublas).is_empty());
    for kernel in [
        BenchKernel::Fast,
        BenchKernel::Tiled,
        BenchKernel::Tf32,
        BenchKernel::Bf16,
    ] {
        let rows = rows(&r, kernel);
        assert_eq!(sizes(&rows), [16, 64], "{kernel}");
        for row in rows {
            assert_eq!(row.status, BenchStatus::Pass, "{kernel} {row:?}");
            let v = row.verification.as_ref().unwrap();
            assert!(v.passed && v.exact, "{kernel}: {v:?}");
            assert_eq!(v.elements, u64::from(row.size) * u64::from(row.size));
            // FP32 kernels also pass the rounding pass; tensor cores have none.
            let sampled = matches!(kernel, BenchKernel::Fast | BenchKernel::Tiled);
            assert_eq!(v.f64_sample.elements > 0, sampled, "{kernel}");
            assert_eq!(row.iterations, Some(1));
            assert!(row.gpu_gflops.is_some_and(|g| g > 0.0));
            assert!(row.speedup_vs_cpu.is_some());
            assert!(row
                .efficiency
                .and_then(gpuprobe::report::Figure::value)
                .is_some());
        }
    }
    let checks = &r.devices[0].checks;
    let per_size: Vec<&str> = checks
        .iter()
        .filter(|c| c.name == "bench")
        .map(|c| c.detail.as_str())
        .collect();
    assert_eq!(per_size.len(), 2, "one bench check per size: {checks:?}");
    assert!(r
        .checks
        .iter()
        .any(|c| c.name == "cublas" && c.status == CheckStatus::Skip));
}

#[test]
fn the_timed_runs_are_sized_from_a_warm_launch_not_the_cold_first() {
    // A GPU whose first launch is slow and the rest fast, as when the first
    // pays what is paid once (lazy module loading, cuBLAS's set-up), here
    // modelled by the SM clock: an idle GPU sits at a low clock and boosts
    // once it works (NVML's current SM clock; nvidia-smi's performance
    // states). 256 threads of a 16³ launch at 40 µs each at the idle
    // clock, a quarter of that once boosted: about 10 ms cold, 2.6 ms
    // warm. Sized from the cold launch, the timed runs would fill only a
    // quarter of --min-time.
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::scenario("healthy")).unwrap())
            .unwrap();
    let gpu = &mut scenario["devices"][0];
    gpu["launch_ns_per_thread"] = 40_000.into();
    gpu["nvml"] = serde_json::json!({"sm_clock_mhz": 495});
    gpu["under_load"] = serde_json::json!([{"after_ms": 1, "sm_clock_mhz": 1980}]);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("warming.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let driver = common::fake_driver(&path);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .envs(common::scenario_env(driver.path()))
        .args(["bench", "--json", "--sizes", "16", "--min-time", "200ms"])
        .output()
        .unwrap();
    let (_, r) = parse_report(&output.stdout);
    let row = rows(&r, BenchKernel::Fast)[0];
    assert_eq!(row.status, BenchStatus::Pass, "{row:?}");
    let (iterations, ms) = (row.iterations.unwrap(), row.gpu_time_ms.unwrap());
    // Enough warm products to fill --min-time, and not one more.
    assert!(
        f64::from(iterations) * ms >= 200.0 && f64::from(iterations - 1) * ms < 200.0,
        "{iterations} x {ms} ms"
    );
}

#[test]
fn cublas_is_measured_on_the_same_buffers_and_verified_when_present() {
    let (code, r) = bench("cublas", &["--sizes", "16,33", "--iterations", "1"]);
    assert_eq!(code, 0, "{}", r.summary);
    let cublas = &r.bench.as_ref().unwrap().cublas;
    assert_eq!(cublas.status, CublasStatus::Loaded);
    assert_eq!(cublas.library_source, Some(CublasSource::LoaderPath));
    assert!(cublas
        .library_path
        .as_deref()
        .is_some_and(|p| p.ends_with("libcublas.so.12")));
    let rows = rows(&r, BenchKernel::Cublas);
    // 33 is no multiple of any tile: the row-major product through
    // column-major cuBLAS must be right at every edge.
    assert_eq!(sizes(&rows), [16, 33]);
    for row in rows {
        assert_eq!(row.status, BenchStatus::Pass, "{row:?}");
        assert_eq!(row.entry, "cublasSgemm_v2");
        let v = row.verification.as_ref().unwrap();
        assert!(v.passed && v.exact && v.f64_sample.elements > 0, "{v:?}");
    }
}

/// The cuBLAS rows of a run that measured cuBLAS at 16 and 33: each
/// verified.
fn assert_cublas_rows_pass(r: &Report) {
    let rows = rows(r, BenchKernel::Cublas);
    assert_eq!(sizes(&rows), [16, 33]);
    for row in rows {
        assert_eq!(row.status, BenchStatus::Pass, "{row:?}");
        let v = row.verification.as_ref().unwrap();
        assert!(v.passed && v.exact, "{v:?}");
    }
}

#[test]
fn cuda_13_s_cublas_is_found_on_the_loader_s_path() {
    let (code, r) = bench("cublas-cuda13", &["--sizes", "16,33", "--iterations", "1"]);
    assert_eq!(code, 0, "{}", r.summary);
    let cublas = &r.bench.as_ref().unwrap().cublas;
    assert_eq!(cublas.status, CublasStatus::Loaded, "{:?}", cublas.error);
    assert_eq!(cublas.library_source, Some(CublasSource::LoaderPath));
    assert!(cublas
        .library_path
        .as_deref()
        .is_some_and(|p| p.ends_with("libcublas.so.13")));
    // Newest first: the CUDA 13 SONAME, then 12 and 11.
    assert_eq!(
        cublas.library_candidates[..3],
        ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"]
    );
    assert_cublas_rows_pass(&r);
}

#[test]
fn cublas_in_a_pip_wheel_s_folder_is_found_and_said_to_be() {
    for (scenario, file) in [
        // VIRTUAL_ENV names the venv.
        (
            "cublas-pip-wheel",
            "root/opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
        ),
        // No variable: conda's base environment, where images keep it.
        (
            "cublas-pip-wheel-cu12",
            "root/opt/conda/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
        ),
    ] {
        let (mut cmd, dir) = command_with(scenario);
        let out = cmd
            .env_remove("GPUPROBE_CUBLAS")
            .args(["bench", "--json", "--sizes", "16,33", "--iterations", "1"])
            .output()
            .unwrap();
        let (_, r) = parse_report(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{scenario}: {}", r.summary);
        let cublas = &r.bench.as_ref().unwrap().cublas;
        assert_eq!(
            cublas.status,
            CublasStatus::Loaded,
            "{scenario}: {cublas:?}"
        );
        assert_eq!(cublas.library_source, Some(CublasSource::PipWheel));
        let expected = dir.path().canonicalize().unwrap().join(file);
        assert_eq!(
            cublas.library_path.as_deref(),
            Some(expected.to_str().unwrap()),
            "{scenario}"
        );
        // After the loader's names, and found there by its full path.
        assert!(cublas
            .library_candidates
            .iter()
            .any(|c| c == expected.to_str().unwrap()));
        assert_cublas_rows_pass(&r);
        // The text says where it came from.
        let (mut cmd, _dir) = command_with(scenario);
        let out = cmd
            .env_remove("GPUPROBE_CUBLAS")
            .args(["bench", "--sizes", "16", "--iterations", "1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .any(|l| l.starts_with("cuBLAS: ") && l.contains("from a pip wheel")),
            "{text}"
        );
    }
}

#[test]
fn a_wheel_s_library_that_does_not_load_is_reported_not_skipped_over() {
    // What a wheel whose libcublasLt is missing looks like to gpuprobe: a
    // file the loader refuses. The search stops there and says so.
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::scenario("healthy")).unwrap())
            .unwrap();
    let wheel = "/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublas.so.13";
    scenario["host"] = serde_json::json!({ "files": { wheel: "not a library" } });
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("broken-wheel.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let driver = common::fake_driver(&path);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .envs(common::scenario_env(driver.path()))
        .env_remove("GPUPROBE_CUBLAS")
        .args(["bench", "--json", "--sizes", "16", "--iterations", "1"])
        .output()
        .unwrap();
    let (_, r) = parse_report(&output.stdout);
    // Not asked for by name: no failure, gpuprobe's kernels measured.
    assert_eq!(output.status.code(), Some(0), "{}", r.summary);
    let cublas = &r.bench.as_ref().unwrap().cublas;
    assert_eq!(cublas.status, CublasStatus::Unloadable);
    assert_eq!(cublas.library_source, Some(CublasSource::PipWheel));
    let error = cublas.error.as_deref().unwrap();
    assert!(error.contains(wheel), "{error}");
    assert!(rows(&r, BenchKernel::Cublas).is_empty());
}

#[test]
fn cublas_named_by_flag_or_variable_is_the_only_one_tried() {
    let file = "root/opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13";
    for by_variable in [false, true] {
        let (mut cmd, dir) = command_with("cublas-pip-wheel");
        let path = dir.path().join(file).display().to_string();
        cmd.env_remove("GPUPROBE_CUBLAS").args([
            "bench",
            "--json",
            "--sizes",
            "16,33",
            "--iterations",
            "1",
        ]);
        if by_variable {
            cmd.env("GPUPROBE_CUBLAS", &path);
        } else {
            cmd.args(["--cublas", &path]);
        }
        let out = cmd.output().unwrap();
        let (_, r) = parse_report(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", r.summary);
        let cublas = &r.bench.as_ref().unwrap().cublas;
        assert_eq!(cublas.status, CublasStatus::Loaded, "{cublas:?}");
        assert_eq!(cublas.library_source, Some(CublasSource::Explicit));
        assert_eq!(cublas.library_candidates, [path]);
        assert_cublas_rows_pass(&r);
    }
}

#[test]
fn a_bad_explicit_cublas_is_an_error_that_names_it_never_a_fallback() {
    // No such file: a usage error before anything runs, naming the path
    // (and the variable, when that set it).
    for by_variable in [false, true] {
        let (mut cmd, _dir) = command_with("cublas");
        cmd.env_remove("GPUPROBE_CUBLAS")
            .args(["bench", "--json", "--sizes", "16"]);
        if by_variable {
            cmd.env("GPUPROBE_CUBLAS", "/nonexistent/libcublas.so.13");
        } else {
            cmd.args(["--cublas", "/nonexistent/libcublas.so.13"]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("/nonexistent/libcublas.so.13"), "{stderr}");
        assert_eq!(stderr.contains("GPUPROBE_CUBLAS="), by_variable, "{stderr}");
    }
    // A file the loader refuses, in an image whose loader path has a good
    // cuBLAS: that one is not used instead, and the run fails.
    let (mut cmd, dir) = command_with("cublas");
    let broken = dir.path().join("libcublas-broken.so");
    std::fs::write(&broken, "not a library").unwrap();
    let out = cmd
        .env_remove("GPUPROBE_CUBLAS")
        .args(["bench", "--json", "--sizes", "16", "--iterations", "1"])
        .arg("--cublas")
        .arg(&broken)
        .output()
        .unwrap();
    let (_, r) = parse_report(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", r.summary);
    assert_eq!(r.verdict, Verdict::Failed);
    let broken = broken.display().to_string();
    assert!(r.summary.contains(&broken), "{}", r.summary);
    let cublas = &r.bench.as_ref().unwrap().cublas;
    assert_eq!(cublas.status, CublasStatus::Unloadable);
    assert_eq!(cublas.library_source, Some(CublasSource::Explicit));
    assert_eq!(cublas.library_candidates, [broken]);
    assert!(r
        .checks
        .iter()
        .any(|c| c.name == "cublas" && c.status == CheckStatus::Fail));
    assert!(rows(&r, BenchKernel::Cublas).is_empty());
    // gpuprobe's own kernels were still measured.
    assert_eq!(rows(&r, BenchKernel::Fast)[0].status, BenchStatus::Pass);
}

#[test]
fn a_wrong_result_fails_the_gpu_and_the_run() {
    let (code, r) = bench("corrupt-low-bit", &["--sizes", "16", "--iterations", "1"]);
    assert_eq!(code, 1);
    assert_eq!(r.verdict, Verdict::Failed);
    let failed: Vec<&BenchRow> = r.devices[0]
        .bench
        .iter()
        .filter(|row| row.status == BenchStatus::Fail)
        .collect();
    assert!(!failed.is_empty(), "{:?}", r.devices[0].bench);
    for row in failed {
        let v = row.verification.as_ref().unwrap();
        assert!(!v.passed && v.mismatches > 0);
    }
    assert!(r.devices[0]
        .checks
        .iter()
        .any(|c| c.name == "bench" && c.status == CheckStatus::Fail));
}

#[test]
fn without_a_gpu_bench_gets_the_probes_verdict_diagnoses_and_exit_code() {
    let mut diagnosed = 0;
    for scenario in ["no-device", "init-stub-34", "visible-devices-none"] {
        let (code, r) = bench(scenario, &["--sizes", "16"]);
        let (mut probe, _dir) = command_with(scenario);
        let probe = probe.args(["--json", "--size", "16"]).output().unwrap();
        let (_, p) = parse_report(&probe.stdout);
        assert_eq!(code, 3, "{scenario}: {}", r.summary);
        assert_eq!(
            (r.verdict, r.exit_code),
            (p.verdict, p.exit_code),
            "{scenario}"
        );
        let codes = |r: &Report| {
            r.diagnoses
                .iter()
                .map(|d| d.code.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&r), codes(&p), "{scenario}");
        diagnosed += usize::from(!codes(&r).is_empty());
        assert!(r.devices.iter().all(|d| d.bench.is_empty()));
    }
    assert!(diagnosed >= 2, "the comparison saw diagnoses");
    let (mut cmd, _empty) = gpuprobe_without_driver();
    let out = cmd.args(["bench", "--json"]).output().unwrap();
    let (_, r) = parse_report(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(r.verdict, Verdict::NoGpu);
    assert!(r.diagnoses.iter().any(|d| d.code == "GP001"));
}

#[test]
fn tensor_rows_say_why_a_gpu_below_compute_capability_8_runs_none() {
    let (code, r) = bench("volta", &["--sizes", "16", "--iterations", "1"]);
    assert_eq!(code, 0, "{}", r.summary);
    for kernel in [BenchKernel::Tf32, BenchKernel::Bf16] {
        let rows = rows(&r, kernel);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, BenchStatus::Skip);
        let reason = rows[0].reason.as_deref().unwrap();
        assert!(reason.contains("compute capability 8.0"), "{reason}");
    }
    assert_eq!(rows(&r, BenchKernel::Fast)[0].status, BenchStatus::Pass);
}

#[test]
fn a_size_the_gpu_memory_cannot_hold_is_skipped_with_the_reason() {
    let (code, r) = bench(
        "gpu-memory-nearly-full",
        &["--sizes", "16,512", "--iterations", "1"],
    );
    assert_eq!(code, 0, "{}", r.summary);
    let rows = &r.devices[0].bench;
    assert!(rows
        .iter()
        .filter(|row| row.size == 16)
        .all(|row| row.status == BenchStatus::Pass));
    let large: Vec<&BenchRow> = rows.iter().filter(|row| row.size == 512).collect();
    assert!(!large.is_empty());
    for row in large {
        assert_eq!(row.status, BenchStatus::Skip);
        let reason = row.reason.as_deref().unwrap();
        assert!(reason.contains("of GPU memory"), "{reason}");
    }
}

#[test]
fn a_size_the_deadline_cannot_hold_is_skipped_not_waited_for() {
    // On the fake a 16³ launch takes a few tenths of a millisecond of
    // emulation (its time, as no rate is modelled); 512³ is 32768 times
    // the work, projected at 5 to 12 s, past a quarter of an 8 s deadline
    // (under 2 s), so no kernel launches it; the CPU product (0.3 GFLOP)
    // still fits. (Against 20 s the quarter was 4.8 s, and the tiled
    // kernel's projection, about 5 s, fell on either side of it.)
    let (code, r) = bench(
        "healthy",
        &["--sizes", "16,512", "--iterations", "1", "--timeout", "8s"],
    );
    assert_eq!(code, 0, "{}", r.summary);
    let large: Vec<&BenchRow> = r.devices[0]
        .bench
        .iter()
        .filter(|row| row.size == 512)
        .collect();
    assert_eq!(large.len(), 4);
    for row in large {
        assert_eq!(row.status, BenchStatus::Skip, "{row:?}");
        let reason = row.reason.as_deref().unwrap();
        assert!(reason.contains("deadline"), "{reason}");
    }
}

#[test]
fn the_plot_is_svg_with_every_kernel_and_the_roofline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.svg");
    let (code, _) = bench(
        "healthy",
        &[
            "--sizes",
            "16,32",
            "--iterations",
            "1",
            "--plot",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the plot is well-formed XML");
    let texts: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for want in ["fast", "tiled", "tf32", "bf16", "CPU", "16", "32"] {
        assert!(texts.contains(&want), "{want} in {texts:?}");
    }
    assert!(
        texts.iter().any(|t| t.starts_with("FP32 peak")),
        "{texts:?}"
    );
    // An unwritable plot is the output's failure, not the GPU's.
    // A write that fails at the end: a FIFO nobody reads (a missing folder
    // is refused before the run: tests/output_files.rs).
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("bench.svg");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (mut cmd, _dir) = command_with("healthy");
    let out = cmd
        .args(["bench", "--sizes", "16", "--iterations", "1", "--plot"])
        .arg(&fifo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write --plot"));
    // ... and the report still goes out.
    assert!(String::from_utf8_lossy(&out.stdout).contains("fast"));
}

#[test]
fn the_table_has_a_row_per_kernel_and_size_and_no_progress_bar_off_a_terminal() {
    let (mut cmd, _dir) = command_with("healthy");
    let out = cmd
        .args(["bench", "--sizes", "16", "--iterations", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for kernel in ["fast", "tiled", "tf32", "bf16"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().take(2).eq(["16", kernel])),
            "{kernel} row in:\n{text}"
        );
    }
    assert!(text.contains("cuBLAS: no cuBLAS library found"), "{text}");
    // stderr is a pipe here: no bar drawn on it.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("gpuprobe bench"));
}

#[test]
fn bench_takes_sizes_not_size() {
    for args in [&["bench", "--size", "64"][..], &["bench", "--sizes", "0"]] {
        let out = assert_cmd::Command::cargo_bin("gpuprobe")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
