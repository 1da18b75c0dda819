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
//! has passed (at least one whole pass, and none past the deadline): in a
//! row as the `memtest` stage, or one pattern after each of a burn's
//! intervals (`Interleaved`). patterns.rs holds the patterns, their sweeps
//! and the kernels' launches.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::gpu::Job;
use super::progress::{Done, Failed, Scope};
use crate::cuda::error::CUDA_ERROR_OUT_OF_MEMORY;
use crate::cuda::{Buffer, Context, CopyError};
use crate::report::{Memtest, NotRun};
use crate::stage::Stage;
use crate::units::{bytes, parse_size};

mod patterns;

use patterns::{prepare, Bench, Tally, PATTERNS};

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
            NotRun::NoMemory,
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
        return Ok(Start::Skipped(
            Done::warn(
                (),
                format!(
                    "not run: none of the {} asked for could be allocated ({})",
                    bytes(want),
                    short.as_deref().unwrap_or("no reason given")
                ),
            )
            .not_run(NotRun::NoMemory),
        ));
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

/// `burn --memtest`: the memory test's patterns one at a time between the
/// burn's intervals, recorded as the `memtest` check when the burn ends
/// (a test that could not start is recorded before it).
pub struct Interleaved<'c> {
    /// The plan and the other processes, until the first step starts it.
    pending: Option<(Plan, Option<u32>)>,
    running: Option<Box<Running<'c>>>,
    /// A driver error that ended the test.
    failed: Option<Failed>,
}

impl<'c> Interleaved<'c> {
    /// The plan's test, if there is one, to start at the first step: after
    /// the burn's first interval, when the burn's own buffers (the copy of
    /// the product it compares with) are allocated, so the region is what
    /// is left beside them.
    #[must_use]
    pub fn new(plan: Option<Plan>, others: Option<u32>) -> Interleaved<'c> {
        Interleaved {
            pending: plan.map(|p| (p, others)),
            running: None,
            failed: None,
        }
    }

    /// Starts the test at the first call (a test that cannot start is
    /// recorded as the `memtest` check at once), then runs its next
    /// pattern, unless the test is over (the deadline, an error).
    pub fn step(&mut self, job: &Job<'_>, ctx: &'c Context<'c>) {
        if let Some((plan, others)) = self.pending.take() {
            let scope = Scope::Device(job.slot);
            match start(job, &plan, ctx, others) {
                Ok(Start::Running(r)) => self.running = Some(r),
                Ok(Start::Skipped(done)) => {
                    job.progress.stage(scope, Stage::Memtest, || Ok(done));
                }
                Err(e) => {
                    job.progress
                        .stage(scope, Stage::Memtest, || Err::<Done<()>, _>(e));
                }
            }
        }
        let Some(r) = self.running.as_mut() else {
            return;
        };
        if self.failed.is_some() {
            return;
        }
        let deadline = job.deadline;
        let near = || deadline.is_some_and(|d| Instant::now() + MEMTEST_RESERVE >= d);
        // Ok(false): the deadline is near; later steps see it too.
        if let Err(e) = r.step(&near) {
            self.failed = Some(e);
        }
    }

    /// Records the `memtest` check and the report; a test the burn ended
    /// before its first step is recorded as not run (`burn_failed`: the
    /// burn ended by failing).
    pub fn finish(self, job: &Job<'_>, burn_failed: bool) {
        let scope = Scope::Device(job.slot);
        if self.pending.is_some() {
            let (why, detail) = if burn_failed {
                (
                    NotRun::EarlierFailure,
                    "not run: the burn failed before its first interval ended",
                )
            } else {
                (
                    NotRun::OutOfTime,
                    "not run: the burn ended before its first interval did",
                )
            };
            job.progress.skip(scope, Stage::Memtest, why, detail);
            return;
        }
        let Some(r) = self.running else { return };
        match self.failed {
            Some(e) => {
                let _ = r.finish(job);
                job.progress
                    .stage(scope, Stage::Memtest, || Err::<Done<()>, _>(e));
            }
            None => {
                job.progress.stage(scope, Stage::Memtest, || r.finish(job));
            }
        }
    }
}

/// Time an interleaved memory test leaves before the deadline: the burn's
/// last comparison and the report.
const MEMTEST_RESERVE: Duration = Duration::from_secs(5);

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
        .map(|p| format!("{} {}", p.pattern.as_str(), p.mismatches))
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
}
