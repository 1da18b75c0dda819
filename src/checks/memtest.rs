//! The memory test: patterns written over as much of a GPU's free memory as
//! is safe and read back by the GPU's own kernels (kernels/memtest.cu), so
//! a stuck bit, a coupling between cells or an addressing fault of the HBM
//! shows as a word that does not read back. HBM faults are the second cause
//! of unplanned stops in Meta's Llama 3 training (17.2%, ../shared/FACTS.md
//! section 13); DCGM's level-4 diagnostic runs a memtest for 600 s.
//!
//! The region: the free memory less what the driver needs (at least 512 MiB
//! or 5% of the memory stays free), at most `--memtest`'s size; when NVML
//! listed another compute process on the GPU before gpuprobe's context
//! existed, at most 1 GiB or 5% of the memory, whichever is smaller, so a
//! job beside the test is never starved. Allocated in chunks of at most
//! `CHUNK`, each word's pattern a function of its index in the region, so a
//! mismatch names its place. Passes of every pattern run until the duration
//! has passed (at least one pattern, and none past the deadline).
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::gpu::Job;
use super::progress::{Done, Failed};
use crate::cuda::error::CUDA_ERROR_OUT_OF_MEMORY;
use crate::cuda::kernels::{memtest_launch, MemtestKernel, PatternFn, MEMTEST_PTX};
use crate::cuda::{
    launch_memtest, Buffer, Context, CopyError, Event, Kernel, MemtestFindings, MemtestSweep,
    Module,
};
use crate::report::{Memtest, MemtestMismatch, MemtestPattern, MemtestPatternKind};
use crate::units::{bytes, parse_size};

/// How much of the free memory a memory test takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// All that is safe to take.
    All,
    /// At most this many bytes.
    Bytes(u64),
    /// At most this fraction (0 to 1) of the free memory.
    Fraction(f64),
}

impl Size {
    /// `all`, a fraction of the free memory (`0.5`, `50%`) or a size
    /// (`4GiB`, `500MB`, as `units::parse_size`).
    pub fn parse(text: &str) -> Result<Size, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(Size::All);
        }
        let fraction = match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().ok().map(|p| p / 100.0),
            None if text.contains('.') && text.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                text.parse::<f64>().ok().filter(|f| *f <= 1.0)
            }
            None => None,
        };
        match fraction {
            Some(f) if f > 0.0 && f <= 1.0 => Ok(Size::Fraction(f)),
            Some(_) => Err(format!("{text:?}: a fraction of free memory is in (0, 1]")),
            None => parse_size(text).and_then(|b| {
                if b == 0 {
                    Err("a memory test of 0 bytes tests nothing".into())
                } else {
                    Ok(Size::Bytes(b))
                }
            }),
        }
    }
}

/// A memory test a plan runs: how long and over how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Passes of every pattern until this has passed (at least one
    /// pattern); zero: one pass.
    pub duration: Duration,
    pub size: Size,
    /// The seed of the first pass's random pattern.
    pub seed: u32,
}

/// Largest allocation of the region: a GPU's memory in pieces the driver
/// can always place, and a pattern's launches of a few milliseconds each.
const CHUNK: u64 = 1 << 30;

/// Memory left to the driver: at least this, or `RESERVE_FRACTION`.
const RESERVE_BYTES: u64 = 512 << 20;
const RESERVE_FRACTION: f64 = 0.05;

/// Beside another compute process: at most this, or `SHARED_FRACTION`,
/// whichever is smaller.
const SHARED_BYTES: u64 = 1 << 30;
const SHARED_FRACTION: f64 = 0.05;

/// The smallest region worth testing.
const MIN_BYTES: u64 = 64 << 10;

/// Mismatches recorded with their place (all are counted).
const RECORDS: u32 = 25;

/// Time kept back from the deadline for the report after the last pattern.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Bytes to test: the plan's size within the safe share of `free`.
fn region_bytes(size: Size, free: u64, total: u64, shared: bool) -> u64 {
    let reserve = RESERVE_BYTES.max((RESERVE_FRACTION * total as f64) as u64);
    let mut safe = free.saturating_sub(reserve);
    if shared {
        safe = safe.min(SHARED_BYTES.min((SHARED_FRACTION * total as f64) as u64));
    }
    let asked = match size {
        Size::All => safe,
        Size::Bytes(b) => b,
        Size::Fraction(f) => (f * free as f64) as u64,
    };
    asked.min(safe) / 16 * 16
}

/// One sweep of the region: a kernel with a pattern.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    kernel: MemtestKernel,
    kind: PatternFn,
    param: u32,
}

const fn sweep(kernel: MemtestKernel, kind: PatternFn, param: u32) -> Sweep {
    Sweep {
        kernel,
        kind,
        param,
    }
}

/// A pattern's sweeps, in order.
fn sweeps(pattern: MemtestPatternKind) -> Vec<Sweep> {
    use MemtestKernel::{Verify, VerifyInvert, Write};
    let walk = |bits: fn(u32) -> u32| {
        (0..32)
            .flat_map(|k| {
                [
                    sweep(Write, PatternFn::Solid, bits(k)),
                    sweep(Verify, PatternFn::Solid, bits(k)),
                ]
            })
            .collect()
    };
    // memtest86's moving inversions: write p; read p and write !p; read !p
    // and write p; read p.
    let inversions = |kind| {
        vec![
            sweep(Write, kind, 0),
            sweep(VerifyInvert, kind, 0),
            sweep(VerifyInvert, kind, !0),
            sweep(Verify, kind, 0),
        ]
    };
    match pattern {
        MemtestPatternKind::WalkingOnes => walk(|k| 1 << k),
        MemtestPatternKind::WalkingZeros => walk(|k| !(1 << k)),
        MemtestPatternKind::OwnAddress => vec![
            sweep(Write, PatternFn::OwnAddress, 0),
            sweep(Verify, PatternFn::OwnAddress, 0),
            sweep(Write, PatternFn::OwnAddress, !0),
            sweep(Verify, PatternFn::OwnAddress, !0),
        ],
        MemtestPatternKind::MovingInversionsOnesZeros => inversions(PatternFn::Solid),
        MemtestPatternKind::MovingInversionsRandom => inversions(PatternFn::Random),
    }
}

/// The patterns of one pass.
const PATTERNS: [MemtestPatternKind; 5] = [
    MemtestPatternKind::WalkingOnes,
    MemtestPatternKind::WalkingZeros,
    MemtestPatternKind::OwnAddress,
    MemtestPatternKind::MovingInversionsOnesZeros,
    MemtestPatternKind::MovingInversionsRandom,
];

/// The region's chunks, the kernels and the findings' buffers.
struct Bench<'c> {
    ctx: &'c Context<'c>,
    chunks: Vec<Buffer<'c>>,
    kernels: [Kernel<'c>; 3],
    count: Buffer<'c>,
    records: Buffer<'c>,
    sms: u32,
    events: [Event<'c>; 2],
}

/// What the patterns have found so far.
#[derive(Default)]
struct Tally {
    patterns: Vec<MemtestPattern>,
    mismatches: u64,
    bytes_moved: u64,
    gpu_ms: f64,
    passes: u32,
    /// The deadline ended the test before its first pass was whole or
    /// its duration had passed.
    cut_short: bool,
}

impl Bench<'_> {
    /// Runs one pattern over every chunk and adds what it found to
    /// `tally`; false when `near` (the deadline) cut it short, checked
    /// after each sweep, which is waited for: queued launches would return
    /// at once and run on past the deadline. A sweep over a whole GPU is
    /// tens of milliseconds, so the wait costs it nothing.
    fn run(
        &self,
        pattern: MemtestPatternKind,
        seed: u32,
        tally: &mut Tally,
        near: &dyn Fn() -> bool,
    ) -> Result<bool, Failed> {
        let [start, stop] = &self.events;
        let findings = MemtestFindings {
            count: self.count.ptr_at(0).ok_or_else(|| missing("counter"))?,
            records: self.records.ptr_at(0).ok_or_else(|| missing("records"))?,
            max_records: RECORDS,
        };
        let mut whole = true;
        for s in sweeps(pattern) {
            let kernel = &self.kernels[s.kernel as usize];
            // Each sweep timed on its own: the host's wait between two
            // sweeps is no pattern traffic.
            start.record()?;
            let mut base = 0u64;
            for chunk in &self.chunks {
                let n = chunk.len() as u64;
                let sweep = MemtestSweep {
                    n,
                    buf: chunk.ptr_at(0).ok_or_else(|| missing("chunk"))?,
                    base,
                    kind: s.kind,
                    param: s.param,
                    seed,
                };
                // SAFETY: `kernel` is `s.kernel`'s entry, loaded in this
                // context from MEMTEST_PTX (`prepare`, in `ALL` order);
                // `chunk` holds n words, `count` two (8 bytes) and
                // `records` 4 * RECORDS, all allocations of this context.
                unsafe {
                    launch_memtest(
                        self.ctx,
                        kernel,
                        s.kernel,
                        memtest_launch(n, self.sms),
                        sweep,
                        findings,
                    )?;
                }
                tally.bytes_moved += s.kernel.bytes_moved(n);
                base += n;
            }
            stop.record()?;
            stop.synchronize()?;
            tally.gpu_ms += start.elapsed_ms(stop)?;
            if near() {
                whole = false;
                break;
            }
        }
        let total = self.count()?;
        let found = total.saturating_sub(tally.mismatches);
        tally.mismatches = total;
        let runs = u32::from(whole);
        match tally.patterns.iter_mut().find(|p| p.pattern == pattern) {
            Some(p) => {
                p.runs += runs;
                p.mismatches += found;
            }
            None => tally.patterns.push(MemtestPattern {
                pattern,
                runs,
                mismatches: found,
            }),
        }
        Ok(whole)
    }

    /// The mismatch counter.
    fn count(&self) -> Result<u64, CopyError> {
        let mut words = [0f32; 2];
        self.count.download(&mut words)?;
        Ok(u64::from(words[0].to_bits()) | (u64::from(words[1].to_bits()) << 32))
    }

    /// The recorded mismatches, at most `found` of them.
    fn records(&self, found: u64) -> Result<Vec<MemtestMismatch>, CopyError> {
        let mut words = vec![0f32; 4 * RECORDS as usize];
        self.records.download(&mut words)?;
        let kept = found.min(u64::from(RECORDS)) as usize;
        Ok(words
            .chunks_exact(4)
            .take(kept)
            .map(|r| {
                let [lo, hi, expected, actual] = [0, 1, 2, 3].map(|i| r[i].to_bits());
                let xor = expected ^ actual;
                MemtestMismatch {
                    offset: (u64::from(lo) | (u64::from(hi) << 32)) * 4,
                    expected,
                    actual,
                    bits: (0..32).filter(|b| xor & (1 << b) != 0).collect(),
                }
            })
            .collect())
    }
}

fn missing(what: &str) -> Failed {
    super::gpu::missing(what)
}

/// The chunks of `want` bytes, fewer when the driver runs out of memory
/// first or the deadline comes near; a note when they fell short.
fn allocate<'c>(
    ctx: &'c Context<'c>,
    want: u64,
    deadline: Option<Instant>,
) -> Result<(Vec<Buffer<'c>>, Option<String>), Failed> {
    let mut chunks = Vec::new();
    let mut got = 0u64;
    while got < want {
        if deadline.is_some_and(|d| Instant::now() + DEADLINE_MARGIN >= d) {
            return Ok((
                chunks,
                Some("the deadline came near while allocating".into()),
            ));
        }
        let size = CHUNK.min(want - got);
        match Buffer::alloc(ctx, (size / 4) as usize) {
            Ok(b) => chunks.push(b),
            Err(CopyError::Cuda(e)) if e.code == CUDA_ERROR_OUT_OF_MEMORY => {
                return Ok((
                    chunks,
                    Some(format!("the driver had no more after {}", bytes(got))),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        got += size;
    }
    Ok((chunks, None))
}

/// The `memtest` stage. `others`: the compute processes NVML listed on
/// the GPU before gpuprobe's context existed (`None`: unknown).
pub fn stage(
    job: &Job<'_>,
    plan: &Plan,
    ctx: &Context<'_>,
    others: Option<u32>,
) -> Result<Done<()>, Failed> {
    let mut running = match start(job, plan, ctx, others)? {
        Start::Skipped(done) => return Ok(done),
        Start::Running(r) => r,
    };
    let deadline = job.deadline;
    let near = || deadline.is_some_and(|d| Instant::now() + DEADLINE_MARGIN >= d);
    while running.step(&near)? {
        if running.next == 0 && running.started.elapsed() >= plan.duration {
            break;
        }
    }
    running.finish(job)
}

/// A memory test begun: its region allocated, or the reason it did not
/// run.
pub enum Start<'c> {
    Skipped(Done<()>),
    Running(Box<Running<'c>>),
}

/// Allocates the region and loads the kernels: a test ready to run its
/// patterns one `Running::step` at a time (the `memtest` stage in a row,
/// `burn` between its intervals).
pub fn start<'c>(
    job: &Job<'_>,
    plan: &Plan,
    ctx: &'c Context<'c>,
    others: Option<u32>,
) -> Result<Start<'c>, Failed> {
    let started = Instant::now();
    let (free, total) = ctx.memory_info()?;
    let shared = others.is_some_and(|n| n > 0);
    let want = region_bytes(plan.size, free, total, shared);
    if want < MIN_BYTES {
        return Ok(Start::Skipped(Done::skip(
            (),
            format!(
                "not run: {} free of {}, and at least {} (or 5%) stays free for the driver",
                bytes(free),
                bytes(total),
                bytes(RESERVE_BYTES)
            ),
            None,
        )));
    }
    let (chunks, short) = allocate(ctx, want, job.deadline)?;
    if chunks.is_empty() {
        // Nothing tested is no pass (DCGM's memtest passing what it could
        // not allocate, NVIDIA/DCGM#284, ../shared/FACTS.md section 13).
        return Ok(Start::Skipped(Done::warn(
            (),
            format!(
                "not run: none of the {} asked for could be allocated ({})",
                bytes(want),
                short.as_deref().unwrap_or("no reason given")
            ),
        )));
    }
    let bench = prepare(job, ctx, chunks)?;
    Ok(Start::Running(Box::new(Running {
        bench,
        seed: plan.seed,
        tally: Tally::default(),
        started,
        free,
        shared,
        short,
        next: 0,
    })))
}

/// A memory test under way.
pub struct Running<'c> {
    bench: Bench<'c>,
    seed: u32,
    tally: Tally,
    started: Instant,
    free: u64,
    shared: bool,
    /// Why the region is smaller than asked, if it is.
    short: Option<String>,
    /// The pattern the next step runs (index into `PATTERNS`).
    next: usize,
}

impl Running<'_> {
    /// Runs the next pattern; false when `near` (the deadline) stopped it
    /// before or during that pattern: the test is over.
    pub fn step(&mut self, near: &dyn Fn() -> bool) -> Result<bool, Failed> {
        let pattern = PATTERNS[self.next];
        let seed = self.seed.wrapping_add(self.tally.passes);
        if near() || !self.bench.run(pattern, seed, &mut self.tally, near)? {
            self.tally.cut_short = true;
            return Ok(false);
        }
        self.next = (self.next + 1) % PATTERNS.len();
        if self.next == 0 {
            self.tally.passes += 1;
        }
        Ok(true)
    }

    /// The report (`devices[].memtest`) and the check: failed on any
    /// mismatch, a warning when not one whole pass ran.
    pub fn finish(self, job: &Job<'_>) -> Result<Done<()>, Failed> {
        let Running {
            bench,
            seed,
            tally,
            started,
            free,
            shared,
            short,
            ..
        } = self;
        let found = bench.count()?;
        let tested: u64 = bench.chunks.iter().map(|c| c.len() as u64 * 4).sum();
        let report = Memtest {
            bytes_tested: tested,
            chunks: bench.chunks.len() as u32,
            fraction_of_free: if free > 0 {
                tested as f64 / free as f64
            } else {
                0.0
            },
            capped_for_other_process: shared,
            passes: tally.passes,
            patterns: tally.patterns.clone(),
            seed,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            bytes_moved: tally.bytes_moved,
            gpu_time_ms: tally.gpu_ms,
            gbps: if tally.gpu_ms > 0.0 {
                tally.bytes_moved as f64 / (tally.gpu_ms * 1e6)
            } else {
                0.0
            },
            expected_gbps: None,
            efficiency: None,
            mismatches: found,
            first_mismatches: bench.records(found)?,
        };
        let mut detail = detail(&report, short.as_deref());
        let unfinished = tally.passes == 0;
        if tally.cut_short {
            let _ = write!(
                detail,
                "; the deadline ended it after {} whole pass(es): raise --timeout or test less",
                tally.passes
            );
        } else if unfinished {
            detail.push_str("; ended before one whole pass: run it longer");
        }
        job.progress
            .update(|r| r.devices[job.slot].memtest = Some(report));
        if found > 0 {
            Err(Failed::new(detail))
        } else if unfinished {
            // Not one whole pass: no pattern vouches for all of the region.
            Ok(Done::warn((), detail))
        } else {
            Ok(Done::pass((), detail))
        }
    }
}

/// The kernels, the findings' buffers (cleared) and the SM count.
fn prepare<'c>(
    job: &Job<'_>,
    ctx: &'c Context<'c>,
    chunks: Vec<Buffer<'c>>,
) -> Result<Bench<'c>, Failed> {
    let kernels =
        Module::load(ctx, MEMTEST_PTX)?.kernels(MemtestKernel::ALL.map(MemtestKernel::entry))?;
    let count = Buffer::alloc(ctx, 2)?;
    count.upload(&[0.0, 0.0])?;
    let records = Buffer::alloc(ctx, 4 * RECORDS as usize)?;
    records.upload(&vec![0.0; 4 * RECORDS as usize])?;
    let sms = job
        .driver
        .device_attribute(job.device, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?
        .max(1) as u32;
    Ok(Bench {
        ctx,
        chunks,
        kernels,
        count,
        records,
        sms,
        events: [Event::new(ctx)?, Event::new(ctx)?],
    })
}

/// The check's detail: what was tested, how fast, what was found.
fn detail(m: &Memtest, short: Option<&str>) -> String {
    let mut text = format!(
        "{} in {} chunk(s), {:.0}% of free memory, {} pass(es) of {} pattern(s) at {:.1} GB/s",
        bytes(m.bytes_tested),
        m.chunks,
        m.fraction_of_free * 100.0,
        m.passes,
        PATTERNS.len(),
        m.gbps
    );
    if m.capped_for_other_process {
        text.push_str("; capped: another compute process is on this GPU");
    }
    if let Some(why) = short {
        let _ = write!(text, "; less than asked: {why}");
    }
    if m.mismatches == 0 {
        text.push_str("; no word read back wrong");
        return text;
    }
    let caught: Vec<String> = m
        .patterns
        .iter()
        .filter(|p| p.mismatches > 0)
        .map(|p| format!("{} {}", pattern_name(p.pattern), p.mismatches))
        .collect();
    let _ = write!(
        text,
        "; {} word(s) read back wrong ({})",
        m.mismatches,
        caught.join(", ")
    );
    if let Some(first) = m.first_mismatches.first() {
        let _ = write!(
            text,
            "; first at offset {:#x}: wrote {:#010x}, read {:#010x} (bit(s) {})",
            first.offset,
            first.expected,
            first.actual,
            first
                .bits
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    text
}

/// A pattern's name, as in the report.
#[must_use]
pub fn pattern_name(p: MemtestPatternKind) -> &'static str {
    match p {
        MemtestPatternKind::WalkingOnes => "walking_ones",
        MemtestPatternKind::WalkingZeros => "walking_zeros",
        MemtestPatternKind::OwnAddress => "own_address",
        MemtestPatternKind::MovingInversionsOnesZeros => "moving_inversions_ones_zeros",
        MemtestPatternKind::MovingInversionsRandom => "moving_inversions_random",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn sizes_parse_as_all_fractions_and_sizes() {
        assert_eq!(Size::parse("all"), Ok(Size::All));
        assert_eq!(Size::parse("0.5"), Ok(Size::Fraction(0.5)));
        assert_eq!(Size::parse("25%"), Ok(Size::Fraction(0.25)));
        assert_eq!(Size::parse("4MiB"), Ok(Size::Bytes(4 << 20)));
        assert!(Size::parse("0").is_err());
        assert!(Size::parse("150%").is_err());
    }

    #[test]
    fn the_region_leaves_the_driver_its_share_and_a_shared_gpu_most_of_it() {
        // 80 GiB, 79 free: 5% (4 GiB) stays free.
        let total = 80 * GIB;
        assert_eq!(region_bytes(Size::All, 79 * GIB, total, false), 75 * GIB);
        // A small GPU keeps 512 MiB.
        assert_eq!(
            region_bytes(Size::All, 2 * GIB, 4 * GIB, false),
            3 * GIB / 2
        );
        // Beside another process: 1 GiB, or 5% when that is smaller.
        assert_eq!(region_bytes(Size::All, 79 * GIB, total, true), GIB);
        assert_eq!(
            region_bytes(Size::All, 7 * GIB, 8 * GIB, true),
            8 * GIB / 20 / 16 * 16
        );
        // The plan's size within that.
        assert_eq!(
            region_bytes(Size::Bytes(4 << 20), 79 * GIB, total, false),
            4 << 20
        );
        assert_eq!(
            region_bytes(Size::Fraction(0.5), 10 * GIB, total, false),
            5 * GIB
        );
        // Nothing safe: nothing.
        assert_eq!(region_bytes(Size::All, 256 << 20, total, false), 0);
    }

    #[test]
    fn a_pass_walks_every_bit_and_moves_each_inversion_back() {
        assert_eq!(sweeps(MemtestPatternKind::WalkingOnes).len(), 64);
        let zeros = sweeps(MemtestPatternKind::WalkingZeros);
        assert!(zeros.iter().all(|s| s.param.count_ones() == 31));
        let mi = sweeps(MemtestPatternKind::MovingInversionsRandom);
        let kernels: Vec<_> = mi.iter().map(|s| s.kernel).collect();
        assert_eq!(
            kernels,
            [
                MemtestKernel::Write,
                MemtestKernel::VerifyInvert,
                MemtestKernel::VerifyInvert,
                MemtestKernel::Verify
            ]
        );
    }
}
