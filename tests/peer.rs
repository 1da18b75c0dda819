//! The peer-to-peer check across a node's GPUs (src/checks/peer.rs) against
//! the fake driver's peer model (tests/fakegpu/src/cuda/peer.rs): every
//! ordered pair CUDA offers peer access for is written by copy and by
//! kernel and checked word for word; a path that drops or corrupts words is
//! named by pair, direction and writer (GP058); pairs without peer access
//! cost nothing and fail nothing; `health` and `watch` never write between
//! GPUs.
mod common;

use common::gpuprobe_with;
use gpuprobe::report::{CheckStatus, PeerAccess, PeerPair, Report, Verdict};

/// A small product and no bandwidth check: the subject is the peer check.
const QUICK: &[&str] = &["--size", "16", "--iterations", "1", "--bandwidth-size", "0"];

fn peer_check(report: &Report, gpu: usize) -> Option<(CheckStatus, String)> {
    report.devices[gpu]
        .checks
        .iter()
        .find(|c| c.name == "peer")
        .map(|c| (c.status, c.detail.clone()))
}

fn pair(report: &Report, from: u32, to: u32) -> &PeerPair {
    report
        .peers
        .as_ref()
        .expect("the peer check ran")
        .pairs
        .iter()
        .find(|p| p.from == from && p.to == to)
        .unwrap_or_else(|| panic!("no pair {from} -> {to}"))
}

/// An 8-GPU NVSwitch node: 56 ordered pairs, each granted and written by
/// both writers, every word exact; every GPU's check passes; nothing said.
#[test]
fn a_healthy_nvswitch_node_passes_every_pair_both_ways() {
    let run = gpuprobe_with("peer-nvswitch-8", QUICK, &[]);
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
    assert!(r.diagnoses.is_empty(), "{:?}", r.diagnoses);
    let peers = r.peers.as_ref().expect("peers");
    assert_eq!(peers.pairs.len(), 56);
    for p in &peers.pairs {
        assert_eq!(p.access, PeerAccess::Granted, "{p:?}");
        for write in [&p.copy, &p.kernel] {
            let w = write.as_ref().expect("written");
            assert!(w.exact && w.mismatches == 0 && w.error.is_none(), "{p:?}");
            assert!(w.time_ms.is_some(), "{p:?}");
        }
    }
    for gpu in 0..8 {
        let (status, detail) = peer_check(r, gpu).expect("a peer check");
        assert_eq!(status, CheckStatus::Pass, "GPU {gpu}: {detail}");
        assert!(detail.contains("wrote into 7 peer(s)"), "{detail}");
    }
}

/// The IOMMU case: CUDA grants every pair, yet GPU 0's kernel stores into
/// GPU 1 never arrive and one word in 1024 of GPU 2's copies into GPU 3
/// has bit 3 flipped. Exactly those two writes are wrong, each named by
/// pair, direction and writer, with the count; the other writes of the
/// same pairs and every other pair are exact.
#[test]
fn dropped_and_flipped_peer_words_are_named_by_pair_and_writer() {
    let run = gpuprobe_with("peer-iommu-corrupts", QUICK, &[]);
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.summary);
    assert_eq!(run.code(), 1);
    let words = r.peers.as_ref().unwrap().words;
    let lost = pair(r, 0, 1);
    let kernel = lost.kernel.as_ref().unwrap();
    assert_eq!(kernel.mismatches, words, "every store lost");
    assert_eq!(
        kernel.first_mismatches[0].actual, 0,
        "the buffer kept its zeros"
    );
    assert!(
        lost.copy.as_ref().unwrap().exact,
        "the copy engine's path is fine"
    );
    let flipped = pair(r, 2, 3);
    let copy = flipped.copy.as_ref().unwrap();
    assert_eq!(copy.mismatches, words / 1024);
    let m = &copy.first_mismatches[0];
    assert_eq!(m.expected ^ m.actual, 1 << 3);
    assert!(flipped.kernel.as_ref().unwrap().exact);
    // The reverse directions are exact.
    for (from, to) in [(1, 0), (3, 2), (0, 2), (3, 1)] {
        let p = pair(r, from, to);
        assert!(
            p.copy.as_ref().unwrap().exact && p.kernel.as_ref().unwrap().exact,
            "{p:?}"
        );
    }
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.code == "GP058")
        .unwrap_or_else(|| panic!("no GP058: {:?}", r.diagnoses));
    assert_eq!(d.devices, [0, 1, 2, 3]);
    let evidence = d.evidence.join("\n");
    assert!(
        evidence.contains("GPU 0 -> GPU 1, kernel stores")
            && evidence.contains(&format!("{words} of {words} words wrong"))
            && evidence.contains("never arrived"),
        "{evidence}"
    );
    assert!(
        evidence.contains("GPU 2 -> GPU 3, copy")
            && evidence.contains(&format!("{} of {words} words wrong", words / 1024))
            && evidence.contains("altered in 1 bit(s)"),
        "{evidence}"
    );
    assert!(!evidence.contains("GPU 1 -> GPU 0"), "{evidence}");
    // The host's IOMMU, as sysfs shows it to the container: two VT-d
    // units, intel_iommu=on, every GPU's domain translated.
    let iommu = r.environment.iommu.as_ref().expect("sysfs read");
    assert_eq!(iommu.units, ["dmar0", "dmar1"]);
    assert_eq!(iommu.kernel_parameters, ["intel_iommu=on"]);
    assert!(
        iommu
            .gpus
            .iter()
            .all(gpuprobe::report::IommuGpu::translated),
        "{iommu:?}"
    );
    assert!(
        evidence.contains("IOMMU dmar0, dmar1 in use (intel_iommu=on): GPU 0 DMA-FQ (translated)"),
        "{evidence}"
    );
}

/// A container that sees GPUs 2 and 3 only: CUDA numbers them 0 and 1,
/// and the broken copy path between them is named by those indices.
#[test]
fn a_container_with_some_of_the_gpus_names_the_pair_by_its_own_indices() {
    let run = gpuprobe_with(
        "peer-iommu-corrupts",
        QUICK,
        &[("CUDA_VISIBLE_DEVICES", "2,3")],
    );
    let r = &run.report;
    assert_eq!(r.peers.as_ref().unwrap().pairs.len(), 2);
    assert!(!pair(r, 0, 1).copy.as_ref().unwrap().exact);
    assert!(pair(r, 1, 0).copy.as_ref().unwrap().exact);
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.code == "GP058")
        .expect("GP058");
    assert!(
        d.evidence[0].starts_with("GPU 0 -> GPU 1, copy"),
        "{:?}",
        d.evidence
    );
}

/// Four GPUs CUDA offers no peer access between (the default of a scenario
/// that says nothing of it): every pair is `not_offered`, no GPU's check
/// passes for work it did not do (each is skipped with the reason), and
/// nothing is diagnosed.
#[test]
fn gpus_without_peer_access_are_skipped_with_the_reason_not_failed() {
    let run = gpuprobe_with(
        "multi-gpu-one-corrupt",
        QUICK,
        &[("CUDA_VISIBLE_DEVICES", "0,1,3")],
    );
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
    let peers = r.peers.as_ref().expect("peers");
    assert_eq!(peers.pairs.len(), 6);
    assert!(peers
        .pairs
        .iter()
        .all(|p| p.access == PeerAccess::NotOffered && p.copy.is_none() && p.kernel.is_none()));
    for gpu in 0..3 {
        let (status, detail) = peer_check(r, gpu).expect("a peer check");
        assert_eq!(status, CheckStatus::Skip, "{detail}");
        assert!(detail.contains("no peer access"), "{detail}");
    }
}

/// `health` is a liveness check and `watch` a monitoring loop: neither
/// writes between GPUs (a hung peer write cannot be cancelled), so a broken
/// peer path leaves both as they were; a single GPU has no peer.
#[test]
fn health_watch_and_a_single_gpu_run_no_peer_check() {
    let (mut cmd, _dir) = common::command_with("peer-iommu-corrupts");
    let out = cmd.arg("health").output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && line.starts_with("healthy: "),
        "{line}"
    );
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("state.json");
    let (mut cmd, _dir) = common::command_with("peer-iommu-corrupts");
    let out = cmd
        .args(["watch", "--count", "1", "--quiet", "--state"])
        .arg(&file)
        .args(QUICK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let watched = Report::from_json(&std::fs::read(&file).unwrap()).unwrap();
    assert!(watched.peers.is_none());
    assert!((0..4).all(|gpu| peer_check(&watched, gpu).is_none()));
    assert_eq!(watched.verdict, Verdict::Healthy, "{}", watched.summary);
    let one = gpuprobe_with(
        "peer-iommu-corrupts",
        QUICK,
        &[("CUDA_VISIBLE_DEVICES", "1")],
    );
    assert!(one.report.peers.is_none());
    assert!(peer_check(&one.report, 0).is_none());
}

/// A GPU a job holds (EXCLUSIVE_PROCESS) on a node with peer access: it
/// admits no context of this process, so it takes no part, its `peer`
/// check says it is busy, and nothing is failed for it; the one GPU left
/// has no peer to write into, and says so.
#[test]
fn a_busy_gpu_takes_no_part_and_fails_nothing() {
    let text = std::fs::read_to_string(common::scenario("busy-one-of-two")).unwrap();
    let mut scenario: serde_json::Value = serde_json::from_str(&text).unwrap();
    scenario["peer"] = serde_json::json!({ "access": "all" });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), scenario.to_string()).unwrap();
    let (mut cmd, _dir) = common::command_with_file(file.path());
    let out = cmd.arg("--json").args(QUICK).output().unwrap();
    let (_, r) = common::parse_report(&out.stdout);
    assert!(
        matches!(r.verdict, Verdict::Healthy | Verdict::Degraded),
        "{}",
        r.summary
    );
    assert!(
        r.diagnoses.iter().all(|d| d.code != "GP058"),
        "{:?}",
        r.diagnoses
    );
    let busy = r
        .devices
        .iter()
        .position(|d| d.compute_not_verified.is_some())
        .expect("one GPU is busy");
    let checks: Vec<_> = r.devices[busy]
        .checks
        .iter()
        .filter(|c| c.name == "peer")
        .collect();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, CheckStatus::Skip);
    assert_eq!(checks[0].not_run, Some(gpuprobe::report::NotRun::Busy));
    let (status, detail) = peer_check(&r, 1 - busy).expect("a peer check");
    assert_eq!(status, CheckStatus::Skip, "{detail}");
    assert!(
        detail.contains("fewer than two GPUs could take part"),
        "{detail}"
    );
    assert!(r.peers.is_none());
}
