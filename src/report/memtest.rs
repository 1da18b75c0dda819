//! The memory test's findings (`DeviceReport::memtest`): how much of the
//! GPU's memory was written and read back in which patterns, how fast, and
//! every word that did not read back as written.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Figure;

/// What the `memtest` check found on one GPU (docs/report.md, "memtest").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Memtest {
    /// Bytes of device memory tested: the region the patterns were written
    /// over, allocated in `chunks`.
    pub bytes_tested: u64,
    /// Device allocations the region took.
    pub chunks: u32,
    /// `bytes_tested` over the free memory the check found (cuMemGetInfo),
    /// 0 to 1.
    pub fraction_of_free: f64,
    /// Whether the region was capped because NVML listed another compute
    /// process on the GPU before gpuprobe's context existed (a job beside
    /// it, time-slicing, MPS): at most 1 GiB or 5% of the memory, whichever
    /// is smaller, so the test never starves that job.
    pub capped_for_other_process: bool,
    /// Whole passes over every pattern that finished.
    pub passes: u32,
    /// Each pattern that ran, in the order of a pass, with how often and
    /// the mismatches it found.
    pub patterns: Vec<MemtestPattern>,
    /// The seed of the first pass's random pattern (each pass adds 1).
    pub seed: u32,
    /// Wall time of the test, ms (allocation and the patterns).
    pub duration_ms: f64,
    /// Bytes the kernels wrote and read.
    pub bytes_moved: u64,
    /// GPU time of the kernels, ms (CUDA events around each sweep).
    pub gpu_time_ms: f64,
    /// `bytes_moved` per second of `gpu_time_ms`, over 10⁹.
    pub gbps: f64,
    /// The theoretical memory bandwidth (`peak.memory_bandwidth_gbps`).
    /// Null until derived.
    pub expected_gbps: Option<Figure>,
    /// `gbps` over `expected_gbps`, 0 to 1. Null until derived.
    pub efficiency: Option<Figure>,
    /// Words that did not read back as written, all of them counted (one
    /// faulty cell counts once in every pattern that catches it).
    pub mismatches: u64,
    /// The first mismatches found (at most 25), in the order found.
    pub first_mismatches: Vec<MemtestMismatch>,
}

/// One pattern of the memory test and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemtestPattern {
    pub pattern: MemtestPatternKind,
    /// Times the pattern ran over the whole region.
    pub runs: u32,
    /// Mismatches it found, over all its runs.
    pub mismatches: u64,
}

/// The memory test's patterns (kernels/memtest.cu; memtest86's test
/// descriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemtestPatternKind {
    /// One set bit in every word, walked through the 32 positions: a bit
    /// stuck at 0, or a bit that sets its neighbour.
    WalkingOnes,
    /// One clear bit, walked likewise: a bit stuck at 1.
    WalkingZeros,
    /// Each word holds its own index, then its inverse: address lines
    /// stuck or shorted, which make two words one.
    OwnAddress,
    /// All zeros, then each word read and inverted, then read and inverted
    /// back (moving inversions): stuck bits and cells that lose a value.
    MovingInversionsOnesZeros,
    /// Seeded random words, moved through their inverse likewise: coupling
    /// between cells that solid patterns write alike.
    MovingInversionsRandom,
}

impl MemtestPatternKind {
    /// The pattern as the report names it ("walking_ones").
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            MemtestPatternKind::WalkingOnes => "walking_ones",
            MemtestPatternKind::WalkingZeros => "walking_zeros",
            MemtestPatternKind::OwnAddress => "own_address",
            MemtestPatternKind::MovingInversionsOnesZeros => "moving_inversions_ones_zeros",
            MemtestPatternKind::MovingInversionsRandom => "moving_inversions_random",
        }
    }
}

/// A word that did not read back as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemtestMismatch {
    /// Byte offset of the word in the tested region.
    pub offset: u64,
    /// The 32-bit word written.
    pub expected: u32,
    /// The 32-bit word read.
    pub actual: u32,
    /// The bits that differ, 0 the least significant.
    pub bits: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_names_are_the_wire_form() {
        use MemtestPatternKind as K;
        for k in [
            K::WalkingOnes,
            K::WalkingZeros,
            K::OwnAddress,
            K::MovingInversionsOnesZeros,
            K::MovingInversionsRandom,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
