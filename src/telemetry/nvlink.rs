//! A GPU's NVLinks as NVML reports them: each link's state, version,
//! remote end and speed, and its error counters (`Snapshot`), read before
//! a run's work and after it and joined into the report's `NvLink`
//! (`report`), which says which links the GPU itself expects up.
//!
//! Every call here is in NVIDIA's 470, 535 and 550 libnvidia-ml
//! (tests/real_driver.rs); a driver without one answers as a GPU without
//! NVLink does, never as a fault. A reading costs a few calls per link
//! (state, then for an active link version, remote end, remote type, the
//! four counters) and one field-value call for the speeds: about 150 NVML
//! calls on an 18-link H100, each answered by the driver from its own
//! state without touching the links.
use std::ffi::{c_int, c_uint, c_void};
use std::time::Instant;

use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Device;

use super::{reading, Loaded};
use crate::report::{
    NvLink, NvLinkCounters, NvLinkLink, NvLinkRemote, NvLinkRemoteKind, NvLinkState, Reading,
    Unavailable,
};

/// Every NVML entry point a reading calls, through nvml-wrapper or
/// directly: tests/real_driver.rs finds each in NVIDIA's 470, 535 and 550
/// libraries, and in the fake's exports.
pub const SYMBOLS: &[&str] = &[
    "nvmlDeviceGetNvLinkState",
    "nvmlDeviceGetNvLinkVersion",
    "nvmlDeviceGetNvLinkRemotePciInfo_v2",
    "nvmlDeviceGetNvLinkRemoteDeviceType",
    "nvmlDeviceGetNvLinkErrorCounter",
    "nvmlDeviceGetFieldValues",
];

/// NVML_NVLINK_MAX_LINKS (nvml.h): links are numbered 0 to 17.
const MAX_LINKS: u32 = 18;

/// NVML_FI_DEV_NVLINK_GET_SPEED (nvml.h of CUDA 12.0, R525 drivers): a
/// link's speed in MB/s, the link in the field's scopeId.
const FI_NVLINK_GET_SPEED: c_uint = 164;

/// NVML_FI_DEV_NVLINK_SPEED_MBPS_L0..L5 (84-89) and L6..L11 (132-137),
/// the per-link fields of older drivers (nvml.h); links 12-17 have none.
fn per_link_speed_field(link: u32) -> Option<c_uint> {
    match link {
        0..=5 => Some(84 + link),
        6..=11 => Some(132 + link - 6),
        _ => None,
    }
}

/// nvml.h's nvmlFieldValue_t (the value a union of 8 bytes).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RawFieldValue {
    field_id: c_uint,
    scope_id: c_uint,
    timestamp: i64,
    latency_usec: i64,
    value_type: c_uint,
    nvml_return: c_int,
    value: u64,
}

type FieldValues = unsafe extern "C" fn(*mut c_void, c_int, *mut RawFieldValue) -> c_int;
type RemoteDeviceType = unsafe extern "C" fn(*mut c_void, c_uint, *mut c_uint) -> c_int;

/// The NVLink calls nvml-wrapper does not make as gpuprobe needs them:
/// nvmlDeviceGetFieldValues with a scopeId (the wrapper always sends 0),
/// and nvmlDeviceGetNvLinkRemoteDeviceType (the wrapper's passes a
/// temporary and never reads the answer).
#[derive(Default)]
pub(super) struct Calls {
    field_values: Option<FieldValues>,
    remote_device_type: Option<RemoteDeviceType>,
}

impl Calls {
    /// Resolved from the library `Loaded` keeps open; absent ones stay
    /// `None`.
    pub(super) fn resolve(lib: Option<&libloading::Library>) -> Calls {
        let Some(lib) = lib else {
            return Calls::default();
        };
        // SAFETY: `FieldValues` and `RemoteDeviceType` are nvml.h's
        // prototypes of the two calls (the device handle as an opaque
        // pointer, nvmlFieldValue_t as `RawFieldValue`), called only while
        // `Loaded` keeps `lib` loaded.
        unsafe {
            Calls {
                field_values: lib
                    .get::<FieldValues>(b"nvmlDeviceGetFieldValues\0")
                    .ok()
                    .map(|f| *f),
                remote_device_type: lib
                    .get::<RemoteDeviceType>(b"nvmlDeviceGetNvLinkRemoteDeviceType\0")
                    .ok()
                    .map(|f| *f),
            }
        }
    }
}

/// One reading of a GPU's links.
#[derive(Debug, Clone)]
pub struct Snapshot {
    links: Reading<Vec<LinkReading>>,
    at: Instant,
}

#[derive(Debug, Clone)]
struct LinkReading {
    link: u32,
    active: bool,
    version: Option<u32>,
    remote: Option<NvLinkRemote>,
    speed_mbps: Option<u32>,
    counters: NvLinkCounters,
}

impl Loaded {
    /// Reads the links of `device` (a GPU's handle, never a MIG device's:
    /// the links are the GPU's).
    #[must_use]
    pub fn nvlink(&self, device: &Device<'_>) -> Snapshot {
        let at = Instant::now();
        let mut links = Vec::new();
        for link in 0..MAX_LINKS {
            let nvlink = device.link_wrapper_for(link);
            let active = match nvlink.is_active() {
                Ok(active) => active,
                // A link index the GPU lacks ends the list (nvml.h: "if
                // device or link is invalid"); at link 0, or from a driver
                // without the call, the GPU has no NVLink.
                Err(NvmlError::NotSupported | NvmlError::InvalidArg) if link > 0 => break,
                Err(
                    NvmlError::NotSupported
                    | NvmlError::InvalidArg
                    | NvmlError::FailedToLoadSymbol(_),
                ) => {
                    return Snapshot {
                        links: Reading::Unavailable(Unavailable::NotSupported),
                        at,
                    }
                }
                Err(e) => {
                    return Snapshot {
                        links: reading::<Vec<LinkReading>>(Err(e)),
                        at,
                    }
                }
            };
            let counter = |c: ErrorCounter| reading(nvlink.error_counter(c));
            let counters = NvLinkCounters {
                crc_flit: counter(ErrorCounter::DlCrcFlit),
                crc_data: counter(ErrorCounter::DlCrcData),
                replay: counter(ErrorCounter::DlReplay),
                recovery: counter(ErrorCounter::DlRecovery),
            };
            // What the far end is, only where there is one.
            let (version, remote) = if active {
                (
                    nvlink.version().ok(),
                    Some(NvLinkRemote {
                        kind: self.remote_kind(device, link),
                        pci_bus_id: nvlink.remote_pci_info().ok().map(|p| p.bus_id),
                    }),
                )
            } else {
                (None, None)
            };
            links.push(LinkReading {
                link,
                active,
                version,
                remote,
                speed_mbps: None,
                counters,
            });
        }
        self.speeds(device, &mut links);
        Snapshot {
            links: Reading::Value(links),
            at,
        }
    }

    /// nvmlDeviceGetNvLinkRemoteDeviceType; `unknown` where the driver
    /// lacks it or cannot say.
    fn remote_kind(&self, device: &Device<'_>, link: u32) -> NvLinkRemoteKind {
        let Some(f) = self.nvlink_calls.remote_device_type else {
            return NvLinkRemoteKind::Unknown;
        };
        let mut kind: c_uint = 255;
        // SAFETY: `f` is valid while `self` keeps the library loaded; the
        // handle is a device of this NVML; `kind` is a live
        // nvmlIntNvLinkDeviceType_t (an enum: c_uint-sized).
        let code = unsafe { f(device.handle().cast(), link, &raw mut kind) };
        match (code, kind) {
            (0, 0) => NvLinkRemoteKind::Gpu,
            (0, 1) => NvLinkRemoteKind::Ibmnpu,
            (0, 2) => NvLinkRemoteKind::Nvswitch,
            _ => NvLinkRemoteKind::Unknown,
        }
    }

    /// Fills each active link's speed in one nvmlDeviceGetFieldValues:
    /// NVML_FI_DEV_NVLINK_GET_SPEED with the link as scope, and for links
    /// 0-11 the per-link field older drivers answer instead.
    fn speeds(&self, device: &Device<'_>, links: &mut [LinkReading]) {
        let Some(f) = self.nvlink_calls.field_values else {
            return;
        };
        let mut asked: Vec<(usize, RawFieldValue)> = Vec::new();
        for (i, l) in links.iter().enumerate().filter(|(_, l)| l.active) {
            asked.push((
                i,
                RawFieldValue {
                    field_id: FI_NVLINK_GET_SPEED,
                    scope_id: l.link,
                    ..RawFieldValue::default()
                },
            ));
            if let Some(field_id) = per_link_speed_field(l.link) {
                asked.push((
                    i,
                    RawFieldValue {
                        field_id,
                        ..RawFieldValue::default()
                    },
                ));
            }
        }
        if asked.is_empty() {
            return;
        }
        let mut values: Vec<RawFieldValue> = asked.iter().map(|(_, v)| *v).collect();
        let Ok(count) = c_int::try_from(values.len()) else {
            return;
        };
        // SAFETY: `f` is valid while `self` keeps the library loaded; the
        // handle is a device of this NVML; `values` holds `count` live
        // nvmlFieldValue_t with their field ids and scopes set, as the call
        // asks.
        if unsafe { f(device.handle().cast(), count, values.as_mut_ptr()) } != 0 {
            return;
        }
        for ((i, _), v) in asked.iter().zip(&values) {
            if links[*i].speed_mbps.is_none() {
                links[*i].speed_mbps = field_u32(v);
            }
        }
    }
}

/// A field value's number, where NVML answered it as an unsigned integer
/// (nvmlValueType_t 1 unsigned int, 2 unsigned long, 3 unsigned long long).
fn field_u32(v: &RawFieldValue) -> Option<u32> {
    if v.nvml_return != 0 {
        return None;
    }
    match v.value_type {
        // The union's unsigned int member: its first 4 bytes, the low
        // half of the u64 on the little-endian targets gpuprobe builds for.
        1 => Some(v.value as u32),
        2 | 3 => u32::try_from(v.value).ok(),
        _ => None,
    }
}

/// The report's view of a GPU's links: `after`, and where the links were
/// read before the run's work, what changed since (`before`).
#[must_use]
pub fn report(before: Option<&Snapshot>, after: &Snapshot) -> NvLink {
    let window_ms = before.map(|b| after.at.duration_since(b.at).as_secs_f64() * 1e3);
    let earlier = |link: u32| {
        before
            .and_then(|b| b.links.value())
            .and_then(|ls| ls.iter().find(|l| l.link == link))
    };
    let Reading::Value(now) = &after.links else {
        return NvLink {
            links: match &after.links {
                Reading::Unavailable(u) => Reading::Unavailable(*u),
                Reading::Value(_) => unreachable!("matched above"),
            },
            nvswitch: false,
            window_ms,
        };
    };
    // On NVSwitches every link of the GPU is cabled to a switch (HGX
    // H100: 18 links to four NVSwitches; HGX A100: 12 to six; NVIDIA's
    // health validation allows no inactive NVLink on either). What says a
    // GPU is on them is a link up to one: not NVML's fabric registration,
    // which an HGX GPU passed alone to a VM may still report while the
    // fabric manager keeps a one-GPU VM's NVLinks out of use (NVIDIA
    // Fabric Manager User Guide, "Virtual Machine with One GPU"), so that
    // a GPU with every link down is never judged: it cannot be told from
    // one whose links are off by design.
    // Nor does NVML_FI_DEV_NVLINK_LINK_COUNT say which links are wired:
    // it counts the links the GPU has, and a bridged H100 PCIe has 18 of
    // which its bridges wire 12 (Azure/azurehpc-health-checks#162), the
    // others inactive by design; so off NVSwitches only a link seen up is
    // expected.
    let to_switch = |l: &LinkReading| {
        l.remote
            .as_ref()
            .is_some_and(|r| r.kind == NvLinkRemoteKind::Nvswitch)
    };
    let nvswitch =
        now.iter().any(to_switch) || now.iter().filter_map(|l| earlier(l.link)).any(to_switch);
    let state = |active: bool| {
        if active {
            NvLinkState::Active
        } else {
            NvLinkState::Inactive
        }
    };
    let links = now
        .iter()
        .map(|l| {
            let was = earlier(l.link);
            // A link inactive now keeps what it said of itself when it was
            // up: which end it went to is the evidence.
            let up = if l.active {
                Some(l)
            } else {
                was.filter(|w| w.active)
            };
            NvLinkLink {
                link: l.link,
                state: state(l.active),
                state_before: was.map(|w| state(w.active)),
                expected: nvswitch || l.active || was.is_some_and(|w| w.active),
                version: up.and_then(|u| u.version),
                remote: up.and_then(|u| u.remote.clone()),
                speed_mbps: up.and_then(|u| u.speed_mbps),
                counters_before: was.map(|w| w.counters.clone()),
                counters_after: l.counters.clone(),
            }
        })
        .collect();
    NvLink {
        links: Reading::Value(links),
        nvswitch,
        window_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(replay: u64) -> NvLinkCounters {
        NvLinkCounters {
            crc_flit: Reading::Value(0),
            crc_data: Reading::Value(0),
            replay: Reading::Value(replay),
            recovery: Reading::Value(0),
        }
    }

    fn link(link: u32, active: bool, remote: Option<NvLinkRemoteKind>) -> LinkReading {
        LinkReading {
            link,
            active,
            version: active.then_some(4),
            remote: remote.map(|kind| NvLinkRemote {
                kind,
                pci_bus_id: None,
            }),
            speed_mbps: active.then_some(26562),
            counters: counters(u64::from(link)),
        }
    }

    fn snapshot(links: Vec<LinkReading>) -> Snapshot {
        Snapshot {
            links: Reading::Value(links),
            at: Instant::now(),
        }
    }

    #[test]
    fn every_link_of_a_gpu_on_nvswitches_is_expected() {
        let sw = Some(NvLinkRemoteKind::Nvswitch);
        let after = snapshot(vec![link(0, true, sw), link(1, false, None)]);
        let r = report(None, &after);
        assert!(r.nvswitch);
        assert_eq!((r.active(), r.expected()), (1, 2));
        assert!(r.listed()[1].is_down());
        assert_eq!(r.window_ms, None);
    }

    #[test]
    fn an_unbridged_link_is_not_expected_but_one_that_dropped_is() {
        let gpu = Some(NvLinkRemoteKind::Gpu);
        let before = snapshot(vec![
            link(0, true, gpu),
            link(1, true, gpu),
            link(2, false, None),
        ]);
        let after = snapshot(vec![
            link(0, true, gpu),
            link(1, false, None),
            link(2, false, None),
        ]);
        let r = report(Some(&before), &after);
        assert!(!r.nvswitch);
        let [a, b, c] = r.listed() else { panic!() };
        assert!(!a.is_down() && b.is_down() && !c.is_down());
        // The dropped link keeps where it went and its speed.
        assert_eq!(b.remote.as_ref().map(|r| r.kind), gpu);
        assert_eq!(b.speed_mbps, Some(26562));
        assert_eq!(b.state_before, Some(NvLinkState::Active));
        assert!(r.window_ms.is_some());
    }

    #[test]
    fn a_gpu_with_every_link_down_expects_none_of_them() {
        // As an HGX GPU passed alone to a VM reads: its links off by design.
        let after = snapshot(vec![link(0, false, None), link(1, false, None)]);
        let r = report(Some(&after.clone()), &after);
        assert!(!r.nvswitch);
        assert_eq!((r.active(), r.expected()), (0, 0));
    }

    #[test]
    fn no_nvlink_is_not_supported_and_expects_nothing() {
        let after = Snapshot {
            links: Reading::Unavailable(Unavailable::NotSupported),
            at: Instant::now(),
        };
        let r = report(None, &after);
        assert_eq!(r.links, Reading::Unavailable(Unavailable::NotSupported));
        assert_eq!((r.active(), r.expected()), (0, 0));
    }

    #[test]
    fn speed_fields_read_as_nvml_writes_them() {
        let v = RawFieldValue {
            value_type: 1,
            value: 26562,
            ..RawFieldValue::default()
        };
        assert_eq!(field_u32(&v), Some(26562));
        let failed = RawFieldValue {
            nvml_return: 3,
            ..v
        };
        assert_eq!(field_u32(&failed), None);
        assert_eq!(per_link_speed_field(6), Some(132));
        assert_eq!(per_link_speed_field(12), None);
        assert_eq!(size_of::<RawFieldValue>(), 40);
    }
}
