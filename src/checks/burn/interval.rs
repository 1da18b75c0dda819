//! One interval of the burn on the GPU: its products launched between two
//! events, each compared on the GPU with the verified one where there is
//! room for a copy (`Checker`, kernels/compare.cu), NVML read while they
//! run; and the product copied back and compared bit for bit.
use crate::checks::progress::Failed;
use crate::cuda::{self, kernels, Buffer, Event, Kernel, Module};
use crate::telemetry::{self, Sample};

use super::Workload;

/// The on-GPU comparison: the verified product on the GPU, a flag word, and
/// `gpuprobe_compare` (kernels/compare.cu), launched after every product.
pub(super) struct Checker<'w> {
    golden: Buffer<'w>,
    flag: Buffer<'w>,
    kernel: Kernel<'w>,
    launch: ([u32; 3], [u32; 3]),
}

impl<'w> Checker<'w> {
    /// Puts the verified product on the GPU, or says why it could not (no
    /// room for a second copy of C).
    pub(super) fn new(w: &Workload<'w, '_>) -> Result<Checker<'w>, String> {
        let made = || -> Result<Checker<'w>, Failed> {
            let golden = Buffer::alloc(w.ctx, w.golden.len())?;
            golden.upload(w.golden)?;
            let flag = Buffer::alloc(w.ctx, 1)?;
            flag.upload(&[0.0])?;
            let kernel = Module::load(w.ctx, kernels::COMPARE_PTX)?.kernel(kernels::COMPARE)?;
            Ok(Checker {
                golden,
                flag,
                kernel,
                launch: kernels::compare_launch(w.golden.len() as u64, w.sms),
            })
        };
        made().map_err(|e| e.detail)
    }

    /// Compares C with the verified product; sets the flag if they differ.
    fn launch(&self, w: &Workload<'_, '_>) -> Result<(), Failed> {
        // SAFETY: the kernel is gpuprobe_compare, loaded in `w.ctx`; C and
        // `golden` hold `golden.len()` floats each (C is the product's m x n
        // result, `golden` its copy), `flag` one word.
        unsafe {
            cuda::launch_compare(
                w.ctx,
                &self.kernel,
                self.launch,
                w.golden.len() as u64,
                [w.product.c.ptr, self.golden.ptr, self.flag.ptr],
            )?;
        }
        Ok(())
    }

    /// Whether any comparison since the last call found a difference; clears
    /// the flag.
    fn take(&self) -> Result<bool, Failed> {
        let mut word = [0f32];
        self.flag.download(&mut word)?;
        let differed = word[0].to_bits() != 0;
        if differed {
            self.flag.upload(&[0.0])?;
        }
        Ok(differed)
    }
}

/// One interval's measurement.
pub(super) struct Measured {
    pub(super) gpu_ms: f64,
    pub(super) sample: Option<Sample>,
    /// Whether a product differed from the verified one, when each was
    /// compared on the GPU.
    pub(super) differed: Option<bool>,
}

/// Launches `count` products between two events, each followed by its
/// comparison on the GPU when there is a `checker`, and reads NVML while
/// they run. The interval's time includes the comparisons: each reads C
/// and its copy once, under 1% of a product's time from 1024 up on a GPU
/// whose memory bandwidth per FLOP is an H100's.
pub(super) fn measure(
    w: &Workload<'_, '_>,
    checker: Option<&Checker<'_>>,
    count: u32,
) -> Result<Measured, Failed> {
    let (start, stop) = (Event::new(w.ctx)?, Event::new(w.ctx)?);
    start.record()?;
    for _ in 0..count {
        w.product.launch(w.ctx, w.kernel, w.rows)?;
        if let Some(c) = checker {
            c.launch(w)?;
        }
    }
    stop.record()?;
    // Launches return before their kernels finish: the GPU is at work now.
    let sample = w.nvml.map(telemetry::sample);
    stop.synchronize()?;
    Ok(Measured {
        gpu_ms: start.elapsed_ms(&stop)?,
        sample,
        differed: checker.map(Checker::take).transpose()?,
    })
}

/// Copies the product back and compares it bit for bit with the verified
/// one: `Ok(None)` when they match, else what differs.
pub(super) fn compare(w: &Workload<'_, '_>) -> Result<Option<String>, Failed> {
    let mut out = vec![0f32; w.golden.len()];
    w.product.c.download(&mut out)?;
    Ok(difference(w.golden, &out, w.product.shape.1))
}

/// Where `got` differs from `golden` (n columns), in words; `None` when
/// every element has the same bits (or both are zeros: +0 and −0 are the
/// same number).
#[must_use]
pub fn difference(golden: &[f32], got: &[f32], n: u32) -> Option<String> {
    let n = n.max(1) as usize;
    let mut wrong = golden
        .iter()
        .zip(got)
        .enumerate()
        .filter(|(_, (g, x))| g.to_bits() != x.to_bits() && !(**g == 0.0 && **x == 0.0));
    let (first, (g, x)) = wrong.next()?;
    let count = 1 + wrong.count();
    Some(format!(
        "{count} of {} elements differ from the verified product; the first at row {}, \
         column {}: {x} instead of {g} ({})",
        golden.len(),
        first / n,
        first % n,
        crate::verify::describe_bits(g.to_bits() ^ x.to_bits())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flipped_bit_is_a_difference() {
        let golden = [1.0f32, 2.0, 0.0, 4.0];
        assert_eq!(difference(&golden, &golden, 2), None);
        // −0 for +0 is the same number.
        assert_eq!(difference(&golden, &[1.0, 2.0, -0.0, 4.0], 2), None);
        let mut got = golden;
        got[3] = f32::from_bits(got[3].to_bits() ^ 1);
        let d = difference(&golden, &got, 2).expect("a difference");
        assert!(d.starts_with("1 of 4 elements"), "{d}");
        assert!(d.contains("row 1, column 1"), "{d}");
        assert!(d.contains("mantissa bit 0"), "{d}");
    }
}
