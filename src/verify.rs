//! Inputs, and the check that the GPU's product is right.
//!
//! Inputs come from a seeded generator, so a failing run can be repeated with
//! `--seed`. The check cannot be fooled by a plausible-looking result: every
//! element of the GPU's C is compared with the CPU's, and a random sample of
//! elements with an f64 reference. Tolerances are rigorous bounds on f32
//! rounding for any summation order (Higham, "Accuracy and Stability of
//! Numerical Algorithms", 2nd ed., section 3.1): |fl(x·y) − x·y| ≤ γ(K)·|x|·|y|
//! with γ(K) = K·u / (1 − K·u) and u = 2⁻²⁴. A single wrong element beyond
//! that bound fails the check.
use crate::report::{Mismatch, SampleCheck, Verification};

/// Unit roundoff of f32.
const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Elements checked against the f64 reference.
pub const SAMPLE_ELEMENTS: u32 = 256;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, well mixed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1), a multiple of 2⁻²³: exact in f32.
    pub fn next_signed_unit(&mut self) -> f32 {
        let bits = (self.next_u64() >> 40) as i32; // 24 random bits
        (bits - (1 << 23)) as f32 / (1 << 23) as f32
    }

    fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

/// γ(K) = K·u / (1 − K·u).
#[must_use]
pub fn gamma(k: u32) -> f64 {
    let ku = f64::from(k) * F32_UNIT_ROUNDOFF;
    ku / (1.0 - ku)
}

/// The matmul's inputs, with the row and column norms the tolerance needs.
pub struct Inputs {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub seed: u64,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    /// Σ_p |a_ip| for each row i of A.
    a_row_abs: Vec<f64>,
    /// max_p |b_pj| for each column j of B.
    b_col_max: Vec<f64>,
}

impl Inputs {
    #[must_use]
    pub fn generate(m: u32, n: u32, k: u32, seed: u64) -> Inputs {
        let mut rng = Rng::new(seed);
        let a: Vec<f32> = (0..m as usize * k as usize)
            .map(|_| rng.next_signed_unit())
            .collect();
        let b: Vec<f32> = (0..k as usize * n as usize)
            .map(|_| rng.next_signed_unit())
            .collect();
        let (m_, n_, k_) = (m as usize, n as usize, k as usize);
        let a_row_abs = (0..m_)
            .map(|i| {
                a[i * k_..(i + 1) * k_]
                    .iter()
                    .map(|x| f64::from(x.abs()))
                    .sum()
            })
            .collect();
        let mut b_col_max = vec![0f64; n_];
        for row in b.chunks_exact(n_.max(1)) {
            for (max, x) in b_col_max.iter_mut().zip(row) {
                *max = max.max(f64::from(x.abs()));
            }
        }
        Inputs {
            m,
            n,
            k,
            seed,
            a,
            b,
            a_row_abs,
            b_col_max,
        }
    }

    fn dot_f64(&self, row: u32, col: u32) -> (f64, f64) {
        let (k, n) = (self.k as usize, self.n as usize);
        let (mut sum, mut abs) = (0f64, 0f64);
        for p in 0..k {
            let x =
                f64::from(self.a[row as usize * k + p]) * f64::from(self.b[p * n + col as usize]);
            sum += x;
            abs += x.abs();
        }
        (sum, abs)
    }
}

/// One element of the f64 reference.
struct SampleElement {
    row: u32,
    col: u32,
    value: f64,
    abs_sum: f64,
}

/// What the GPU's product is compared with.
pub struct Reference {
    /// The CPU's f32 product, all elements.
    pub cpu: Vec<f32>,
    sample_seed: u64,
    sample: Vec<SampleElement>,
}

impl Reference {
    /// Pairs the CPU product with an f64 reference on a sample of elements
    /// chosen by `sample_seed`.
    #[must_use]
    pub fn new(inputs: &Inputs, cpu: Vec<f32>, sample_seed: u64) -> Reference {
        let mut rng = Rng::new(sample_seed);
        let count = if inputs.m == 0 || inputs.n == 0 {
            0
        } else {
            SAMPLE_ELEMENTS
        };
        let sample = (0..count)
            .map(|_| {
                let (row, col) = (rng.below(inputs.m), rng.below(inputs.n));
                let (value, abs_sum) = inputs.dot_f64(row, col);
                SampleElement {
                    row,
                    col,
                    value,
                    abs_sum,
                }
            })
            .collect();
        Reference {
            cpu,
            sample_seed,
            sample,
        }
    }
}

/// Absolute error, infinite when the GPU's value is NaN or infinite.
fn error(gpu: f32, expected: f64) -> f64 {
    if gpu.is_finite() {
        (f64::from(gpu) - expected).abs()
    } else {
        f64::INFINITY
    }
}

/// Whether an error is inside its tolerance; a NaN error never is.
fn within(err: f64, tol: f64) -> bool {
    err <= tol
}

/// JSON has no infinity: the largest finite number stands for it.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        f64::MAX
    }
}

/// The full comparison's tolerance for element (row, col).
fn full_tolerance(inputs: &Inputs, full_gamma: f64, row: usize, col: usize) -> f64 {
    full_gamma * inputs.a_row_abs[row] * inputs.b_col_max[col]
}

/// Whether the full comparison passed element `index` (false for an element
/// the GPU's result lacks: that one is counted as missing).
fn full_passes(inputs: &Inputs, reference: &Reference, gpu: &[f32], index: usize) -> bool {
    let n = (inputs.n as usize).max(1);
    match (gpu.get(index), reference.cpu.get(index)) {
        (Some(g), Some(c)) => within(
            error(*g, f64::from(*c)),
            full_tolerance(inputs, 2.0 * gamma(inputs.k), index / n, index % n),
        ),
        _ => false,
    }
}

/// Compares the GPU's product with the reference.
#[must_use]
pub fn check(inputs: &Inputs, reference: &Reference, gpu: &[f32]) -> Verification {
    let n = inputs.n as usize;
    let full_gamma = 2.0 * gamma(inputs.k);
    let mut mismatches = 0u64;
    let mut first_mismatch = None;
    let (mut max_err, mut tol_at_max, mut worst_ratio) = (0f64, 0f64, 0f64);

    for (i, (g, c)) in gpu.iter().zip(&reference.cpu).enumerate() {
        let (row, col) = (i / n.max(1), i % n.max(1));
        let tol = full_tolerance(inputs, full_gamma, row, col);
        let err = error(*g, f64::from(*c));
        if err > max_err || (err.is_infinite() && max_err.is_finite()) {
            max_err = err;
            tol_at_max = tol;
        }
        let ratio = if tol > 0.0 {
            err / tol
        } else if err > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        worst_ratio = worst_ratio.max(ratio);
        if !within(err, tol) {
            mismatches += 1;
            if first_mismatch.is_none() {
                first_mismatch = Some(Mismatch {
                    row: row as u32,
                    col: col as u32,
                    gpu: finite(f64::from(*g)),
                    expected: f64::from(*c),
                    tolerance: tol,
                });
            }
        }
    }
    // A result shorter than C (it never should be) is a mismatch per element.
    let missing = reference.cpu.len().saturating_sub(gpu.len()) as u64;
    mismatches += missing;

    let mut sample = SampleCheck {
        elements: reference.sample.len() as u32,
        seed: reference.sample_seed,
        max_abs_error: 0.0,
        tolerance: 0.0,
        mismatches: 0,
    };
    let single_gamma = gamma(inputs.k);
    // Elements the sample finds wrong that the full comparison passed: each
    // element is counted once in `mismatches`, however many checks it fails
    // (and the sample may draw the same element twice).
    let mut only_in_sample: Vec<usize> = Vec::new();
    for s in &reference.sample {
        let g = gpu
            .get(s.row as usize * n + s.col as usize)
            .copied()
            .unwrap_or(f32::NAN);
        let tol = single_gamma * s.abs_sum;
        let err = error(g, s.value);
        if err > sample.max_abs_error || (err.is_infinite() && sample.max_abs_error.is_finite()) {
            sample.max_abs_error = err;
            sample.tolerance = tol;
        }
        if !within(err, tol) {
            sample.mismatches += 1;
            let index = s.row as usize * n + s.col as usize;
            if full_passes(inputs, reference, gpu, index) {
                only_in_sample.push(index);
            }
            if first_mismatch.is_none() {
                first_mismatch = Some(Mismatch {
                    row: s.row,
                    col: s.col,
                    gpu: finite(f64::from(g)),
                    expected: s.value,
                    tolerance: tol,
                });
            }
        }
    }
    sample.max_abs_error = finite(sample.max_abs_error);
    only_in_sample.sort_unstable();
    only_in_sample.dedup();

    Verification {
        passed: mismatches == 0 && sample.mismatches == 0,
        elements: gpu.len().min(reference.cpu.len()) as u64,
        mismatches: mismatches + only_in_sample.len() as u64,
        max_abs_error: finite(max_err),
        tolerance: tol_at_max,
        max_error_ratio: finite(worst_ratio),
        first_mismatch,
        f64_sample: sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu;

    fn setup(m: u32, n: u32, k: u32) -> (Inputs, Reference) {
        let inputs = Inputs::generate(m, n, k, 42);
        let mut c = vec![0f32; (m * n) as usize];
        cpu::sgemm(
            m as usize, n as usize, k as usize, &inputs.a, &inputs.b, &mut c, 2,
        );
        let reference = Reference::new(&inputs, c, 7);
        (inputs, reference)
    }

    #[test]
    fn generator_is_seeded_and_in_range() {
        let a = Inputs::generate(8, 8, 8, 1);
        let b = Inputs::generate(8, 8, 8, 1);
        let c = Inputs::generate(8, 8, 8, 2);
        assert_eq!(a.a, b.a);
        assert_ne!(a.a, c.a);
        assert!(a.a.iter().chain(&a.b).all(|x| (-1.0..1.0).contains(x)));
    }

    #[test]
    fn a_different_summation_order_passes() {
        let (inputs, reference) = setup(37, 29, 301);
        let mut naive = vec![0f32; 37 * 29];
        cpu::naive_sgemm(37, 29, 301, &inputs.a, &inputs.b, &mut naive);
        let v = check(&inputs, &reference, &naive);
        assert!(v.passed, "{v:?}");
        assert_eq!(v.elements, 37 * 29);
        assert_eq!(v.f64_sample.elements, SAMPLE_ELEMENTS);
        assert!(v.max_error_ratio < 1.0);
    }

    #[test]
    fn a_single_wrong_element_fails() {
        let (inputs, reference) = setup(33, 33, 33);
        for delta in [1e-2f32, 1.0, f32::NAN] {
            let mut gpu = reference.cpu.clone();
            gpu[33 * 17 + 5] += delta;
            let v = check(&inputs, &reference, &gpu);
            assert!(!v.passed, "delta {delta}");
            let first = v.first_mismatch.clone().expect("mismatch reported");
            assert_eq!((first.row, first.col), (17, 5));
            assert!(serde_json::to_string(&v)
                .unwrap()
                .contains("\"max_abs_error\""));
        }
    }

    #[test]
    fn a_short_result_fails() {
        let (inputs, reference) = setup(4, 4, 4);
        let v = check(&inputs, &reference, &reference.cpu[..10]);
        assert!(!v.passed);
    }

    #[test]
    fn gamma_grows_with_k() {
        assert!(gamma(1) > 0.0);
        assert!(gamma(4096) > gamma(64));
        assert!((gamma(1) - F32_UNIT_ROUNDOFF).abs() < 1e-12);
    }

    #[test]
    fn each_wrong_element_is_counted_once() {
        let (inputs, reference) = setup(16, 16, 16);
        // Corrupt three elements the f64 sample checks too, so that both
        // comparisons see them.
        let mut targets: Vec<usize> = reference
            .sample
            .iter()
            .map(|s| s.row as usize * 16 + s.col as usize)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let mut gpu = reference.cpu.clone();
        for &i in &targets[..3] {
            gpu[i] += 100.0;
        }
        let v = check(&inputs, &reference, &gpu);
        assert!(!v.passed);
        assert_eq!(v.mismatches, 3, "{v:?}");
        assert!(v.f64_sample.mismatches >= 3);
    }
}
