//! The peer-to-peer check: after every GPU's own stages, each selected GPU
//! that passed them writes into every other one's memory by both writers
//! CUDA offers (a device-to-device copy over the peer path, and a kernel
//! storing through the peer mapping), and each GPU checks what arrived in
//! its memory word for word. cuDeviceCanAccessPeer is a capability, not a
//! data path: the IOMMU in translated mode or PCIe ACS can drop or corrupt
//! peer writes that the driver accepted (../shared/FACTS.md section 13), so
//! only the words read back say whether the path works.
//!
//! One thread per GPU, each with its GPU's context current (cuda::Context
//! is bound to its thread), in three phases: every GPU allocates a landing
//! buffer per peer and writer and its source buffers; then each writes into
//! every peer it may access; then each checks what its peers wrote into
//! it. Between the phases the GPUs wait for each other (`Phases`), never
//! past the deadline: a GPU stuck in a driver call holds back no other, and
//! its pairs are reported as not tried.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use super::progress::{Done, Failed, Progress, Scope};
use crate::cuda::kernels::{self, peer_word};
use crate::cuda::peer::{can_access_peer, PeerAccess as Access, PeerBuffer};
use crate::cuda::{self, Buffer, Context, CuDevice, Event, Module};
use crate::report::{NotRun, PeerAccess, PeerMismatch, PeerPair, PeerWrite, Peers};
use crate::stage::Stage;

/// What the plan asks of the peer check.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// 32-bit words each writer puts into each peer.
    pub words: usize,
}

/// Words per writer and pair in the probe: enough to cross several pages
/// of the peer mapping (an IOMMU maps 4 KiB pages, so a fault that hits
/// some pages only is met), little enough that 56 pairs of an 8-GPU node
/// take milliseconds on a GPU.
pub const PROBE_WORDS: usize = 64 * 1024;

/// Mismatches listed per write; all are counted.
const LISTED: usize = 8;

/// The two writers, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Writer {
    Copy,
    Kernel,
}

impl Writer {
    const BOTH: [Writer; 2] = [Writer::Copy, Writer::Kernel];

    fn name(self) -> &'static str {
        match self {
            Writer::Copy => "copy",
            Writer::Kernel => "kernel",
        }
    }
}

/// The pattern seed of one writer's words from `from` into `to`: distinct
/// for every pair and writer, so a word that lands in another pair's
/// buffer is wrong there.
fn seed(run: u64, from: usize, to: usize, writer: Writer) -> u32 {
    let salt = (run as u32) ^ ((run >> 32) as u32) ^ (writer as u32).wrapping_mul(0x9E37_79B9);
    peer_word(salt, ((from as u64) << 16) | to as u64)
}

/// The GPUs' meeting points between phases; one that cannot take part
/// leaves, and no GPU waits past the deadline.
struct Phases {
    /// (arrived, members, generation).
    state: Mutex<(usize, usize, u64)>,
    next: Condvar,
    deadline: Option<Instant>,
}

impl Phases {
    fn new(members: usize, deadline: Option<Instant>) -> Phases {
        Phases {
            state: Mutex::new((0, members, 0)),
            next: Condvar::new(),
            deadline,
        }
    }

    /// Waits until every member has arrived (or left), or the deadline.
    fn wait(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = s.2;
        s.0 += 1;
        if s.0 >= s.1 {
            *s = (0, s.1, generation + 1);
            self.next.notify_all();
            return;
        }
        while s.2 == generation {
            let Some(left) = self
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
            else {
                s = self.next.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            if left.is_zero() {
                return;
            }
            s = self
                .next
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// This GPU takes no further part: the others no longer wait for it.
    fn leave(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.1 -= 1;
        if s.0 > 0 && s.0 >= s.1 {
            *s = (0, s.1, s.2 + 1);
            self.next.notify_all();
        }
    }
}

/// What the GPUs share: where each lends its landing buffers, and each
/// pair's outcome as its writer and then its holder find it.
#[derive(Default)]
struct Board {
    /// (holder, writer GPU, writer) -> the landing buffer.
    landing: BTreeMap<(usize, usize, Writer), PeerBuffer>,
    /// GPUs that could not take part, with why.
    absent: BTreeMap<usize, String>,
    /// (from, to) -> the pair as far as it is known.
    pairs: BTreeMap<(usize, usize), PeerPair>,
}

/// One GPU's part: its slot (CUDA index) and handle.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub slot: usize,
    pub device: CuDevice,
}

/// Runs the check across `members` (at least two), recording each GPU's
/// `peer` check and the report's `peers`.
pub fn run(
    progress: &Progress,
    driver: &cuda::Driver,
    members: &[Member],
    plan: Plan,
    run_seed: u64,
    deadline: Option<Instant>,
) {
    // What CUDA offers, asked before any context is made: a node without
    // peer access pays for nothing more.
    let mut offered = BTreeSet::new();
    let mut board = Board::default();
    for from in members {
        for to in members.iter().filter(|m| m.slot != from.slot) {
            match can_access_peer(driver, from.device, to.device) {
                Ok(true) => {
                    offered.insert((from.slot, to.slot));
                }
                Ok(false) => {
                    board
                        .pairs
                        .insert((from.slot, to.slot), not_offered(from.slot, to.slot));
                }
                Err(e) => {
                    let pair = not_offered(from.slot, to.slot);
                    board
                        .pairs
                        .insert((from.slot, to.slot), failed_access(pair, &e));
                }
            }
        }
    }
    let taking_part: Vec<Member> = members
        .iter()
        .copied()
        .filter(|m| offered.iter().any(|(f, t)| *f == m.slot || *t == m.slot))
        .collect();
    for m in members
        .iter()
        .filter(|m| !taking_part.iter().any(|t| t.slot == m.slot))
    {
        progress.skip(
            Scope::Device(m.slot),
            Stage::Peer,
            NotRun::Unsupported,
            "CUDA offers no peer access between this GPU and the others \
             (cuDeviceCanAccessPeer): data between them goes through host memory",
        );
    }
    let board = Mutex::new(board);
    let phases = Phases::new(taking_part.len(), deadline);
    let shared = Shared {
        driver,
        members: &taking_part,
        offered: &offered,
        plan,
        run_seed,
        board: &board,
        phases: &phases,
    };
    std::thread::scope(|scope| {
        for &me in &taking_part {
            let shared = &shared;
            let spawned = std::thread::Builder::new()
                .name(format!("peer{}", me.slot))
                .spawn_scoped(scope, move || {
                    progress.stage(Scope::Device(me.slot), Stage::Peer, || shared.side(me));
                });
            if let Err(e) = spawned {
                shared.absent(me.slot, format!("could not start a thread: {e}"));
                phases.leave();
                // Failed, not skipped: a check nothing ran for is no pass.
                progress.stage(Scope::Device(me.slot), Stage::Peer, || {
                    Err::<Done<()>, _>(
                        Failed::new(format!("could not start a thread: {e}"))
                            .not_run(NotRun::Internal),
                    )
                });
            }
        }
    });
    let board = board.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut pairs = Vec::new();
    for from in members {
        for to in members.iter().filter(|m| m.slot != from.slot) {
            let pair = board
                .pairs
                .get(&(from.slot, to.slot))
                .cloned()
                .unwrap_or_else(|| {
                    let why = board
                        .absent
                        .get(&from.slot)
                        .or_else(|| board.absent.get(&to.slot));
                    not_tried(
                        from.slot,
                        to.slot,
                        why.map_or("it did not take part", |w| w),
                    )
                });
            pairs.push(pair);
        }
    }
    progress.update(|r| {
        r.peers = Some(Peers {
            words: plan.words as u64,
            pairs,
        });
    });
}

/// A pair CUDA offers no peer access for.
fn not_offered(from: usize, to: usize) -> PeerPair {
    PeerPair {
        from: from as u32,
        to: to as u32,
        access: PeerAccess::NotOffered,
        copy: None,
        kernel: None,
    }
}

/// A pair whose writes were never made.
fn not_tried(from: usize, to: usize, why: &str) -> PeerPair {
    let write = PeerWrite {
        exact: false,
        mismatches: 0,
        first_mismatches: Vec::new(),
        time_ms: None,
        error: Some(why.to_string()),
    };
    PeerPair {
        from: from as u32,
        to: to as u32,
        access: PeerAccess::NotTried,
        copy: Some(write.clone()),
        kernel: Some(write),
    }
}

struct Shared<'a> {
    driver: &'a cuda::Driver,
    /// The GPUs with a peer path to or from another.
    members: &'a [Member],
    /// The ordered pairs (from, to) CUDA offers peer access for.
    offered: &'a BTreeSet<(usize, usize)>,
    plan: Plan,
    run_seed: u64,
    board: &'a Mutex<Board>,
    phases: &'a Phases,
}

/// One GPU's buffers: landing buffers for its peers' writes, and the
/// sources of its own copies.
struct Buffers<'c> {
    landing: BTreeMap<(usize, Writer), Buffer<'c>>,
    sources: BTreeMap<usize, Buffer<'c>>,
}

impl Shared<'_> {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn absent(&self, slot: usize, why: String) {
        self.board().absent.insert(slot, why);
    }

    fn peers(&self, me: Member) -> impl Iterator<Item = Member> + '_ {
        self.members
            .iter()
            .copied()
            .filter(move |m| m.slot != me.slot)
    }

    /// One GPU's three phases; its `peer` check.
    fn side(&self, me: Member) -> Result<Done<()>, Failed> {
        let ctx = match Context::bind(self.driver, me.device) {
            Ok(ctx) => ctx,
            Err(e) => return Err(self.cannot_take_part(me, "its context", e)),
        };
        let kernel = match Module::load(&ctx, kernels::PEER_PTX)
            .and_then(|m| m.kernel(kernels::PEER_WRITE))
        {
            Ok(k) => k,
            Err(e) => return Err(self.cannot_take_part(me, "the peer kernel", e)),
        };
        let buffers = match self.allocate(&ctx, me) {
            Ok(b) => b,
            Err(e) => return Err(self.cannot_take_part(me, "its buffers", e)),
        };
        {
            let mut board = self.board();
            for ((from, writer), buffer) in &buffers.landing {
                board.landing.insert(
                    (me.slot, *from, *writer),
                    PeerBuffer {
                        ptr: buffer.ptr,
                        words: self.plan.words,
                    },
                );
            }
        }
        self.phases.wait();
        let wrote = self.write_all(&ctx, &kernel, &buffers, me);
        self.phases.wait();
        let received = self.check_all(&buffers, me);
        judge_side(&wrote, &received)
    }

    fn cannot_take_part(&self, me: Member, what: &str, e: impl std::fmt::Display) -> Failed {
        let why = format!("GPU {} could not prepare {what}: {e}", me.slot);
        self.absent(me.slot, why.clone());
        self.phases.leave();
        Failed::new(why)
    }

    /// Landing buffers for each peer's two writers, cleared, and a source
    /// of this GPU's copy into each peer, holding the pattern.
    fn allocate<'c>(
        &self,
        ctx: &'c Context<'c>,
        me: Member,
    ) -> Result<Buffers<'c>, cuda::CopyError> {
        let words = self.plan.words;
        let clear = vec![0f32; words];
        let mut landing = BTreeMap::new();
        let mut sources = BTreeMap::new();
        for peer in self.peers(me) {
            if self.offered.contains(&(peer.slot, me.slot)) {
                for writer in Writer::BOTH {
                    let buffer = Buffer::alloc(ctx, words)?;
                    buffer.upload(&clear)?;
                    landing.insert((peer.slot, writer), buffer);
                }
            }
            if !self.offered.contains(&(me.slot, peer.slot)) {
                continue;
            }
            let seed = seed(self.run_seed, me.slot, peer.slot, Writer::Copy);
            let pattern: Vec<f32> = (0..words as u64)
                .map(|at| f32::from_bits(peer_word(seed, at)))
                .collect();
            let source = Buffer::alloc(ctx, words)?;
            source.upload(&pattern)?;
            sources.insert(peer.slot, source);
        }
        Ok(Buffers { landing, sources })
    }

    /// This GPU's writes into every peer: the pair's access and each
    /// writer's error and time, for the holder to complete.
    fn write_all(
        &self,
        ctx: &Context<'_>,
        kernel: &cuda::Kernel<'_>,
        buffers: &Buffers<'_>,
        me: Member,
    ) -> Vec<PeerPair> {
        let mut out = Vec::new();
        for peer in self.peers(me) {
            if !self.offered.contains(&(me.slot, peer.slot)) {
                continue;
            }
            let pair = self.write_one(ctx, kernel, buffers, me, peer);
            self.board()
                .pairs
                .insert((me.slot, peer.slot), pair.clone());
            out.push(pair);
        }
        out
    }

    fn write_one(
        &self,
        ctx: &Context<'_>,
        kernel: &cuda::Kernel<'_>,
        buffers: &Buffers<'_>,
        me: Member,
        peer: Member,
    ) -> PeerPair {
        let landing = {
            let board = self.board();
            if let Some(why) = board.absent.get(&peer.slot) {
                return not_tried(me.slot, peer.slot, why);
            }
            Writer::BOTH.map(|w| board.landing.get(&(peer.slot, me.slot, w)).copied())
        };
        let [Some(copy_into), Some(store_into)] = landing else {
            return not_tried(
                me.slot,
                peer.slot,
                "the peer's buffers were not ready in time",
            );
        };
        let mut pair = PeerPair {
            from: me.slot as u32,
            to: peer.slot as u32,
            access: PeerAccess::Granted,
            copy: None,
            kernel: None,
        };
        let access = match Access::enable(ctx, peer.device) {
            Ok(a) => a,
            Err(e) => return failed_access(pair, &e),
        };
        let Some(source) = buffers.sources.get(&peer.slot) else {
            return failed_access(pair, &"no source buffer");
        };
        let (grid, block) = kernels::peer_launch(self.plan.words as u64);
        let kernel_seed = seed(self.run_seed, me.slot, peer.slot, Writer::Kernel);
        pair.copy = Some(timed(ctx, || {
            // SAFETY: `copy_into` is the peer's landing buffer of
            // `plan.words` words, which the peer keeps until every GPU has
            // passed the second phase, after this context is synchronised.
            unsafe { access.copy_into(source, copy_into) }.map_err(|e| e.to_string())
        }));
        pair.kernel = Some(timed(ctx, || {
            // SAFETY: `kernel` is gpuprobe_peer_write loaded in `ctx`;
            // `store_into` as above.
            unsafe { access.store_into(kernel, (grid, block), store_into, kernel_seed) }
                .map_err(|e| e.to_string())
        }));
        pair
    }

    /// Checks what every peer wrote into this GPU's landing buffers and
    /// completes those pairs; returns them.
    fn check_all(&self, buffers: &Buffers<'_>, me: Member) -> Vec<PeerPair> {
        let mut out = Vec::new();
        for peer in self.peers(me) {
            let Some(mut pair) = self.board().pairs.get(&(peer.slot, me.slot)).cloned() else {
                continue;
            };
            for (writer, write) in [
                (Writer::Copy, &mut pair.copy),
                (Writer::Kernel, &mut pair.kernel),
            ] {
                let Some(write) = write.as_mut().filter(|w| w.error.is_none()) else {
                    continue;
                };
                let Some(buffer) = buffers.landing.get(&(peer.slot, writer)) else {
                    continue;
                };
                let seed = seed(self.run_seed, peer.slot, me.slot, writer);
                check(buffer, seed, self.plan.words, write);
            }
            self.board()
                .pairs
                .insert((peer.slot, me.slot), pair.clone());
            out.push(pair);
        }
        out
    }
}

/// A pair whose access CUDA refused or could not say.
fn failed_access(mut pair: PeerPair, e: &dyn std::fmt::Display) -> PeerPair {
    pair.access = PeerAccess::Failed;
    let write = PeerWrite {
        exact: false,
        mismatches: 0,
        first_mismatches: Vec::new(),
        time_ms: None,
        error: Some(e.to_string()),
    };
    pair.copy = Some(write.clone());
    pair.kernel = Some(write);
    pair
}

/// One write, timed by events around it and waited for: the GPU time, or
/// the error of the write or of the wait (a store the GPU could not make
/// surfaces there).
fn timed(ctx: &Context<'_>, write: impl FnOnce() -> Result<(), String>) -> PeerWrite {
    let outcome = (|| {
        let start = Event::new(ctx).map_err(|e| e.to_string())?;
        let end = Event::new(ctx).map_err(|e| e.to_string())?;
        start.record().map_err(|e| e.to_string())?;
        write()?;
        end.record().map_err(|e| e.to_string())?;
        ctx.synchronize().map_err(|e| e.to_string())?;
        start.elapsed_ms(&end).map_err(|e| e.to_string())
    })();
    let (time_ms, error) = match outcome {
        Ok(ms) => (Some(ms), None),
        Err(e) => (None, Some(e)),
    };
    PeerWrite {
        exact: false,
        mismatches: 0,
        first_mismatches: Vec::new(),
        time_ms,
        error,
    }
}

/// Reads `buffer` back and compares every word with the pattern of `seed`.
fn check(buffer: &Buffer<'_>, seed: u32, words: usize, write: &mut PeerWrite) {
    let mut got = vec![0f32; words];
    if let Err(e) = buffer.download(&mut got) {
        write.error = Some(e.to_string());
        return;
    }
    for (at, word) in got.iter().enumerate() {
        let expected = peer_word(seed, at as u64);
        let actual = word.to_bits();
        if actual != expected {
            write.mismatches += 1;
            if write.first_mismatches.len() < LISTED {
                write.first_mismatches.push(PeerMismatch {
                    index: at as u64,
                    expected,
                    actual,
                });
            }
        }
    }
    write.exact = write.mismatches == 0;
}

/// This GPU's `peer` check from its writes and what it received.
fn judge_side(wrote: &[PeerPair], received: &[PeerPair]) -> Result<Done<()>, Failed> {
    let mut problems = Vec::new();
    for pair in wrote {
        for (writer, write) in [(Writer::Copy, &pair.copy), (Writer::Kernel, &pair.kernel)] {
            if let Some(e) = write.as_ref().and_then(|w| w.error.as_ref()) {
                problems.push(format!("its {} into GPU {}: {e}", writer.name(), pair.to));
            }
        }
    }
    for pair in received {
        for (writer, write) in [(Writer::Copy, &pair.copy), (Writer::Kernel, &pair.kernel)] {
            if let Some(w) = write.as_ref().filter(|w| w.error.is_none() && !w.exact) {
                problems.push(format!(
                    "GPU {}'s {} into it: {} words wrong",
                    pair.from,
                    writer.name(),
                    w.mismatches
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(Failed::new(problems.join("; ")));
    }
    let granted = |pairs: &[PeerPair]| {
        pairs
            .iter()
            .filter(|p| p.access == PeerAccess::Granted)
            .count()
    };
    let (out, inn) = (granted(wrote), granted(received));
    Ok(Done::pass(
        (),
        format!(
            "wrote into {out} peer(s) by copy and by kernel, {inn} wrote into it: every word \
             exact (pairs CUDA offers no peer access for go through host memory)"
        ),
    ))
}
