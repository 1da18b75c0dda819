//! scripts/gpu-validate, the one command a rare and short real-GPU run gets
//! (docs/gpu-validation.md, "How to run it"), run here in its small mode
//! against the fake driver with cuBLAS: it must get through every section
//! in order, say what it skipped (no nvidia-smi, no torch), and leave only
//! summary.txt and one archive of valid reports. A script that breaks here
//! would break on the GPU machine, where a rerun costs device time.
#![cfg(target_os = "linux")]
mod common;

use std::process::Command;
use std::time::Instant;

use common::{command_with, parse_report, root, scenario_env};

/// The summary's sections, in the order the key numbers must come.
const SECTIONS: [&str; 11] = [
    "== 1. devices and driver",
    "== 2. SGEMM at 128^3",
    "== 3. health: cold",
    "== 4. bandwidth",
    "== 5. burn: 3s at 64^3",
    "== 6. correctness by size",
    "== 7. JIT cost",
    "== 8. partial visibility",
    "== 9. start-up cost",
    "== 10. ptxas",
    "== 11. bench",
];

fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one run of the script, then each section of its summary checked in the order the script writes them"
)]
fn gpu_validate_runs_every_section_against_the_fake_and_archives_the_reports() {
    let (_cmd, driver) = command_with("cublas");
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(root().join("scripts/gpu-validate"))
        .arg(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .envs(scenario_env(driver.path()))
        .env("OUT", out.path())
        .env("VALIDATE_FAKE", "1")
        .env_remove("CUDA_VISIBLE_DEVICES")
        .env_remove("VALIDATE_SMALL")
        .env_remove("VALIDATE_BUDGET_S")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "gpu-validate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("gpu-validate took {:?}", started.elapsed());

    // Only the summary and the archive are left.
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["gpu-validation.tar.gz", "summary.txt"]);

    let summary = std::fs::read_to_string(out.path().join("summary.txt")).unwrap();
    assert_eq!(summary, stdout, "the summary is what was printed");
    let mut from = 0;
    for section in SECTIONS {
        let at = summary[from..]
            .find(section)
            .unwrap_or_else(|| panic!("no {section:?} after byte {from}:\n{summary}"));
        from += at + section.len();
    }
    for expected in [
        "nvidia-smi: skipped: no nvidia-smi",
        "cuBLAS: skipped: no torch",
        "PyTorch bandwidth: skipped: no torch",
        "health-cold ",
        "health-warm ",
        "bench ",
        "== files: gpu-validation.tar.gz",
    ] {
        assert!(summary.contains(expected), "no {expected:?}:\n{summary}");
    }
    for unexpected in ["FAILED", "TIMED OUT", "skipped: budget spent", "Traceback"] {
        assert!(!summary.contains(unexpected), "{unexpected:?}:\n{summary}");
    }
    if python3() {
        // The numbers read from the reports (summarize.py), not only the headings.
        for expected in [
            "GPU 0 ours gpuprobe_sgemm_fast 128x128x128",
            "GPU 0 device_copy",
            "GPU 0 burn completed",
            "GPU 0 memtest 4194304 B in 1 chunk(s)",
            "size   127 GPU 0 pass",
            "jit cold  GPU 0 module_load_ms",
            "CUDA_VISIBLE_DEVICES='': devices none",
            "GPU 0    64 cublas pass",
        ] {
            assert!(summary.contains(expected), "no {expected:?}:\n{summary}");
        }
    }

    // The archive holds every report, each valid against the schema.
    let unpacked = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(out.path().join("gpu-validation.tar.gz"))
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let files = unpacked.path().join("gpu-validation");
    for report in [
        "list.json",
        "probe-128.json",
        "burn.json",
        "memtest.json",
        "probe-size-1.json",
        "probe-size-17.json",
        "probe-size-64.json",
        "probe-size-127.json",
        "jit-cold.json",
        "jit-warm.json",
        "jit-off.json",
        "visible-0.json",
        "visible-uuid.json",
        "visible-empty.json",
        "bench.json",
    ] {
        let path = files.join(report);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{report}: {e}"));
        parse_report(&text);
    }
    for other in [
        "summary.txt",
        "timings.txt",
        "health-cold.out",
        "bench.txt",
        "bench.svg",
    ] {
        assert!(files.join(other).is_file(), "{other}");
    }
}
