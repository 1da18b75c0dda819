//! Field truth against the fake driver: the PCIe link judged from a
//! reading under load (an idle link trains down), a busy GPU (compute mode
//! EXCLUSIVE_PROCESS or PROHIBITED) reported as skipped and judged by NVML,
//! what a context costs in device memory, and `health --no-context`.
#![cfg(target_os = "linux")]
mod common;

use common::{command_with, gpuprobe_with, parse_report};
use gpuprobe::report::{CheckStatus, LinkState, Reading, ThrottleReason, Verdict};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

fn codes(report: &gpuprobe::report::Report) -> Vec<&str> {
    report.diagnoses.iter().map(|d| d.code.as_str()).collect()
}

/// `list --json` against a scenario.
fn list(scenario: &str) -> gpuprobe::report::Report {
    let (mut cmd, _dir) = command_with(scenario);
    let out = cmd.args(["list", "--json"]).output().unwrap();
    parse_report(&out.stdout).1
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Timed products long enough to read the PCIe link at work: the link is
/// judged only from readings taken once they had run 100 ms
/// (checks::gpu::LINK_RAMP); 16³ products emulate in a few ms each.
const AT_WORK: &[&str] = &["--size", "16", "--min-time", "400ms"];

#[test]
fn an_idle_link_at_gen1_is_not_degraded() {
    // The probe reads the link while its products run: Gen5 x16.
    let run = gpuprobe_with("pcie-idle-gen1", AT_WORK, &[]);
    let t = run.report.devices[0].telemetry.as_ref().expect("telemetry");
    assert_eq!(t.pcie_link_state, Some(LinkState::UnderLoad));
    assert_eq!(t.pcie_generation, Reading::Value(5));
    assert_eq!(t.pcie_width_lanes, Reading::Value(16));
    assert!(codes(&run.report).is_empty(), "{:?}", run.report.diagnoses);
    assert_eq!(run.report.verdict, Verdict::Healthy);
    // `list` runs nothing: it sees the idle Gen1 link and never judges it.
    let list = list("pcie-idle-gen1");
    let t = list.devices[0].telemetry.as_ref().expect("telemetry");
    assert_eq!(t.pcie_link_state, Some(LinkState::Idle));
    assert_eq!(t.pcie_generation, Reading::Value(1));
    assert!(codes(&list).is_empty(), "{:?}", list.diagnoses);
    // Nor does --strict turn the idle link into a failure.
    let strict = gpuprobe_with("pcie-idle-gen1", &["--strict", "--size", "16"], &[]);
    assert_eq!(strict.code(), 0, "{}", strict.report.summary);
}

/// A link that takes 80 ms of load to train up from Gen1 x8: a reading
/// right after the products were queued still shows the idle link, which
/// is no fault. Products too short to read the link at work leave it
/// unjudged; longer ones read Gen5 x16 at work; `list` never judges it.
#[test]
fn a_link_still_training_up_is_not_degraded() {
    let short = gpuprobe_with("pcie-link-ramp", SMALL, &[]);
    assert!(
        codes(&short.report).is_empty(),
        "{:?}",
        short.report.diagnoses
    );
    assert_eq!(short.report.verdict, Verdict::Healthy);
    let t = short.report.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.pcie_link_state, Some(LinkState::Idle));
    let matmul = short.report.devices[0]
        .checks
        .iter()
        .find(|c| c.name == "matmul")
        .unwrap();
    assert!(
        matmul.detail.contains("PCIe link not read at work"),
        "{}",
        matmul.detail
    );

    let long = gpuprobe_with("pcie-link-ramp", AT_WORK, &[]);
    assert!(
        codes(&long.report).is_empty(),
        "{:?}",
        long.report.diagnoses
    );
    let t = long.report.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.pcie_link_state, Some(LinkState::UnderLoad));
    assert_eq!(
        (&t.pcie_generation, &t.pcie_width_lanes),
        (&Reading::Value(5), &Reading::Value(16))
    );

    let list = list("pcie-link-ramp");
    let t = list.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.pcie_width_lanes, Reading::Value(8));
    assert!(codes(&list).is_empty(), "{:?}", list.diagnoses);
}

#[test]
fn a_narrow_link_under_load_is_degraded_in_the_probe_only() {
    let run = gpuprobe_with("pcie-degraded", AT_WORK, &[]);
    let d = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP016")
        .expect("GP016");
    // The width, not the generation: under load the link is at Gen5.
    assert_eq!(d.evidence.len(), 1, "{:?}", d.evidence);
    assert!(
        d.evidence[0].contains("x8 of x16 under load"),
        "{:?}",
        d.evidence
    );
    // `list` reads the link idle, where width may drop too: not judged.
    let list = list("pcie-degraded");
    assert!(codes(&list).is_empty(), "{:?}", list.diagnoses);
}

#[test]
fn a_busy_exclusive_gpu_is_skipped_not_failed() {
    let run = gpuprobe_with("busy-exclusive", SMALL, &[]);
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
    assert_eq!(run.code(), 0);
    assert_eq!(codes(r), ["GP029"]);
    let d = &r.devices[0];
    let context = &d.checks[1];
    assert_eq!(context.name, "context");
    assert_eq!(context.status, CheckStatus::Skip);
    assert_eq!(context.error.as_ref().map(|e| e.code), Some(46));
    assert!(d
        .checks
        .iter()
        .filter(|c| c.name != "identify" && c.name != "telemetry")
        .all(|c| c.status == CheckStatus::Skip));
    assert!(d.matmul.is_none() && d.telemetry.is_some());
    assert!(r.summary.contains("no context"), "{}", r.summary);
    // health: busy is healthy, exit 0, never a restart loop.
    let (mut cmd, _dir) = command_with("busy-exclusive");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("healthy:"), "{}", text(&out));
}

/// The refusal's code depends on the compute mode and the driver: busy in
/// PROHIBITED (999 on the first retain, as cuda.h documents) and in a held
/// EXCLUSIVE_PROCESS mode (46, or 101 from older drivers while NVML lists
/// the holder); the same 101 in DEFAULT mode is a broken device.
#[test]
fn a_refused_context_is_busy_only_where_the_mode_says_so() {
    for (scenario, code, verdict, exit, skipped) in [
        ("busy-prohibited", 999, Verdict::Healthy, 0, true),
        ("busy-exclusive-old-driver", 101, Verdict::Healthy, 0, true),
        (
            "invalid-device-default-mode",
            101,
            Verdict::Failed,
            1,
            false,
        ),
    ] {
        let run = gpuprobe_with(scenario, SMALL, &[]);
        let r = &run.report;
        assert_eq!(
            (r.verdict, run.code()),
            (verdict, exit),
            "{scenario}: {}",
            r.summary
        );
        let context = r.devices[0]
            .checks
            .iter()
            .find(|c| c.name == "context")
            .unwrap();
        assert_eq!(
            context.error.as_ref().map(|e| e.code),
            Some(code),
            "{scenario}"
        );
        let status = if skipped {
            CheckStatus::Skip
        } else {
            CheckStatus::Fail
        };
        assert_eq!(context.status, status, "{scenario}: {}", context.detail);
        assert_eq!(codes(r).contains(&"GP029"), skipped, "{scenario}");
        let (mut cmd, _dir) = command_with(scenario);
        let out = cmd.arg("health").output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(exit.min(1)),
            "{scenario}: {}",
            text(&out)
        );
    }
    // NVML lists the holder; the evidence says so.
    let run = gpuprobe_with("busy-exclusive-old-driver", SMALL, &[]);
    let t = run.report.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.compute_processes.value(), Some(&1));
    assert_eq!(
        t.compute_processes_memory_bytes.value(),
        Some(&61_710_794_752)
    );
    let gp029 = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP029")
        .unwrap();
    assert!(
        gp029.evidence[0].contains("101 (CUDA_ERROR_INVALID_DEVICE)")
            && gp029.evidence[0].contains("1 compute process(es)"),
        "{:?}",
        gp029.evidence
    );
}

/// A node where one of two GPUs is busy computed on one of two, not "1 of 1".
#[test]
fn a_busy_gpu_counts_among_the_gpus_of_the_summary() {
    let run = gpuprobe_with("busy-one-of-two", SMALL, &[]);
    let r = &run.report;
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Healthy, 0),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .starts_with("1 of 2 GPU(s) computed correct results"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("GPU 1 ("), "{}", r.summary);
}

#[test]
fn nvml_still_fails_a_busy_gpu_with_memory_errors() {
    let run = gpuprobe_with("busy-prohibited-ecc", SMALL, &[]);
    assert_eq!(codes(&run.report), ["GP015", "GP029"]);
    assert_eq!(run.report.verdict, Verdict::Failed);
    let (mut cmd, _dir) = command_with("busy-prohibited-ecc");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn the_context_memory_cost_is_measured() {
    let run = gpuprobe_with("healthy", SMALL, &[]);
    let d = &run.report.devices[0];
    // The scenario's default context cost (512 MiB); the module costs the
    // fake nothing.
    assert_eq!(d.context_memory_bytes, Some(512 << 20));
    // In use by others, as before the context existed.
    assert_eq!(d.memory_used_bytes, Some(566_231_040));
    assert_eq!(
        d.memory_free_bytes,
        Some(85_520_809_984 - 566_231_040 - (512 << 20))
    );
    // Without NVML there is no reading from before the context.
    let run = gpuprobe_with("nvml-missing", SMALL, &[]);
    assert_eq!(run.report.devices[0].context_memory_bytes, None);
}

#[test]
fn health_without_a_context_makes_none_and_still_reads_nvml() {
    // Making a context would hang here until the deadline.
    let (mut cmd, _dir) = command_with("context-hangs");
    let out = cmd.args(["health", "--no-context"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no CUDA context"), "{}", text(&out));
    for scenario in ["gpu-lost", "ecc-uncorrectable"] {
        let (mut cmd, _dir) = command_with(scenario);
        let out = cmd.args(["health", "--no-context"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{scenario}: {}", text(&out));
    }
    // With --state nothing is probed at all: the two are a usage error,
    // which health reports as unhealthy (it promises 0 or 1 only).
    let (mut cmd, _dir) = command_with("healthy");
    let out = cmd
        .args(["health", "--no-context", "--state", "x", "--max-age", "1m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("usage error"), "{}", text(&out));
}

/// sw_power_cap alone at the default limit is how a GPU holds its power
/// limit: no finding. A limit left lowered, or a cap with little power
/// drawn, still warns, with the numbers.
#[test]
fn power_capping_at_the_default_limit_is_normal_and_a_lowered_limit_is_not() {
    let run = gpuprobe_with("power-cap-at-default-limit", SMALL, &[]);
    assert_eq!(
        (run.report.verdict, run.code()),
        (Verdict::Healthy, 0),
        "{}",
        run.report.summary
    );
    assert!(codes(&run.report).is_empty(), "{:?}", run.report.diagnoses);
    let t = run.report.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.power_default_limit_watts.value(), Some(&700.0));
    let (mut cmd, _dir) = command_with("power-cap-at-default-limit");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (scenario, says) in [
        (
            "power-limit-lowered",
            "power limit 400 W below the default 700 W",
        ),
        ("power-cap-low-draw", "capping at 72 W of a 700 W limit"),
    ] {
        let run = gpuprobe_with(scenario, SMALL, &[]);
        assert_eq!(run.report.verdict, Verdict::Degraded, "{scenario}");
        let gp017 = run
            .report
            .diagnoses
            .iter()
            .find(|d| d.code == "GP017")
            .unwrap_or_else(|| panic!("{scenario}: no GP017"));
        assert!(
            gp017.evidence[0].contains(says),
            "{scenario}: {:?}",
            gp017.evidence
        );
    }
}

/// The SM clock read while the matmul runs is GP030's primary signal: a
/// throttle reason with the clock at its maximum holds nothing down, and
/// a product too small to fill the GPU is launch-bound, reported but not
/// judged. After the run the GPU is idle (GpuIdle, a low clock), which the
/// report keeps apart from the reading under load.
#[test]
fn efficiency_is_judged_only_where_the_clock_is_held_down_and_the_gpu_filled() {
    for size in ["16", "512"] {
        let run = gpuprobe_with(
            "app-clocks-at-max",
            &["--size", size, "--iterations", "1"],
            &[],
        );
        assert!(
            codes(&run.report).is_empty(),
            "--size {size}: {:?}",
            run.report.diagnoses
        );
        assert_eq!(
            run.report.verdict,
            Verdict::Healthy,
            "{}",
            run.report.summary
        );
    }
    // Held down, but launch-bound at 16 (one block on six SMs): not judged.
    let run = gpuprobe_with(
        "clocks-held-down",
        &["--size", "16", "--iterations", "1"],
        &[],
    );
    assert!(
        !codes(&run.report).contains(&"GP030"),
        "{:?}",
        run.report.diagnoses
    );
    let m = run.report.devices[0].matmul.as_ref().unwrap();
    assert_eq!(m.blocks, Some(1));
    // At 512 the product fills it, and the reading under load explains.
    let run = gpuprobe_with(
        "clocks-held-down",
        &["--size", "512", "--iterations", "1"],
        &[],
    );
    let d = &run.report.devices[0];
    let m = d.matmul.as_ref().unwrap();
    assert_eq!((m.blocks, m.sm_clock_mhz_under_load), (Some(16), Some(712)));
    assert_eq!(
        m.throttle_reasons_under_load.as_deref(),
        Some(&[ThrottleReason::ApplicationsClocksSetting][..])
    );
    let gp030 = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP030")
        .expect("GP030");
    assert!(
        gp030.evidence[0].contains("712 MHz of its maximum 1425 MHz while the matmul ran"),
        "{:?}",
        gp030.evidence
    );
    // After the run: idle, at the idle clock, which judges nothing.
    let t = d.telemetry.as_ref().unwrap();
    assert!(t
        .throttle_reasons
        .value()
        .is_some_and(|r| r.contains(&ThrottleReason::GpuIdle)));
    assert_eq!(t.sm_clock_mhz.value(), Some(&345));
    // The peak at the current clock is the clock under load's.
    let p = d.peak.as_ref().unwrap();
    let at_max = p.fp32_gflops.value().unwrap();
    let at_load = p.fp32_gflops_at_current_clock.value().unwrap();
    assert!(
        (at_load / at_max - 712.0 / 1425.0).abs() < 1e-9,
        "{at_load} {at_max}"
    );
}

/// A clocks event bit nvml-wrapper does not name (0x400, which NVIDIA's
/// current NVML names "reliability") reaches the report as `unknown_0x400`
/// beside the named reasons, in the reading under load and after it, and
/// GP030 gives it as a cause; nvml-wrapper's `current_throttle_reasons`
/// drops such a bit.
#[test]
fn a_throttle_bit_nvml_wrapper_does_not_name_is_kept() {
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::scenario("clocks-held-down")).unwrap(),
    )
    .unwrap();
    // ApplicationsClocksSetting (0x2), as the scenario has it, and 0x400.
    scenario["devices"][0]["nvml"]["throttle_reasons"] = 0x402.into();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("unknown-bit.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let (mut cmd, _dir) = common::command_with_file(&path);
    let out = cmd
        .args(["--json", "--size", "512", "--iterations", "1"])
        .output()
        .unwrap();
    let (json, report) = parse_report(&out.stdout);
    let device = &json["devices"][0];
    assert_eq!(
        device["matmul"]["throttle_reasons_under_load"],
        serde_json::json!(["applications_clocks_setting", "unknown_0x400"])
    );
    // After the run the fake is idle: GpuIdle set, the rest as they were.
    assert_eq!(
        device["telemetry"]["throttle_reasons"],
        serde_json::json!(["gpu_idle", "applications_clocks_setting", "unknown_0x400"])
    );
    let d = &report.devices[0];
    assert_eq!(
        d.matmul.as_ref().unwrap().throttle_reasons_under_load,
        Some(vec![
            ThrottleReason::ApplicationsClocksSetting,
            ThrottleReason::Unknown(0x400)
        ])
    );
    let gp030 = report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP030")
        .expect("GP030");
    assert!(
        gp030.evidence[0].contains("throttle reasons applications_clocks_setting, unknown_0x400"),
        "{:?}",
        gp030.evidence
    );
}

/// A job holding nearly all of a GPU's memory leaves no room for a
/// context: busy when the processes NVML lists hold that memory (exit 0,
/// compute not verified, NVML's memory readings kept); memory held by no
/// listed process is a warning (GP034), never healthy.
#[test]
fn a_full_gpu_is_busy_when_its_processes_hold_the_memory() {
    use gpuprobe::report::NotVerified;
    let run = gpuprobe_with("busy-memory", SMALL, &[]);
    let r = &run.report;
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Healthy, 0),
        "{}",
        r.summary
    );
    let d = &r.devices[0];
    assert_eq!(d.compute_not_verified, Some(NotVerified::BusyMemory));
    assert_eq!(d.memory_free_bytes, Some(85_520_809_984 - 85_200_000_000));
    assert_eq!(d.memory_used_bytes, Some(85_200_000_000));
    let context = d.checks.iter().find(|c| c.name == "context").unwrap();
    assert_eq!(context.status, CheckStatus::Skip, "{}", context.detail);
    assert_eq!(context.error.as_ref().map(|e| e.code), Some(2));
    assert_eq!(codes(r), ["GP029"]);
    assert!(
        r.diagnoses[0].evidence[0].contains("2 compute process(es)"),
        "{:?}",
        r.diagnoses[0].evidence
    );
    let (mut cmd, _dir) = command_with("busy-memory");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The same full GPU with no process behind its memory.
    let run = gpuprobe_with("memory-held-without-process", SMALL, &[]);
    let r = &run.report;
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Degraded, 0),
        "{}",
        r.summary
    );
    assert_eq!(
        r.devices[0].compute_not_verified,
        Some(NotVerified::MemoryHeldWithoutProcess)
    );
    assert_eq!(codes(r), ["GP034"]);
    assert!(
        r.summary.contains("compute was not verified"),
        "{}",
        r.summary
    );
    let (mut cmd, _dir) = command_with("memory-held-without-process");
    let out = cmd.arg("health").output().unwrap();
    assert!(
        text(&out).starts_with("healthy:") || text(&out).contains("degraded"),
        "{}",
        text(&out)
    );
}

/// Hardware faults are random and per GPU; a kernel or JIT bug is wrong
/// alike everywhere. The same wrong words on two GPUs, or a tensor-core
/// failure beside an exact FP32 matmul, are GP035 (software); two GPUs
/// wrong each at their own places are not.
#[test]
fn wrong_results_alike_on_every_gpu_are_called_software() {
    let run = gpuprobe_with("kernel-bug-every-gpu", SMALL, &[]);
    let r = &run.report;
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Failed, 1),
        "{}",
        r.summary
    );
    let gp035 = r
        .diagnoses
        .iter()
        .find(|d| d.code == "GP035")
        .expect("GP035");
    assert_eq!(gp035.devices, [0, 1]);
    assert!(
        gp035.evidence[0].contains("the same 2 wrong element(s) as GPU 1"),
        "{:?}",
        gp035.evidence
    );
    assert!(gp035.fix.contains("Do not drain"), "{}", gp035.fix);
    let run = gpuprobe_with("tensor-kernel-bug", SMALL, &[]);
    let r = &run.report;
    assert_eq!(run.code(), 1, "{}", r.summary);
    assert!(r.devices[0].matmul.as_ref().unwrap().verification.passed);
    let gp035 = r
        .diagnoses
        .iter()
        .find(|d| d.code == "GP035")
        .expect("GP035");
    assert!(
        gp035.evidence[0].contains("gpuprobe_mma_tf32 got 3 of"),
        "{:?}",
        gp035.evidence
    );
    let run = gpuprobe_with("corrupt-two-gpus", SMALL, &[]);
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    assert!(
        !codes(&run.report).contains(&"GP035"),
        "{:?}",
        run.report.diagnoses
    );
}
