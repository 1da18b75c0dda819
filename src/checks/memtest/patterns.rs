//! The memory test's patterns and the kernels that run them: each
//! pattern's sweeps of the region (kernels/memtest.cu), the region's chunks
//! with the kernels and the findings' buffers (`Bench`), and what the
//! patterns have found so far (`Tally`).
use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::super::gpu::{missing, Job};
use super::super::progress::Failed;
use crate::cuda::kernels::{memtest_launch, MemtestKernel, PatternFn, MEMTEST_PTX};
use crate::cuda::{
    launch_memtest, Buffer, Context, CopyError, Event, Kernel, MemtestFindings, MemtestSweep,
    Module,
};
use crate::report::{MemtestMismatch, MemtestPattern, MemtestPatternKind};

/// Mismatches recorded with their place (all are counted).
const RECORDS: u32 = 25;

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
pub(super) const PATTERNS: [MemtestPatternKind; 5] = [
    MemtestPatternKind::WalkingOnes,
    MemtestPatternKind::WalkingZeros,
    MemtestPatternKind::OwnAddress,
    MemtestPatternKind::MovingInversionsOnesZeros,
    MemtestPatternKind::MovingInversionsRandom,
];

/// The region's chunks, the kernels and the findings' buffers.
pub(super) struct Bench<'c> {
    ctx: &'c Context<'c>,
    pub(super) chunks: Vec<Buffer<'c>>,
    kernels: [Kernel<'c>; 3],
    count: Buffer<'c>,
    records: Buffer<'c>,
    sms: u32,
    events: [Event<'c>; 2],
}

/// What the patterns have found so far.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) patterns: Vec<MemtestPattern>,
    pub(super) mismatches: u64,
    pub(super) bytes_moved: u64,
    pub(super) gpu_ms: f64,
    pub(super) passes: u32,
    /// The deadline ended the test before its first pass was whole or
    /// its duration had passed.
    pub(super) cut_short: bool,
}

impl Bench<'_> {
    /// Runs one pattern over every chunk and adds what it found to
    /// `tally`; false when `near` (the deadline) cut it short, checked
    /// after each sweep, which is waited for: queued launches would return
    /// at once and run on past the deadline. A sweep over a whole GPU is
    /// tens of milliseconds, so the wait costs it nothing.
    pub(super) fn run(
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
    pub(super) fn count(&self) -> Result<u64, CopyError> {
        let mut words = [0f32; 2];
        self.count.download(&mut words)?;
        Ok(u64::from(words[0].to_bits()) | (u64::from(words[1].to_bits()) << 32))
    }

    /// The recorded mismatches, at most `found` of them.
    pub(super) fn records(&self, found: u64) -> Result<Vec<MemtestMismatch>, CopyError> {
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

/// The kernels, the findings' buffers (cleared) and the SM count.
pub(super) fn prepare<'c>(
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

#[cfg(test)]
mod tests {
    use super::*;

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
