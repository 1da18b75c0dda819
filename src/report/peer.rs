//! The peer-to-peer check across the selected GPUs (`Report::peers`): for
//! every ordered pair, whether CUDA offers peer access, and what each of
//! the two writers (a copy, a kernel's stores) put into the peer's memory,
//! checked word for word.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The peer-to-peer check (docs/report.md, "Peers"): null where it did not
/// run; the `peer` checks of the GPUs say why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Peers {
    /// 32-bit words each writer put into each peer.
    pub words: u64,
    /// Every ordered pair of the GPUs that took part, by CUDA index.
    pub pairs: Vec<PeerPair>,
}

/// One ordered pair: `from` writes into `to`'s memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeerPair {
    /// The GPU that writes (the copy's source, the kernel's GPU).
    pub from: u32,
    /// The GPU whose memory receives the words.
    pub to: u32,
    /// What CUDA offered: cuDeviceCanAccessPeer, then cuCtxEnablePeerAccess.
    pub access: PeerAccess,
    /// A device-to-device copy over the peer path (cuMemcpyDtoD_v2 between
    /// the two GPUs' buffers). Null where access was not granted.
    pub copy: Option<PeerWrite>,
    /// `gpuprobe_peer_write` on `from` storing through the peer mapping.
    /// Null where access was not granted.
    pub kernel: Option<PeerWrite>,
}

/// Whether `from` could access `to`'s memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerAccess {
    /// Offered and enabled.
    Granted,
    /// cuDeviceCanAccessPeer answered 0: this pair has no peer path (GPUs
    /// under different CPU sockets or root complexes, boards without
    /// peer-to-peer). Nothing is wrong with that; data between them goes
    /// through host memory.
    NotOffered,
    /// Offered, but cuDeviceCanAccessPeer or cuCtxEnablePeerAccess failed
    /// (`error`).
    Failed,
    /// Not tried: one of the two GPUs could not take part (`error`).
    NotTried,
}

/// What one writer put into the peer's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeerWrite {
    /// Whether every word arrived exactly as written.
    pub exact: bool,
    /// Words that did not: lost (the old content stayed) or altered.
    pub mismatches: u64,
    /// The first few of them.
    pub first_mismatches: Vec<PeerMismatch>,
    /// GPU time of the write, ms (CUDA events on the writer); null where
    /// it did not complete.
    pub time_ms: Option<f64>,
    /// The driver's error, where the write or its check could not run (a
    /// store through a mapping the GPU does not have faults with an illegal
    /// address); the words are then not checked and `exact` is false.
    pub error: Option<String>,
}

/// One word that did not arrive as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerMismatch {
    /// Its index in the buffer.
    pub index: u64,
    pub expected: u32,
    pub actual: u32,
}
