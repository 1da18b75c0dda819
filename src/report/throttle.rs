//! Why NVML says a GPU's clocks are held down: the reasons of nvml.h's
//! clocks event (formerly "throttle") bit mask, one word each on the wire,
//! and every bit NVML sets kept, named or not.
use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One reason NVML gives for a GPU's clocks (nvmlDeviceGetCurrentClocksEventReasons,
/// formerly nvmlDeviceGetCurrentClocksThrottleReasons: a bit mask).
///
/// On the wire each is a word: nvml.h's name in snake case
/// (`sw_power_cap`), or `unknown_0x400` for a bit this release does not
/// name, so that no bit NVML sets is lost (docs/report.md, "Throttle
/// reasons"). The bits are nvml.h's `nvmlClocksEventReason*` /
/// `nvmlClocksThrottleReason*` constants (NVML API Reference,
/// "NvmlClocksEventReasons", R550:
/// https://docs.nvidia.com/deploy/archive/R550/nvml-api/group__nvmlClocksEventReasons.html),
/// the nine that nvml-wrapper's `ThrottleReasons` names too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleReason {
    /// 0x1, GpuIdle: nothing runs on the GPU, its clocks drop to idle.
    GpuIdle,
    /// 0x2, ApplicationsClocksSetting: clocks held at the applications
    /// clocks set (`nvidia-smi -ac`).
    ApplicationsClocksSetting,
    /// 0x4, SwPowerCap: clocks lowered to keep within the power limit.
    SwPowerCap,
    /// 0x8, HwSlowdown: hardware slowdown (core clocks halved or more):
    /// temperature, an external power brake, or power draw too high.
    HwSlowdown,
    /// 0x10, SyncBoost: held by another GPU of its sync boost group.
    SyncBoost,
    /// 0x20, SwThermalSlowdown: the GPU or its memory above its maximum
    /// operating temperature.
    SwThermalSlowdown,
    /// 0x40, HwThermalSlowdown: hardware thermal slowdown (core clocks
    /// halved or more).
    HwThermalSlowdown,
    /// 0x80, HwPowerBrakeSlowdown: an external power brake asserted (by
    /// the system's power supply), core clocks halved or more.
    HwPowerBrakeSlowdown,
    /// 0x100, DisplayClockSetting: held by the display clocks setting.
    DisplayClockSetting,
    /// A bit NVML set that this release does not name (`from_bits` makes
    /// one per bit): `unknown_0x400`. NVML's current reference names two more,
    /// nvmlClocksEventReasonBoardLimit and nvmlClocksEventReasonReliability
    /// (https://docs.nvidia.com/deploy/nvml-api/api/group__nvmlClocksEventReasons.html),
    /// 0x200 and 0x400 in NVIDIA's generated bindings
    /// (cuda.bindings.nvml.ClocksEventReasons, EVENT_REASON_BOARD_LIMIT
    /// and EVENT_REASON_RELIABILITY); nvml-wrapper drops both.
    Unknown(u64),
    /// A word this release does not know, read from a report of a later
    /// release of the same schema version (throttle reasons are an
    /// open-ended set: docs/report.md, "Compatibility policy"), kept as
    /// written. The probe never makes one.
    Other(String),
}

impl ThrottleReason {
    /// The reasons nvml.h names, in bit order.
    pub const NAMED: [ThrottleReason; 9] = [
        ThrottleReason::GpuIdle,
        ThrottleReason::ApplicationsClocksSetting,
        ThrottleReason::SwPowerCap,
        ThrottleReason::HwSlowdown,
        ThrottleReason::SyncBoost,
        ThrottleReason::SwThermalSlowdown,
        ThrottleReason::HwThermalSlowdown,
        ThrottleReason::HwPowerBrakeSlowdown,
        ThrottleReason::DisplayClockSetting,
    ];

    /// The named reasons and unknown bits of NVML's bit mask, in bit order;
    /// empty for 0 (nvmlClocksEventReasonNone: clocks as high as possible).
    #[must_use]
    pub fn from_bits(bits: u64) -> Vec<ThrottleReason> {
        (0..u64::BITS)
            .map(|i| 1u64 << i)
            .filter(|bit| bits & bit != 0)
            .map(|bit| {
                ThrottleReason::NAMED
                    .into_iter()
                    .find(|r| r.bit() == Some(bit))
                    .unwrap_or(ThrottleReason::Unknown(bit))
            })
            .collect()
    }

    /// Its nvml.h bit (bits, for `Unknown`); `None` for a word of a later
    /// release.
    #[must_use]
    pub fn bit(&self) -> Option<u64> {
        Some(match self {
            ThrottleReason::GpuIdle => 0x1,
            ThrottleReason::ApplicationsClocksSetting => 0x2,
            ThrottleReason::SwPowerCap => 0x4,
            ThrottleReason::HwSlowdown => 0x8,
            ThrottleReason::SyncBoost => 0x10,
            ThrottleReason::SwThermalSlowdown => 0x20,
            ThrottleReason::HwThermalSlowdown => 0x40,
            ThrottleReason::HwPowerBrakeSlowdown => 0x80,
            ThrottleReason::DisplayClockSetting => 0x100,
            ThrottleReason::Unknown(bits) => *bits,
            ThrottleReason::Other(_) => return None,
        })
    }

    /// Its word on the wire: nvml.h's name in snake case, `unknown_0x400`,
    /// or a later release's word as written.
    #[must_use]
    pub fn word(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            ThrottleReason::GpuIdle => "gpu_idle",
            ThrottleReason::ApplicationsClocksSetting => "applications_clocks_setting",
            ThrottleReason::SwPowerCap => "sw_power_cap",
            ThrottleReason::HwSlowdown => "hw_slowdown",
            ThrottleReason::SyncBoost => "sync_boost",
            ThrottleReason::SwThermalSlowdown => "sw_thermal_slowdown",
            ThrottleReason::HwThermalSlowdown => "hw_thermal_slowdown",
            ThrottleReason::HwPowerBrakeSlowdown => "hw_power_brake_slowdown",
            ThrottleReason::DisplayClockSetting => "display_clock_setting",
            ThrottleReason::Unknown(bits) => return Cow::Owned(format!("unknown_{bits:#x}")),
            ThrottleReason::Other(word) => word,
        })
    }

    /// The reason a word on the wire stands for: a named reason,
    /// `unknown_0x…` exactly as `Display` writes it, else `Other`. Never
    /// fails, so a report of a later release reads.
    #[must_use]
    pub fn from_word(word: &str) -> ThrottleReason {
        if let Some(named) = ThrottleReason::NAMED.into_iter().find(|r| r.word() == word) {
            return named;
        }
        let unknown = word
            .strip_prefix("unknown_0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .map(ThrottleReason::Unknown)
            // Only the form `Display` writes, so that every word reads back
            // to what it was ("unknown_0x0400" stays a word).
            .filter(|r| r.word() == word && r.bit() != Some(0));
        unknown.unwrap_or_else(|| ThrottleReason::Other(word.to_string()))
    }
}

impl fmt::Display for ThrottleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.word())
    }
}

impl Serialize for ThrottleReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.word())
    }
}

impl<'de> Deserialize<'de> for ThrottleReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ThrottleReason::from_word(&String::deserialize(
            deserializer,
        )?))
    }
}

/// A string on the wire, inlined where it is used: the published schema
/// stays what it was when the reasons were `String`s, which already admits
/// `unknown_0x…` and a later release's words.
impl JsonSchema for ThrottleReason {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "ThrottleReason".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(bits: u64) -> Vec<String> {
        ThrottleReason::from_bits(bits)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn named_bits_keep_their_words_in_bit_order() {
        assert_eq!(
            words(0x1ff),
            [
                "gpu_idle",
                "applications_clocks_setting",
                "sw_power_cap",
                "hw_slowdown",
                "sync_boost",
                "sw_thermal_slowdown",
                "hw_thermal_slowdown",
                "hw_power_brake_slowdown",
                "display_clock_setting",
            ]
        );
        assert!(ThrottleReason::from_bits(0).is_empty());
        assert_eq!(
            ThrottleReason::from_bits(0x44),
            [
                ThrottleReason::SwPowerCap,
                ThrottleReason::HwThermalSlowdown
            ]
        );
    }

    #[test]
    fn no_bit_is_lost() {
        assert_eq!(
            ThrottleReason::from_bits(0x604),
            [
                ThrottleReason::SwPowerCap,
                ThrottleReason::Unknown(0x200),
                ThrottleReason::Unknown(0x400)
            ]
        );
        assert_eq!(words(0x400), ["unknown_0x400"]);
        assert_eq!(words(1 << 63), ["unknown_0x8000000000000000"]);
        for bits in [0, 1, 0x1ff, 0x604, u64::MAX, 0xdead_beef] {
            let back = ThrottleReason::from_bits(bits)
                .iter()
                .fold(0, |all, r| all | r.bit().unwrap());
            assert_eq!(back, bits, "{bits:#x}");
        }
    }

    #[test]
    fn every_word_reads_back_to_itself() {
        let all: Vec<ThrottleReason> = ThrottleReason::from_bits(u64::MAX);
        for r in &all {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(&serde_json::from_str::<ThrottleReason>(&json).unwrap(), r);
        }
        // A later release's word, and text that only looks like an unknown
        // bit, are kept as written.
        for word in [
            "board_limit",
            "unknown_0x0400",
            "unknown_0x",
            "unknown_0x0",
            "unknown_0xFF",
            "unknown_0x+4",
            "",
        ] {
            let r = ThrottleReason::from_word(word);
            assert_eq!(r, ThrottleReason::Other(word.to_string()));
            assert_eq!(r.to_string(), word);
        }
        assert_eq!(
            ThrottleReason::from_word("unknown_0x400"),
            ThrottleReason::Unknown(0x400)
        );
        assert_eq!(
            ThrottleReason::from_word("sw_power_cap"),
            ThrottleReason::SwPowerCap
        );
    }
}
