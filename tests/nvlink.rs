//! Each GPU's NVLinks end to end against the fake driver: an HGX H100
//! node's 18 links per GPU reported up with their version, NVSwitch, speed
//! and counters before and after the run; a link down and counters that
//! grow named by GPU and link (GP055, GP056); a PCIe node and bridged PCIe
//! cards expecting no link they do not report up; the links read once
//! where nothing runs; speeds from a driver without
//! NVML_FI_DEV_NVLINK_GET_SPEED. Eight emulated GPUs take about 2 s a run
//! at the tests' small size.
#![cfg(target_os = "linux")]
mod common;

use common::{gpuprobe_args, gpuprobe_with};
use gpuprobe::report::{
    DeviceStatus, NvLink, NvLinkCounter, NvLinkRemoteKind, NvLinkState, Reading, Unavailable,
    Verdict,
};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

fn nvlink(d: &gpuprobe::report::DeviceReport) -> &NvLink {
    d.nvlink.as_ref().expect("the GPU's NVLinks were read")
}

#[test]
fn an_hgx_node_reports_every_gpus_18_links_up_with_their_counters() {
    let run = gpuprobe_with("nvlink-hgx-healthy", SMALL, &[]);
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
    assert!(r.diagnoses.is_empty(), "{:?}", r.diagnoses);
    assert_eq!(r.devices.len(), 8);
    for d in &r.devices {
        let n = nvlink(d);
        assert!(n.nvswitch, "GPU {}", d.index);
        assert!(n.window_ms.is_some_and(|w| w > 0.0));
        assert_eq!((n.active(), n.expected()), (18, 18), "GPU {}", d.index);
        for (i, l) in n.listed().iter().enumerate() {
            assert_eq!(l.link, i as u32);
            assert_eq!(l.state, NvLinkState::Active);
            assert_eq!(l.state_before, Some(NvLinkState::Active));
            assert_eq!(l.version, Some(4));
            assert_eq!(l.speed_mbps, Some(26562));
            let remote = l.remote.as_ref().expect("an active link's far end");
            assert_eq!(remote.kind, NvLinkRemoteKind::Nvswitch);
            assert!(remote
                .pci_bus_id
                .as_deref()
                .is_some_and(|b| b.contains(':')));
            for c in NvLinkCounter::ALL {
                assert_eq!(
                    l.growth(c),
                    Some(0),
                    "GPU {} link {i} {}",
                    d.index,
                    c.as_str()
                );
            }
        }
    }
}

#[test]
fn a_link_down_names_the_gpu_and_the_link_and_fails_the_node() {
    let run = gpuprobe_with("nvlink-down", SMALL, &[]);
    let r = &run.report;
    let codes: Vec<&str> = r.diagnoses.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["GP055"], "{}", r.summary);
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(run.code(), 1);
    let d = &r.diagnoses[0];
    assert_eq!(d.devices, [3]);
    assert!(
        d.evidence[0].contains("GPU 3") && d.evidence[0].contains("link 7"),
        "{:?}",
        d.evidence
    );
    for device in &r.devices {
        let n = nvlink(device);
        let want = if device.index == 3 {
            (DeviceStatus::Fail, 17)
        } else {
            (DeviceStatus::Pass, 18)
        };
        assert_eq!((device.status, n.active()), want, "GPU {}", device.index);
        assert_eq!(n.expected(), 18);
    }
    let link7 = &nvlink(&r.devices[3]).listed()[7];
    assert!(link7.is_down());
    assert_eq!(link7.state_before, Some(NvLinkState::Inactive));
}

#[test]
fn growing_counters_name_the_gpu_and_the_link_with_the_numbers() {
    let run = gpuprobe_with("nvlink-errors-growing", SMALL, &[]);
    let r = &run.report;
    let codes: Vec<&str> = r.diagnoses.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["GP056"], "{}", r.summary);
    assert_eq!(r.verdict, Verdict::Degraded);
    let d = &r.diagnoses[0];
    assert_eq!(d.devices, [5]);
    assert!(
        d.evidence[0].contains("GPU 5") && d.evidence[0].contains("NVLink 11"),
        "{:?}",
        d.evidence
    );
    let n = nvlink(&r.devices[5]);
    assert_eq!(n.active(), 18, "errors, every link still up");
    let link = &n.listed()[11];
    let before = link.counters_before.as_ref().expect("read before the run");
    assert_eq!(before.replay, Reading::Value(3));
    let grew = link.growth(NvLinkCounter::Replay).unwrap();
    assert!(grew >= 1, "{grew}");
    assert!(
        d.evidence[0].contains(&format!("+{grew} replay")),
        "{:?}",
        d.evidence
    );
    // Only that link grew.
    for l in n.listed().iter().filter(|l| l.link != 11) {
        assert_eq!(l.growth(NvLinkCounter::Replay), Some(0));
    }
}

#[test]
fn pcie_gpus_expect_no_link_they_do_not_report_up() {
    // No NVLink at all: NVML answers NOT_SUPPORTED, and nothing is said.
    let run = gpuprobe_with("nvlink-pcie-node", SMALL, &[]);
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
    for d in &run.report.devices {
        let n = nvlink(d);
        assert_eq!(n.links, Reading::Unavailable(Unavailable::NotSupported));
        assert!(!n.nvswitch);
        assert_eq!(n.expected(), 0);
    }
    // Bridged cards: 12 of 18 links wired, the other 6 inactive by design.
    let run = gpuprobe_with("nvlink-pcie-bridged", SMALL, &[]);
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
    for (d, peer) in run
        .report
        .devices
        .iter()
        .zip(["00000000:02:00.0", "00000000:01:00.0"])
    {
        let n = nvlink(d);
        assert!(!n.nvswitch);
        assert_eq!((n.listed().len(), n.active(), n.expected()), (18, 12, 12));
        for l in n.listed().iter().filter(|l| l.state == NvLinkState::Active) {
            let remote = l.remote.as_ref().unwrap();
            assert_eq!(remote.kind, NvLinkRemoteKind::Gpu);
            assert_eq!(remote.pci_bus_id.as_deref(), Some(peer));
        }
    }
}

#[test]
fn without_a_run_the_links_are_read_once_and_only_a_link_down_is_judged() {
    // `list` runs no work: no window, no counters before, no growth judged.
    let run = gpuprobe_args("nvlink-errors-growing", &["list", "--json"]);
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
    let n = nvlink(&run.report.devices[5]);
    assert_eq!(n.window_ms, None);
    assert!(n.listed().iter().all(|l| l.counters_before.is_none()));
    // A link down shows without any work, and fails `health --no-context`.
    let run = gpuprobe_args("nvlink-down", &["list", "--json"]);
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP055"]);
    for (scenario, code) in [("nvlink-down", 1), ("nvlink-errors-growing", 0)] {
        let (mut cmd, _dir) = common::command_with(scenario);
        let out = cmd.args(["health", "--no-context"]).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{scenario}");
    }
}

#[test]
fn a_driver_without_the_speed_field_gives_the_per_link_speeds_it_has() {
    // NVML_FI_DEV_NVLINK_GET_SPEED came with R525; a 470 driver answers the
    // per-link fields, which exist for links 0-11 only.
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::scenario("nvlink-hgx-healthy")).unwrap(),
    )
    .unwrap();
    scenario["devices"].as_array_mut().unwrap().truncate(1);
    scenario["driver_version"] = 11040.into();
    scenario["nvml"] = serde_json::json!({"driver_version": "470.256.02"});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), scenario.to_string()).unwrap();
    let (mut cmd, _dir) = common::command_with_file(file.path());
    let out = cmd.args(["--json"]).args(SMALL).output().unwrap();
    let (_, report) = common::parse_report(&out.stdout);
    assert!(report.diagnoses.is_empty(), "{:?}", report.diagnoses);
    let n = nvlink(&report.devices[0]);
    // Before R535 NVML has no fabric calls: the switches say it.
    assert!(n.nvswitch);
    for l in n.listed() {
        let want = (l.link < 12).then_some(26562);
        assert_eq!(l.speed_mbps, want, "link {}", l.link);
    }
}
