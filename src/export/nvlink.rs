//! A GPU's NVLinks (`DeviceReport::nvlink`) as the exporters show them:
//! in text one line, and a line per link that is down or took errors; in
//! Prometheus the links active and expected and the counters' growth.
use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::report::{NvLink, NvLinkCounter, NvLinkLink, NvLinkRemoteKind, NvLinkState, Reading};

/// The summary line, then the lines of the links that need a look.
#[must_use]
pub fn lines(n: &NvLink) -> Vec<String> {
    let links = match &n.links {
        Reading::Value(links) => links,
        Reading::Unavailable(crate::report::Unavailable::NotSupported) => {
            return vec!["none (no NVLink on this GPU)".into()]
        }
        Reading::Unavailable(why) => {
            let why = serde_json::to_value(why)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return vec![format!("not readable ({why})")];
        }
    };
    let active: Vec<&NvLinkLink> = links
        .iter()
        .filter(|l| l.state == NvLinkState::Active)
        .collect();
    let mut first = format!(
        "{} of {} links active ({} expected)",
        active.len(),
        links.len(),
        n.expected()
    );
    let versions: BTreeSet<u32> = active.iter().filter_map(|l| l.version).collect();
    if let [v] = versions.iter().collect::<Vec<_>>()[..] {
        let _ = write!(first, ", NVLink {v}");
    }
    first.push_str(&remotes(&active));
    let speeds: BTreeSet<u32> = active.iter().filter_map(|l| l.speed_mbps).collect();
    if let [s] = speeds.iter().collect::<Vec<_>>()[..] {
        let _ = write!(first, ", {s} MB/s each");
    }
    let _ = match (n.window_ms, errors(links)) {
        (None, _) => write!(first, "; error counters read once"),
        (Some(_), None) => write!(first, "; no errors during the run"),
        (Some(ms), Some(e)) => write!(first, "; {e} in {:.1} s", ms / 1e3),
    };
    let mut out = vec![first];
    for l in links {
        let grew: Vec<String> = NvLinkCounter::ALL
            .iter()
            .filter_map(|c| {
                l.growth(*c)
                    .filter(|g| *g > 0)
                    .map(|g| format!("+{g} {}", c.as_str()))
            })
            .collect();
        if l.is_down() {
            let when = if l.state_before == Some(NvLinkState::Active) {
                " (went down during the run)"
            } else {
                ""
            };
            out.push(format!("link {} inactive, expected up{when}", l.link));
        }
        if !grew.is_empty() {
            out.push(format!("link {}: {}", l.link, grew.join(", ")));
        }
    }
    out
}

/// ", to NVSwitch" or ", to GPU <bus id>" (each peer once).
fn remotes(active: &[&NvLinkLink]) -> String {
    let kinds: BTreeSet<&str> = active
        .iter()
        .filter_map(|l| l.remote.as_ref())
        .map(|r| match r.kind {
            NvLinkRemoteKind::Nvswitch => "NVSwitch",
            NvLinkRemoteKind::Gpu => "GPU",
            NvLinkRemoteKind::Ibmnpu => "CPU (IBM NPU)",
            NvLinkRemoteKind::Unknown => "?",
        })
        .collect();
    let peers: BTreeSet<&str> = active
        .iter()
        .filter_map(|l| l.remote.as_ref())
        .filter(|r| r.kind == NvLinkRemoteKind::Gpu)
        .filter_map(|r| r.pci_bus_id.as_deref())
        .collect();
    match kinds.iter().collect::<Vec<_>>()[..] {
        [] => String::new(),
        [&"GPU"] if !peers.is_empty() => format!(
            " to GPU {}",
            peers.into_iter().collect::<Vec<_>>().join(", ")
        ),
        [k] => format!(" to {k}"),
        _ => format!(
            " to {}",
            kinds.into_iter().collect::<Vec<_>>().join(" and ")
        ),
    }
}

/// The counters' growth over every link, in words; `None` when none grew.
fn errors(links: &[NvLinkLink]) -> Option<String> {
    let grew: Vec<String> = NvLinkCounter::ALL
        .iter()
        .filter_map(|c| {
            let total: u64 = links.iter().filter_map(|l| l.growth(*c)).sum();
            (total > 0).then(|| format!("+{total} {}", c.as_str()))
        })
        .collect();
    (!grew.is_empty()).then(|| grew.join(", "))
}

/// A Prometheus sample: an extra label or none, and the value.
type Sample = (Option<String>, f64);

/// `gpuprobe_device_nvlink_links_active` and `..._expected`: one sample
/// where the GPU has NVLink, none on a GPU without (or unread).
pub(super) fn links(d: &crate::report::DeviceReport, expected: bool) -> Vec<Sample> {
    let Some(n) = d.nvlink.as_ref().filter(|n| n.links.value().is_some()) else {
        return Vec::new();
    };
    let count = if expected { n.expected() } else { n.active() };
    vec![(None, count as f64)]
}

/// `gpuprobe_device_nvlink_errors_during_run`: each counter's growth over
/// every link between the two readings; none where the links were read
/// once.
pub(super) fn errors_during_run(d: &crate::report::DeviceReport) -> Vec<Sample> {
    let Some(n) = d.nvlink.as_ref().filter(|n| n.window_ms.is_some()) else {
        return Vec::new();
    };
    NvLinkCounter::ALL
        .iter()
        .filter_map(|c| {
            n.growth(*c)
                .map(|g| (Some(format!("counter=\"{}\"", c.as_str())), g as f64))
        })
        .collect()
}

/// `gpuprobe_device_nvlink_crc_errors_per_second`: CRC errors (flit and
/// data) over every link per second of the window, the rate DCGM judges.
pub(super) fn crc_per_second(d: &crate::report::DeviceReport) -> Vec<Sample> {
    let Some(n) = d.nvlink.as_ref() else {
        return Vec::new();
    };
    let Some(seconds) = n.window_ms.map(|ms| ms / 1e3).filter(|s| *s > 0.0) else {
        return Vec::new();
    };
    let crc = [NvLinkCounter::CrcFlit, NvLinkCounter::CrcData]
        .iter()
        .filter_map(|c| n.growth(*c))
        .reduce(u64::saturating_add);
    crc.map(|c| (None, c as f64 / seconds))
        .into_iter()
        .collect()
}
