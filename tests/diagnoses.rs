//! Every diagnosis rule is triggered by a shipped scenario, asserting the
//! code, the verdict and the exit code; the healthy scenarios trigger none;
//! docs/diagnoses.md is the rule table; malformed input gives findings, not
//! crashes.
#![cfg(target_os = "linux")]
mod common;

use std::collections::BTreeSet;

use common::{gpuprobe_with, parse_report, root};
use gpuprobe::judge::diagnose::{self, Remedy, RULES};
use gpuprobe::report::{Action, DeviceStatus, Severity, Verdict};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

/// (scenario, rule it must trigger, verdict, exit code).
const CASES: &[(&str, &str, Verdict, i32)] = &[
    ("no-runtime", "GP001", Verdict::NoGpu, 3),
    ("utility-only", "GP002", Verdict::NoGpu, 3),
    ("visible-devices-none", "GP003", Verdict::NoGpu, 3),
    ("cuda-visible-hides-all", "GP004", Verdict::NoGpu, 3),
    ("cuda-visible-unknown", "GP005", Verdict::Degraded, 0),
    ("init-stub-34", "GP006", Verdict::NoGpu, 3),
    ("init-mismatch-803", "GP007", Verdict::NoGpu, 3),
    ("init-compat-804", "GP008", Verdict::NoGpu, 3),
    ("init-unknown-999", "GP009", Verdict::NoGpu, 3),
    ("nvml-mismatch-18", "GP010", Verdict::Failed, 1),
    ("ptx-too-new-222", "GP011", Verdict::Failed, 1),
    ("require-cuda-too-new", "GP012", Verdict::Failed, 1),
    ("cgroup-revoked", "GP013", Verdict::NoGpu, 3),
    ("gpu-lost", "GP014", Verdict::Failed, 1),
    ("ecc-uncorrectable", "GP015", Verdict::Failed, 1),
    ("pcie-degraded", "GP016", Verdict::Degraded, 0),
    ("thermal-throttle", "GP017", Verdict::Degraded, 0),
    ("jit-missing-221", "GP020", Verdict::Failed, 1),
    ("nvml-missing", "GP021", Verdict::Healthy, 0),
    ("stubs-on-path", "GP022", Verdict::Degraded, 0),
    ("driver-baked-in", "GP023", Verdict::Degraded, 0),
    ("compat-working", "GP028", Verdict::Healthy, 0),
    ("busy-exclusive", "GP029", Verdict::Healthy, 0),
    ("clocks-held-down", "GP030", Verdict::Degraded, 0),
    ("memory-clock-held-down", "GP031", Verdict::Degraded, 0),
    ("wsl", "GP024", Verdict::Healthy, 0),
    ("garbage-proc", "GP025", Verdict::Healthy, 0),
    ("visible-devices-malformed", "GP026", Verdict::Degraded, 0),
    ("nodes-without-driver", "GP027", Verdict::NoGpu, 3),
    ("no-gpu-as-root", "GP001", Verdict::NoGpu, 3),
    ("memory-held-without-process", "GP034", Verdict::Degraded, 0),
    ("kernel-bug-every-gpu", "GP035", Verdict::Failed, 1),
    ("ecc-remap-pending", "GP036", Verdict::Degraded, 0),
    ("persistence-off", "GP037", Verdict::Healthy, 0),
    ("volta-pages-pending", "GP015", Verdict::Failed, 1),
    ("fabric-manager-not-running", "GP038", Verdict::NoGpu, 3),
    (
        "fabric-registration-in-progress",
        "GP038",
        Verdict::NoGpu,
        3,
    ),
    ("fabric-registration-failed", "GP038", Verdict::NoGpu, 3),
    ("recovery-action-reset", "GP039", Verdict::Failed, 1),
    ("xid-48-during-probe", "GP040", Verdict::Failed, 1),
    ("xid-31-repeats", "GP041", Verdict::Degraded, 0),
    ("xid-13-other-process", "GP042", Verdict::Healthy, 0),
    ("four-t4-one-slow", "GP043", Verdict::Degraded, 0),
    ("memtest-stuck-bit", "GP044", Verdict::Failed, 1),
    ("env-traps", "GP045", Verdict::Degraded, 0),
    ("leftovers", "GP046", Verdict::Degraded, 0),
    ("persistence-off-held", "GP047", Verdict::Healthy, 0),
    ("counters-replays-fast", "GP050", Verdict::Degraded, 0),
    ("counters-ecc-corrected-fast", "GP051", Verdict::Degraded, 0),
    ("counters-sram-uncorrectable", "GP052", Verdict::Failed, 1),
    ("peer-iommu-corrupts", "GP058", Verdict::Failed, 1),
];

/// `burn`'s rules: (scenario, rule, verdict, exit code) of a short burn;
/// tests/burn.rs checks their evidence. A GPU throttled by heat during the
/// burn is GP032's alone: GP017's and GP030's findings on that GPU join its
/// evidence (judge::diagnose::SAME_CAUSE); likewise uncorrectable memory
/// errors met under load are judged by NVML's memory-error signals: GP015
/// takes GP033's evidence where they need the GPU out of service, and a
/// contained one with a row remap pending is GP036's (a reset when
/// convenient).
const BURN_CASES: &[(&str, &str, Verdict, i32)] = &[
    ("burn-throttles", "GP032", Verdict::Degraded, 0),
    ("burn-transient-fault", "GP033", Verdict::Failed, 1),
    ("burn-corrupts-when-hot", "GP015", Verdict::Failed, 1),
    ("burn-ecc-contained", "GP036", Verdict::Degraded, 0),
];
/// Arguments a scenario needs beyond `SMALL`: GP031 judges only device
/// copies of 64 MiB or more (shorter ones are mostly their fixed cost).
fn args_for(scenario: &str) -> Vec<&'static str> {
    let mut args = SMALL.to_vec();
    // GP016 judges the link only at work: timed products of 100 ms or
    // more (checks::gpu::LINK_RAMP).
    if scenario == "pcie-degraded" {
        args = vec!["--size", "16", "--min-time", "400ms"];
    }
    // GP043 judges the memory test: one pass over 4 MiB.
    if scenario.starts_with("memtest-") {
        args.extend(["--memtest", "4MiB"]);
    }
    if scenario == "memory-clock-held-down" {
        args.extend(["--bandwidth-size", "64MiB"]);
    }
    // GP030 judges only a product that fills the GPU: 16 blocks of the
    // fast kernel on the scenario's 6 SMs.
    if scenario == "clocks-held-down" {
        args = vec!["--size", "512", "--iterations", "1"];
    }
    // GP043 compares only products that give every SM a thread block: 49
    // on the scenario's 40.
    if scenario.starts_with("four-t4-") {
        args = EVERY_SM.to_vec();
    }
    // GP058: four GPUs' peer writes, without the bandwidth check's copies.
    if scenario.starts_with("peer-") {
        args.extend(["--bandwidth-size", "0"]);
    }
    args
}

/// An 800-wide product: 49 blocks of 128 x 128, a block for each of a T4's
/// 40 SMs.
const EVERY_SM: &[&str] = &["--size", "800", "--iterations", "1"];

/// Windows rules: scenarios with a Windows-layout root, read by the Windows
/// environment code (the binary itself runs them only on Windows).
const WINDOWS_CASES: &[(&str, &str)] = &[
    ("windows-no-gpu-class", "GP018"),
    ("windows-gpu-class", "GP019"),
];

#[test]
fn every_rule_fires_in_its_scenario_with_verdict_and_exit_code() {
    for (scenario, code, verdict, exit) in CASES {
        let run = gpuprobe_with(scenario, &args_for(scenario), &[]);
        let codes: Vec<&str> = run
            .report
            .diagnoses
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(codes, [*code], "{scenario}: {}", run.report.summary);
        assert_eq!(run.report.verdict, *verdict, "{scenario}");
        assert_eq!(run.code(), *exit, "{scenario}");
        let d = &run.report.diagnoses[0];
        assert!(
            !d.evidence.is_empty() && !d.fix.is_empty(),
            "{scenario}: evidence and fix"
        );
        // The JSON carries the rule's action; GP039's is the one the
        // driver asks for (recovery-action-reset: a GPU reset).
        let expected = match RULES.iter().find(|r| r.code == *code).map(|r| r.action) {
            Some(Remedy::Always(action)) => action,
            Some(Remedy::AsTheDriverAsks) => Action::ResetGpu,
            None => panic!("{code} is no rule"),
        };
        assert_eq!(d.action, expected, "{scenario}: action");
        // A diagnosis about a GPU marks that GPU.
        for index in &d.devices {
            let device = run
                .report
                .devices
                .iter()
                .find(|x| x.index == *index)
                .expect("named GPU exists");
            let expected = match d.severity {
                Severity::Error => DeviceStatus::Fail,
                Severity::Warning => DeviceStatus::Warn,
                // Worth knowing: the GPU's status is its own.
                Severity::Info => DeviceStatus::Pass,
            };
            assert_eq!(device.status, expected, "{scenario}: GPU {index}");
        }
    }
}

#[test]
fn gpu_diagnoses_name_their_gpus() {
    for (scenario, code) in [
        ("ecc-uncorrectable", "GP015"),
        ("thermal-throttle", "GP017"),
        ("clocks-held-down", "GP030"),
        ("pcie-degraded", "GP016"),
        ("ptx-too-new-222", "GP011"),
    ] {
        let run = gpuprobe_with(scenario, &args_for(scenario), &[]);
        let d = run
            .report
            .diagnoses
            .iter()
            .find(|d| d.code == code)
            .expect(code);
        assert_eq!(d.devices, [0], "{scenario}");
    }
    let run = gpuprobe_with("no-runtime", SMALL, &[]);
    assert!(run.report.diagnoses[0].devices.is_empty(), "machine-wide");
}

#[test]
fn windows_rules_fire_from_a_windows_layout() {
    // A no-driver report as the Windows binary would make it, then the
    // Windows environment gathered from the scenario's root.
    let (mut cmd, _empty) = common::gpuprobe_without_driver();
    let out = cmd.arg("--json").output().unwrap();
    let (_, base) = parse_report(&out.stdout);
    for (scenario, code) in WINDOWS_CASES {
        let dir = common::fake_driver(&common::scenario(scenario));
        let mut report = base.clone();
        report.environment.device_nodes.clear();
        report.environment.windows = Some(gpuprobe::environment::gather_windows(
            &dir.path().join("root"),
        ));
        let codes: Vec<String> = diagnose::diagnose(&report)
            .into_iter()
            .map(|d| d.code)
            .collect();
        assert!(codes.iter().any(|c| c == code), "{scenario}: {codes:?}");
        assert!(
            !codes.iter().any(|c| c == "GP001"),
            "{scenario}: a Windows container is not 'no runtime'"
        );
    }
}

#[test]
fn burn_rules_fire_in_their_scenarios() {
    for (scenario, code, verdict, exit) in BURN_CASES {
        let run = common::gpuprobe_args(
            scenario,
            &[
                "burn",
                "--json",
                "--duration",
                "3s",
                "--size",
                "32",
                "--iterations",
                "1",
                "--sample-every",
                "200ms",
                "--verify-every",
                "100ms",
            ],
        );
        let report = &run.report;
        let d = report
            .diagnoses
            .iter()
            .find(|d| d.code == *code)
            .unwrap_or_else(|| panic!("{scenario}: no {code} in {:?}", report.diagnoses));
        assert_eq!(d.devices, [0], "{scenario}");
        assert!(!d.evidence.is_empty() && !d.fix.is_empty(), "{scenario}");
        assert_eq!(report.verdict, *verdict, "{scenario}");
        assert_eq!(run.code(), *exit, "{scenario}");
        // One cause, one diagnosis: the throttling GP032 explains is not
        // GP017's or GP030's again.
        if *code == "GP032" {
            assert!(
                report
                    .diagnoses
                    .iter()
                    .all(|x| x.code != "GP017" && x.code != "GP030"),
                "{scenario}: {:?}",
                report.diagnoses
            );
        }
    }
}

#[test]
fn every_rule_has_a_scenario() {
    let covered: BTreeSet<&str> = CASES
        .iter()
        .map(|c| c.1)
        .chain(WINDOWS_CASES.iter().map(|c| c.1))
        .chain(BURN_CASES.iter().map(|c| c.1))
        .collect();
    let rules: BTreeSet<&str> = RULES.iter().map(|r| r.code).collect();
    assert_eq!(covered, rules, "a rule without a scenario is not done");
}

#[test]
fn healthy_scenarios_raise_no_false_alarm() {
    for scenario in ["healthy", "multi-gpu-one-corrupt", "busy-gpu", "hang"] {
        let run = gpuprobe_with(
            scenario,
            &["--size", "16", "--iterations", "1", "--timeout", "2s"],
            &[],
        );
        assert!(
            run.report.diagnoses.is_empty(),
            "{scenario}: {:?}",
            run.report.diagnoses
        );
    }
}

/// GP043 on modelled launch times (the scenarios' `launch_ns_per_thread`,
/// on the events' clock), so the comparison is the same on any test
/// machine: of four identical T4s, GPU 2 takes 1/0.7 as long per launch,
/// in the probe's matmul and in a burn, and its device copies reach 60% of
/// the memory's bandwidth where the others reach 90%; only it is named,
/// with the measure, its value against the best and how far below; four
/// that keep pace raise nothing.
#[test]
fn a_gpu_slower_than_its_identical_neighbours_is_named_and_matched_ones_are_not() {
    let burn = [
        "burn",
        "--json",
        "--duration",
        "3s",
        "--sample-every",
        "500ms",
    ];
    let burn: Vec<&str> = burn.iter().chain(EVERY_SM).copied().collect();
    // Device copies of 64 MiB: shorter ones are not compared.
    let copies = [EVERY_SM, &["--bandwidth-size", "64MiB"]].concat();
    let probe = common::gpuprobe_with("four-t4-one-slow", &copies, &[]);
    let burned = common::gpuprobe_args("four-t4-one-slow", &burn);
    for (run, measure, below) in [
        (&probe, "matmul", "30%"),
        (&probe, "device copy", "33%"),
        (&burned, "burn throughput", "30%"),
    ] {
        let d = run
            .report
            .diagnoses
            .iter()
            .find(|d| d.code == "GP043")
            .unwrap_or_else(|| panic!("{measure}: {}", run.report.summary));
        assert_eq!(d.devices, [2], "{measure}");
        let line = d
            .evidence
            .iter()
            .find(|l| l.contains(measure))
            .unwrap_or_else(|| panic!("{measure}: {:?}", d.evidence));
        assert!(line.starts_with("GPU 2 ("), "{line}");
        assert!(
            line.contains(&format!("{below} below the best of the node's 4")),
            "{line}"
        );
        assert!(
            line.contains("(40 SMs, power limit 70 W): GPU 0's"),
            "{line}"
        );
        assert_eq!(run.report.verdict, Verdict::Degraded, "{measure}");
    }
    let matched = common::gpuprobe_with("four-t4-matched", EVERY_SM, &[]);
    let burned = common::gpuprobe_args("four-t4-matched", &burn);
    for run in [&matched, &burned] {
        assert!(
            run.report.diagnoses.is_empty(),
            "{:?}",
            run.report.diagnoses
        );
        assert_eq!(run.report.verdict, Verdict::Healthy);
        assert!(run.report.devices.iter().all(|d| d.matmul.is_some()));
    }
    // The same four with a 384-wide product: 230 ms of GPU time each, but
    // 9 blocks for 40 SMs, so it measures some SMs, not the GPUs: nothing
    // is compared.
    let some_sms = ["--size", "384", "--iterations", "1"];
    let run = common::gpuprobe_with("four-t4-one-slow", &some_sms, &[]);
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
}

#[test]
fn docs_list_exactly_the_rule_table() {
    let docs = std::fs::read_to_string(root().join("docs/diagnoses.md")).unwrap();
    assert_eq!(
        docs,
        diagnose::markdown(),
        "docs/diagnoses.md is stale: run `gpuprobe diagnoses > docs/diagnoses.md`"
    );
}

#[test]
fn text_output_gives_cause_and_fix_most_severe_first() {
    // Two findings: an error (uncorrectable ECC) and a warning (a malformed
    // NVIDIA_VISIBLE_DEVICES).
    let (mut cmd, _dir) = common::command_with("ecc-uncorrectable");
    let out = cmd
        .env("NVIDIA_VISIBLE_DEVICES", "gpu0,all")
        .args(SMALL)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let error = text.find("GP015 error").expect("GP015 in text");
    let warning = text.find("GP026 warning").expect("GP026 in text");
    assert!(error < warning, "most severe first:\n{text}");
    assert!(text.contains("-> fix: Drain the node"), "{text}");
}

#[test]
fn no_driver_text_says_no_gpu_runtime_and_what_to_run() {
    let (mut cmd, _empty) = common::gpuprobe_without_driver();
    let out = cmd.env("NO_COLOR", "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert!(text.contains("This container has no GPU runtime"), "{text}");
    assert!(text.contains("docker run --gpus all"), "{text}");
}

#[test]
fn malformed_input_gives_findings_not_crashes() {
    use std::os::unix::ffi::OsStrExt;
    let odd_path = std::ffi::OsStr::from_bytes(b"::/no/such\xff\xfe/dir::/usr/local/cuda/compat:");
    // (variable, value, verdict, exit code, every diagnosis expected). The
    // scenario's garbage /proc/driver/nvidia/version adds GP025 to each.
    let cases: [(&str, &std::ffi::OsStr, Verdict, i32, &[&str]); 5] = [
        // Unparseable entries are a finding; CUDA still sees the GPU.
        (
            "NVIDIA_VISIBLE_DEVICES",
            std::ffi::OsStr::new("\u{7f},;GPU-,-3,all,"),
            Verdict::Degraded,
            0,
            &["GP026", "GP025"],
        ),
        // CUDA stops at the first entry that names no GPU, here the empty
        // first one: no GPU is left, while NVML and /dev show one.
        (
            "CUDA_VISIBLE_DEVICES",
            std::ffi::OsStr::new(",,x,-1,GPU-zz"),
            Verdict::NoGpu,
            3,
            &["GP004", "GP025"],
        ),
        // A constraint that names no version is no requirement to check
        // against the driver.
        (
            "NVIDIA_REQUIRE_CUDA",
            std::ffi::OsStr::new("cuda>=abc brand="),
            Verdict::Healthy,
            0,
            &["GP025"],
        ),
        // Control characters (a NUL cannot be put in the environment at
        // all): capabilities only matter when a library is missing, and
        // both are here.
        (
            "NVIDIA_DRIVER_CAPABILITIES",
            std::ffi::OsStr::new("\u{1}\u{2},compute,,bogus"),
            Verdict::Healthy,
            0,
            &["GP025"],
        ),
        // Empty, missing, non-UTF-8 and compat entries around the fake
        // driver's folder: the driver still loads from it.
        ("LD_LIBRARY_PATH", odd_path, Verdict::Healthy, 0, &["GP025"]),
    ];
    for (name, value, verdict, exit, expected) in cases {
        let (mut cmd, dir) = common::command_with("garbage-proc");
        if name == "LD_LIBRARY_PATH" {
            // Keep the fake driver reachable, with the odd entries around it.
            let mut v = dir.path().as_os_str().to_owned();
            v.push(":");
            v.push(value);
            cmd.env(name, v);
        } else {
            cmd.env(name, value);
        }
        let out = cmd.args(["--json"]).args(SMALL).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{name}: exit code\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, report) = parse_report(&out.stdout);
        assert_eq!(report.verdict, verdict, "{name}: verdict");
        let codes: Vec<&str> = report.diagnoses.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, expected, "{name}: diagnoses, most severe first");
    }
}

#[test]
fn baked_in_driver_libraries_without_a_runtime_are_still_no_gpu_runtime() {
    let run = gpuprobe_with("no-runtime-libs-baked", SMALL, &[]);
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP001", "GP023"], "{}", run.report.summary);
    assert_eq!(run.code(), 3);
    assert!(run.report.diagnoses[0].evidence[0].contains("cuInit returned 100"));
}

/// NVIDIA's libcuda, run as root with no device nodes, makes /dev/nvidiactl
/// itself during cuInit; that node (ENXIO: no kernel driver) is no sign of
/// revoked access, and the diagnosis says where it came from.
#[test]
fn a_node_the_driver_created_is_not_a_revoked_node() {
    use gpuprobe::report::NodeError;
    let run = gpuprobe_with("no-gpu-as-root", SMALL, &[]);
    let node = run
        .report
        .environment
        .device_nodes
        .iter()
        .find(|n| n.path == "/dev/nvidiactl")
        .expect("the fake driver created /dev/nvidiactl during cuInit");
    assert!(node.created_during_run && !node.openable);
    assert_eq!(node.error_kind, Some(NodeError::NoDriver));
    let gp001 = &run.report.diagnoses[0];
    assert_eq!(gp001.code, "GP001");
    assert!(
        gp001
            .evidence
            .iter()
            .any(|e| e.starts_with("/dev/nvidiactl appeared during this run")),
        "{:?}",
        gp001.evidence
    );
}

/// Only nodes the container was given and that are refused with EPERM or
/// EACCES point to a revoked cgroup.
#[test]
fn revoked_nodes_are_denied_and_driverless_nodes_are_not_revoked() {
    use gpuprobe::report::NodeError;
    let revoked = gpuprobe_with("cgroup-revoked", SMALL, &[]);
    let kinds: Vec<_> = revoked
        .report
        .environment
        .device_nodes
        .iter()
        .filter(|n| !n.openable)
        .map(|n| (n.created_during_run, n.error_kind))
        .collect();
    assert_eq!(
        kinds,
        [(false, Some(NodeError::PermissionDenied)); 2],
        "cgroup-revoked: nvidia0 and nvidiactl denied"
    );
    let driverless = gpuprobe_with("nodes-without-driver", SMALL, &[]);
    assert!(driverless
        .report
        .environment
        .device_nodes
        .iter()
        .all(|n| !n.created_during_run && n.error_kind == Some(NodeError::NoDriver)));
}

/// The summary is built from the leading diagnosis and never says a thing
/// twice or contradicts it: with NVML present and libcuda absent it is
/// GP002's cause, not "started without GPU access".
#[test]
fn the_summary_leads_with_the_diagnosis_and_repeats_nothing() {
    for (scenario, code) in [
        ("utility-only", "GP002"),
        ("no-runtime", "GP001"),
        ("visible-devices-none", "GP003"),
        ("init-compat-804", "GP008"),
    ] {
        let run = gpuprobe_with(scenario, SMALL, &[]);
        let summary = &run.report.summary;
        assert!(
            summary.starts_with(&format!("{code}: ")),
            "{scenario}: {summary}"
        );
        if code == "GP002" {
            assert!(!summary.contains("without GPU access"), "{summary}");
        }
        let clauses: Vec<&str> = summary.split([';', ':']).map(str::trim).collect();
        for c in &clauses {
            assert_eq!(
                clauses.iter().filter(|x| *x == c).count(),
                1,
                "{scenario}: {c:?} twice in {summary}"
            );
        }
    }
}

/// A cuda-compat libcuda is in the image on purpose: working, it is named
/// (GP028) and healthy; failing, GP007 or GP008 say why; never GP023's
/// "remove the NVIDIA driver packages", which would break a working setup.
#[test]
fn forward_compat_is_not_a_baked_in_driver() {
    for (scenario, code, exit) in [
        ("compat-working", "GP028", 0),
        ("init-mismatch-803", "GP007", 3),
        ("init-compat-804", "GP008", 3),
    ] {
        let run = gpuprobe_with(scenario, SMALL, &[]);
        let codes: Vec<&str> = run
            .report
            .diagnoses
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(run.code(), exit, "{scenario}: {codes:?}");
        assert!(codes.contains(&code), "{scenario}: {codes:?}");
        assert!(!codes.contains(&"GP023"), "{scenario}: {codes:?}");
        let env = &run.report.environment;
        assert_eq!(
            env.cuda_library_origin,
            Some(gpuprobe::report::LibraryOrigin::Image),
            "{scenario}"
        );
        assert_eq!(env.cuda_library_version.as_deref(), Some("570.86.10"));
        assert!(env.cuda_forward_compat, "{scenario}");
    }
    // The same libcuda outside a compat folder is a baked-in driver.
    let run = gpuprobe_with("driver-baked-in", SMALL, &[]);
    assert!(!run.report.environment.cuda_forward_compat);
}

/// GP045 names each variable of `env-traps` with its value and what it
/// does; the same H100 with the MPS pipe directory holding a real UNIX
/// socket named `control` (as nvidia-cuda-mps-control makes it) is not
/// flagged for MPS, and with none of the variables set nothing fires.
#[test]
fn environment_traps_are_named_and_a_live_mps_socket_is_not_one() {
    let run = gpuprobe_with("env-traps", SMALL, &[]);
    let d = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP045")
        .expect("GP045");
    let names: Vec<&str> = run
        .report
        .environment
        .traps
        .iter()
        .map(|t| t.variable.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "CUDA_INJECTION64_PATH",
            "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
            "CUDA_LAUNCH_BLOCKING",
            "CUDA_MPS_PIPE_DIRECTORY"
        ]
    );
    assert_eq!(d.evidence.len(), 4, "{:?}", d.evidence);
    assert!(
        d.evidence
            .iter()
            .any(|l| l.starts_with("CUDA_LAUNCH_BLOCKING=\"1\": ") && l.contains("wait")),
        "{:?}",
        d.evidence
    );
    assert!(
        d.evidence.iter().any(
            |l| l.starts_with("CUDA_MPS_PIPE_DIRECTORY=\"/run/nvidia/mps\"")
                && l.contains("without MPS")
        ),
        "{:?}",
        d.evidence
    );

    // The same directory, under the scenario's root, with the daemon's socket.
    let (cmd, dir) = common::command_with("env-traps");
    let root = common::scenario_env(dir.path())
        .into_iter()
        .find(|(k, _)| k == "GPUPROBE_TEST_ROOT")
        .map(|(_, v)| std::path::PathBuf::from(v))
        .unwrap();
    std::fs::create_dir_all(root.join("run/nvidia/mps")).unwrap();
    let _daemon =
        std::os::unix::net::UnixListener::bind(root.join("run/nvidia/mps/control")).unwrap();
    let mut cmd = assert_cmd::Command::from_std(cmd);
    let output = cmd.arg("--json").args(SMALL).output().unwrap();
    let (_, report) = parse_report(&output.stdout);
    let traps: Vec<&str> = report
        .environment
        .traps
        .iter()
        .map(|t| t.variable.as_str())
        .collect();
    assert!(!traps.contains(&"CUDA_MPS_PIPE_DIRECTORY"), "{traps:?}");
    assert_eq!(traps.len(), 3, "{traps:?}");

    // None set: nothing.
    let run = gpuprobe_with("healthy", SMALL, &[("CUDA_LAUNCH_BLOCKING", "0")]);
    assert!(run.report.environment.traps.is_empty());
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
}

/// GP046 names each setting an earlier job left, on its own GPU, with the
/// value, the default and the command that restores it; GP047 the GPU
/// with persistence off. Where GP017 (the lowered power limit throttled
/// the matmul), GP030 (lowered applications clocks held it down) or GP037
/// (persistence off made cuInit slow) already speak for a GPU, the
/// leftover joins them instead of standing twice.
#[test]
fn leftovers_are_named_with_the_command_that_restores_them() {
    let run = gpuprobe_with("leftovers", SMALL, &[]);
    let find = |code: &str| {
        run.report
            .diagnoses
            .iter()
            .find(|d| d.code == code)
            .unwrap_or_else(|| panic!("{code}: {:?}", run.report.diagnoses))
    };
    let gp046 = find("GP046");
    assert_eq!(gp046.devices, [0, 1, 2, 3], "{:?}", gp046.evidence);
    let expect = [
        "GPU 0 (GPU-1a2b3c4d-0001-4e6f-8a9b-0c1d2e3f4a5b): applications clocks lowered (graphics 1410 MHz of its default 1980 MHz): restore with `nvidia-smi -i GPU-1a2b3c4d-0001-4e6f-8a9b-0c1d2e3f4a5b -rac`",
        "GPU 1 (GPU-1a2b3c4d-0002-4e6f-8a9b-0c1d2e3f4a5b): power limit 500 W, below the board's default 700 W: restore with `nvidia-smi -i GPU-1a2b3c4d-0002-4e6f-8a9b-0c1d2e3f4a5b -pl 700`",
        "GPU 2 (GPU-1a2b3c4d-0003-4e6f-8a9b-0c1d2e3f4a5b): ECC on now, off after the next reset",
        "GPU 3 (GPU-1a2b3c4d-0004-4e6f-8a9b-0c1d2e3f4a5b): MIG mode off now, on after the next reset",
    ];
    assert_eq!(gp046.evidence.len(), expect.len(), "{:?}", gp046.evidence);
    for (line, want) in gp046.evidence.iter().zip(expect) {
        assert!(line.starts_with(want), "{line}\n  wanted {want}");
    }
    let t = run.report.devices[2].telemetry.as_ref().unwrap();
    assert_eq!(
        (t.ecc_enabled.value(), t.ecc_pending_enabled.value()),
        (Some(&true), Some(&false))
    );
    assert_eq!(run.report.verdict, Verdict::Degraded);

    // One cause, one diagnosis.
    let run = gpuprobe_with("power-limit-lowered", SMALL, &[]);
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP017"], "{:?}", run.report.diagnoses);
    assert!(run.report.diagnoses[0]
        .evidence
        .iter()
        .any(|l| l.starts_with("also GP046: ") && l.contains("-pl 700")));
    let run = gpuprobe_with("clocks-held-down", &args_for("clocks-held-down"), &[]);
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP030"], "{:?}", run.report.diagnoses);
    assert!(run.report.diagnoses[0]
        .evidence
        .iter()
        .any(|l| l.starts_with("also GP046: ") && l.contains("-rac")));
    let run = gpuprobe_with("persistence-off-held", SMALL, &[]);
    let gp047 = &run.report.diagnoses[0];
    assert_eq!(
        (gp047.code.as_str(), &gp047.devices[..]),
        ("GP047", &[0][..])
    );
    assert!(gp047.evidence[0].contains("-pm 1"), "{:?}", gp047.evidence);
    let run = gpuprobe_with("persistence-off", &args_for("persistence-off"), &[]);
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP037"], "{:?}", run.report.diagnoses);
}
