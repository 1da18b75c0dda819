//! Inputs, and the check that the GPU's product is right.
//!
//! Two passes, each on inputs from a seeded generator (a failing run can be
//! repeated with `--seed`):
//!
//! - The exact pass. A and B hold small integers times a power of two,
//!   sized from K so that every product and every partial sum is an integer
//!   multiple of that power below 2²⁴ in magnitude: f32 represents all of
//!   them exactly, so every summation order, with or without FMA, gives the
//!   same bits (IEEE 754: a sum or product whose exact value is representable
//!   is not rounded). The GPU's C must then equal the CPU's bit for bit, and
//!   an element that differs at all (one low mantissa bit, a zero, a NaN) is
//!   a fault, reported with its index, both values and the differing bits.
//! - The rounding pass. Non-integer inputs (multiples of 2⁻²³ in [-1, 1)),
//!   so that products and sums round as real workloads do; a random sample
//!   of elements is compared with an f64 reference within the probabilistic
//!   bound λ·√K·u·Σ|a||b| (see `ROUNDING_LAMBDA`).
//!
//! Only when K is too large for any integer input to keep the sums exact
//! (K ≥ 2²⁴, beyond what the command line allows) does the exact pass fall
//! back to a rigorous bound on f32 rounding for any summation order
//! (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed.,
//! section 3.1): |fl(x·y) − x·y| ≤ γ(K)·|x|·|y| with γ(K) = K·u / (1 − K·u)
//! and u = 2⁻²⁴.
use crate::report::{Mismatch, MismatchKind, SampleCheck, Verification};
use crate::units::number;

/// Unit roundoff of f32.
const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Integers below this magnitude are exact in f32 (24-bit significand).
const F32_EXACT_INTEGERS: u64 = 1 << 24;

/// Elements checked against the f64 reference.
pub const SAMPLE_ELEMENTS: u32 = 256;

/// Wrong elements listed one by one in the report (all are counted).
pub const LISTED_FAULTS: usize = 16;

/// λ of the rounding pass's bound λ·√K·u·Σ|a||b|.
///
/// Higham and Mary, "A New Approach to Probabilistic Rounding Error
/// Analysis", SIAM J. Sci. Comput. 41(5), 2019, Theorem 3.1: with rounding
/// errors that are independent and of mean zero, an inner product of length
/// K computed in any order satisfies |ŷ − y| ≤ γ̃(K)·Σ|a||b|, where
/// γ̃(K) = exp(λ·√K·u + K·u²/(1−u)) − 1 ≈ λ·√K·u, with probability at least
/// 1 − 2K·exp(−λ²(1−u)²/2). λ = 8 makes that failure probability below
/// 2·32768·e⁻³² ≈ 8·10⁻¹⁰ per element at the largest K gpuprobe allows, so
/// below 3·10⁻⁷ for a run's 256 samples: a correct GPU does not fail it,
/// while the bound is √K tighter than the worst case (√2048 ≈ 45 times at the
/// default size). The f64 reference's own error (K·2⁻⁵³) is negligible.
const ROUNDING_LAMBDA: f64 = 8.0;

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

    /// Uniform integer in [-max, max].
    fn next_integer(&mut self, max: u32) -> i64 {
        i64::from(self.below(2 * max + 1)) - i64::from(max)
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

/// The rounding pass's γ̃(K) = exp(λ·√K·u + K·u²/(1−u)) − 1 (see
/// `ROUNDING_LAMBDA`).
#[must_use]
pub fn probabilistic_gamma(k: u32) -> f64 {
    let (k, u) = (f64::from(k), F32_UNIT_ROUNDOFF);
    (ROUNDING_LAMBDA * k.sqrt() * u + k * u * u / (1.0 - u)).exp_m1()
}

/// The largest integer magnitude M for which K·M² < 2²⁴: with |a|, |b| ≤ M
/// every product and partial sum of a length-K inner product is an integer
/// below 2²⁴ in magnitude, hence exact in f32. `None` when even M = 1 is too
/// large (K ≥ 2²⁴).
#[must_use]
pub fn exact_integer_max(k: u32) -> Option<u32> {
    let k = u64::from(k.max(1));
    let mut max = ((F32_EXACT_INTEGERS - 1) / k).isqrt();
    while max > 0 && k * max * max >= F32_EXACT_INTEGERS {
        max -= 1;
    }
    (max > 0).then_some(max as u32)
}

/// The matmul's inputs: the exact pass's A and B, and the rounding pass's.
pub struct Inputs {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub seed: u64,
    /// The exact pass: integers in [-M, M] times a power of two.
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    /// M of the exact pass; `None` when K is too large for exact sums.
    pub integer_max: Option<u32>,
    /// The rounding pass: multiples of 2⁻²³ in [-1, 1).
    pub rounding_a: Vec<f32>,
    pub rounding_b: Vec<f32>,
    /// Σ_p |a_ip| for each row i of A (the fallback tolerance).
    a_row_abs: Vec<f64>,
    /// max_p |b_pj| for each column j of B (the fallback tolerance).
    b_col_max: Vec<f64>,
}

impl Inputs {
    #[must_use]
    pub fn generate(m: u32, n: u32, k: u32, seed: u64) -> Inputs {
        let mut rng = Rng::new(seed);
        let integer_max = exact_integer_max(k);
        // Integers times a power of two that keeps them inside (-1, 1), as
        // the inputs have always been; the scale changes no bit of the
        // exactness argument.
        let max = integer_max.unwrap_or(1);
        let scale = 1.0 / f64::from(max + 1).log2().ceil().exp2();
        let mut exact = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| (rng.next_integer(max) as f64 * scale) as f32)
                .collect()
        };
        let a = exact(m as usize * k as usize);
        let b = exact(k as usize * n as usize);
        let mut unit =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_signed_unit()).collect() };
        let rounding_a = unit(m as usize * k as usize);
        let rounding_b = unit(k as usize * n as usize);
        let (m_, n_, k_) = (m as usize, n as usize, k as usize);
        let (a_row_abs, b_col_max) = if integer_max.is_some() {
            (Vec::new(), Vec::new())
        } else {
            let rows = (0..m_)
                .map(|i| {
                    a[i * k_..(i + 1) * k_]
                        .iter()
                        .map(|x| f64::from(x.abs()))
                        .sum()
                })
                .collect();
            let mut cols = vec![0f64; n_];
            for row in b.chunks_exact(n_.max(1)) {
                for (max, x) in cols.iter_mut().zip(row) {
                    *max = max.max(f64::from(x.abs()));
                }
            }
            (rows, cols)
        };
        Inputs {
            m,
            n,
            k,
            seed,
            a,
            b,
            integer_max,
            rounding_a,
            rounding_b,
            a_row_abs,
            b_col_max,
        }
    }

    /// Whether the exact pass's sums are exact (K < 2²⁴).
    #[must_use]
    pub fn exact(&self) -> bool {
        self.integer_max.is_some()
    }

    /// One element of the rounding pass's product in f64, and Σ|a||b|.
    fn rounding_dot_f64(&self, row: u32, col: u32) -> (f64, f64) {
        let (k, n) = (self.k as usize, self.n as usize);
        let (mut sum, mut abs) = (0f64, 0f64);
        for p in 0..k {
            let x = f64::from(self.rounding_a[row as usize * k + p])
                * f64::from(self.rounding_b[p * n + col as usize]);
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

/// What the GPU's products are compared with.
pub struct Reference {
    /// The CPU's f32 product of the exact pass's inputs, all elements.
    pub cpu: Vec<f32>,
    sample_seed: u64,
    /// f64 reference elements of the rounding pass's product.
    sample: Vec<SampleElement>,
}

impl Reference {
    /// Pairs the CPU product of the exact inputs with an f64 reference of
    /// the rounding pass on a sample of elements chosen by `sample_seed`.
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
                let (value, abs_sum) = inputs.rounding_dot_f64(row, col);
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

impl Reference {
    /// The CPU product alone, with no rounding pass: `check` then compares
    /// every element of the exact pass and samples nothing (the tensor-core
    /// check, whose accumulation need not round as f32 does).
    #[must_use]
    pub fn exact_only(cpu: Vec<f32>) -> Reference {
        Reference {
            cpu,
            sample_seed: 0,
            sample: Vec::new(),
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

/// Whether the GPU's element equals the exact product: the same bits, or
/// both zero (+0 and −0 are the same number; which one a zero sum gets
/// depends on its order).
fn identical(gpu: f32, expected: f32) -> bool {
    gpu.to_bits() == expected.to_bits() || (gpu == 0.0 && expected == 0.0)
}

/// The fallback tolerance for element (row, col): 2·γ(K)·Σ|a|·max|b|.
fn fallback_tolerance(inputs: &Inputs, row: usize, col: usize) -> f64 {
    2.0 * gamma(inputs.k) * inputs.a_row_abs[row] * inputs.b_col_max[col]
}

/// Compares the GPU's products with the reference: `gpu` is its product of
/// the exact inputs (all elements), `rounding` its product of the rounding
/// inputs (the sampled elements).
#[must_use]
pub fn check(
    inputs: &Inputs,
    reference: &Reference,
    gpu: &[f32],
    rounding: &[f32],
) -> Verification {
    let n = (inputs.n as usize).max(1);
    let exact = inputs.exact();
    let mut mismatches = 0u64;
    let mut faults: Vec<Mismatch> = Vec::new();
    let (mut max_err, mut tol_at_max, mut worst_ratio) = (0f64, 0f64, 0f64);

    for (i, (g, c)) in gpu.iter().zip(&reference.cpu).enumerate() {
        let (row, col) = (i / n, i % n);
        let tol = if exact {
            0.0
        } else {
            fallback_tolerance(inputs, row, col)
        };
        let err = error(*g, f64::from(*c));
        if err > max_err || (err.is_infinite() && max_err.is_finite()) {
            max_err = err;
            tol_at_max = tol;
        }
        let wrong = if exact {
            !identical(*g, *c)
        } else {
            !within(err, tol)
        };
        let ratio = if tol > 0.0 {
            err / tol
        } else if wrong {
            f64::INFINITY
        } else {
            0.0
        };
        worst_ratio = worst_ratio.max(ratio);
        if wrong {
            mismatches += 1;
            if faults.len() < LISTED_FAULTS {
                faults.push(Mismatch {
                    row: row as u32,
                    col: col as u32,
                    gpu: finite(f64::from(*g)),
                    expected: f64::from(*c),
                    tolerance: tol,
                    index: Some(i as u64),
                    differing_bits: Some(g.to_bits() ^ c.to_bits()),
                    kind: Some(if exact {
                        MismatchKind::Exact
                    } else {
                        MismatchKind::Tolerance
                    }),
                });
            }
        }
    }
    // A result shorter than C (it never should be) is a mismatch per element.
    mismatches += reference.cpu.len().saturating_sub(gpu.len()) as u64;

    let (sample, sample_wrong) = rounding_pass(inputs, reference, rounding, &mut faults);
    let first_mismatch = faults.first().cloned();
    // An element wrong in both passes (a bad cell or unit at that place
    // fails both products) is one wrong element: the count is of distinct
    // places in C, so it never exceeds `elements`.
    let wrong_in_first_pass = |i: usize| match (gpu.get(i), reference.cpu.get(i)) {
        (Some(g), Some(c)) if exact => !identical(*g, *c),
        (Some(g), Some(c)) => !within(
            error(*g, f64::from(*c)),
            fallback_tolerance(inputs, i / n, i % n),
        ),
        _ => true,
    };
    let only_in_sample = sample_wrong
        .iter()
        .filter(|i| !wrong_in_first_pass(**i))
        .count() as u64;
    Verification {
        passed: mismatches == 0 && sample.mismatches == 0,
        elements: gpu.len().min(reference.cpu.len()) as u64,
        mismatches: mismatches + only_in_sample,
        full_pass_mismatches: Some(mismatches),
        max_abs_error: finite(max_err),
        tolerance: tol_at_max,
        max_error_ratio: finite(worst_ratio),
        first_mismatch,
        f64_sample: sample,
        exact,
        integer_max: inputs.integer_max,
        faults,
    }
}

/// The rounding pass: the sampled elements of the GPU's product of the
/// rounding inputs against f64, within γ̃(K)·Σ|a||b|. Wrong elements are
/// added to `faults` while there is room.
fn rounding_pass(
    inputs: &Inputs,
    reference: &Reference,
    rounding: &[f32],
    faults: &mut Vec<Mismatch>,
) -> (SampleCheck, Vec<usize>) {
    let n = inputs.n as usize;
    let gamma = probabilistic_gamma(inputs.k);
    let mut sample = SampleCheck {
        elements: reference.sample.len() as u32,
        seed: reference.sample_seed,
        max_abs_error: 0.0,
        tolerance: 0.0,
        mismatches: 0,
    };
    let mut wrong: Vec<usize> = Vec::new();
    for s in &reference.sample {
        let index = s.row as usize * n + s.col as usize;
        let g = rounding.get(index).copied().unwrap_or(f32::NAN);
        let tol = gamma * s.abs_sum;
        let err = error(g, s.value);
        if err > sample.max_abs_error || (err.is_infinite() && sample.max_abs_error.is_finite()) {
            sample.max_abs_error = err;
            sample.tolerance = tol;
        }
        // The sample may draw an element twice; it is one wrong element.
        if !within(err, tol) && !wrong.contains(&index) {
            wrong.push(index);
            if faults.len() < LISTED_FAULTS {
                faults.push(Mismatch {
                    row: s.row,
                    col: s.col,
                    gpu: finite(f64::from(g)),
                    expected: s.value,
                    tolerance: tol,
                    index: Some(index as u64),
                    differing_bits: None,
                    kind: Some(MismatchKind::F64Sample),
                });
            }
        }
    }
    sample.mismatches = wrong.len() as u64;
    sample.max_abs_error = finite(sample.max_abs_error);
    (sample, wrong)
}

/// The verify stage's detail when both passes passed.
#[must_use]
pub fn passed_detail(v: &Verification) -> String {
    let first = if v.exact {
        format!(
            "all {} elements equal the exact product bit for bit (integer inputs up to {})",
            v.elements,
            v.integer_max.unwrap_or(0)
        )
    } else {
        format!(
            "all {} elements within tolerance (max error {:.2e}, tolerance there {:.2e})",
            v.elements, v.max_abs_error, v.tolerance
        )
    };
    format!(
        "{first}; rounding pass: {} f64 samples within tolerance (max error {:.2e}, tolerance there {:.2e})",
        v.f64_sample.elements, v.f64_sample.max_abs_error, v.f64_sample.tolerance
    )
}

/// The verify stage's detail when a pass failed: how many elements, and
/// the first one with its index, both values and what differs.
#[must_use]
pub fn failed_detail(v: &Verification) -> String {
    let first = v.first_mismatch.as_ref().map_or(String::new(), |f| {
        let place = format!(
            "row {} col {}{}",
            f.row,
            f.col,
            f.index.map_or(String::new(), |i| format!(" (element {i})"))
        );
        match (f.kind, f.differing_bits) {
            (Some(MismatchKind::Exact), Some(xor)) => {
                // The GPU's own f32 (NaN included) from the bits that differ.
                let expected = f.expected as f32;
                let got = f32::from_bits(expected.to_bits() ^ xor);
                format!(
                    "; first at {place}: got {}, expected exactly {}, differing in {} (0x{xor:08x})",
                    number(f64::from(got)),
                    number(f.expected),
                    describe_bits(xor)
                )
            }
            (Some(MismatchKind::F64Sample), _) => format!(
                "; first at {place} of the rounding pass: got {}, expected {} ± {:.2e}",
                number(f.gpu),
                number(f.expected),
                f.tolerance
            ),
            _ => format!(
                "; first at {place}: got {}, expected {} ± {:.2e}",
                number(f.gpu),
                number(f.expected),
                f.tolerance
            ),
        }
    });
    format!("{} of {} elements wrong{first}", v.mismatches, v.elements)
}

/// "mantissa bit 0", "exponent bits 23, 30", "sign bit": where two f32 bit
/// patterns differ, for the report's text.
#[must_use]
pub fn describe_bits(xor: u32) -> String {
    let bits = |lo: u32, hi: u32| -> Vec<String> {
        (lo..=hi)
            .filter(|b| xor & (1 << b) != 0)
            .map(|b| b.to_string())
            .collect()
    };
    let mut parts = Vec::new();
    if xor.count_ones() > 3 {
        // A zero or a NaN in place of a value: the bits say little more.
        let fields: Vec<&str> = [
            ("sign", 0x8000_0000u32),
            ("exponent", 0x7F80_0000),
            ("mantissa", 0x007F_FFFF),
        ]
        .into_iter()
        .filter(|(_, mask)| xor & mask != 0)
        .map(|(name, _)| name)
        .collect();
        return format!("{} bits of {}", xor.count_ones(), fields.join(", "));
    }
    if xor & (1 << 31) != 0 {
        parts.push("sign bit".to_string());
    }
    for (name, lo, hi) in [("exponent", 23, 30), ("mantissa", 0, 22)] {
        let set = bits(lo, hi);
        match set.len() {
            0 => {}
            1 => parts.push(format!("{name} bit {}", set[0])),
            _ => parts.push(format!("{name} bits {}", set.join(", "))),
        }
    }
    if parts.is_empty() {
        "no bit".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
// Exact equality of floats is what these tests are about.
#[allow(clippy::float_cmp)]
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

    /// The GPU's product of the rounding inputs, as the CPU makes it.
    fn rounding_product(inputs: &Inputs) -> Vec<f32> {
        let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
        let mut c = vec![0f32; m * n];
        cpu::sgemm(m, n, k, &inputs.rounding_a, &inputs.rounding_b, &mut c, 2);
        c
    }

    fn check_exact(inputs: &Inputs, reference: &Reference, gpu: &[f32]) -> Verification {
        check(inputs, reference, gpu, &rounding_product(inputs))
    }

    #[test]
    fn generator_is_seeded_and_in_range() {
        let a = Inputs::generate(8, 8, 8, 1);
        let b = Inputs::generate(8, 8, 8, 1);
        let c = Inputs::generate(8, 8, 8, 2);
        assert_eq!(a.a, b.a);
        assert_eq!(a.rounding_a, b.rounding_a);
        assert_ne!(a.a, c.a);
        assert!(a
            .a
            .iter()
            .chain(&a.b)
            .chain(&a.rounding_a)
            .chain(&a.rounding_b)
            .all(|x| (-1.0..1.0).contains(x)));
        // The rounding inputs are not integers times the exact pass's scale.
        assert!(a
            .rounding_a
            .iter()
            .any(|x| x.fract() != 0.0 && (x * 128.0).fract() != 0.0));
    }

    #[test]
    fn exact_inputs_keep_every_partial_sum_below_two_to_the_24() {
        for k in [1, 2, 16, 2048, 8192, 32768, (1 << 24) - 1] {
            let max = u64::from(exact_integer_max(k).expect("exact"));
            assert!(u64::from(k) * max * max < 1 << 24, "k {k}");
            assert!(
                u64::from(k) * (max + 1) * (max + 1) >= 1 << 24,
                "k {k}: not the largest"
            );
        }
        assert_eq!(exact_integer_max(2048), Some(90));
        assert_eq!(exact_integer_max(32768), Some(22));
        assert_eq!(exact_integer_max(1 << 24), None);
        // Every input is an integer times one power of two.
        let inputs = Inputs::generate(4, 4, 2048, 3);
        let scale = 128.0; // 2^ceil(log2(91))
        assert!(inputs
            .a
            .iter()
            .all(|x| (x * scale).fract() == 0.0 && (x * scale).abs() <= 90.0));
    }

    #[test]
    fn every_summation_order_gives_the_same_bits() {
        let (inputs, reference) = setup(37, 29, 301);
        let mut naive = vec![0f32; 37 * 29];
        cpu::naive_sgemm(37, 29, 301, &inputs.a, &inputs.b, &mut naive);
        // Backwards, with FMA.
        let mut fused = vec![0f32; 37 * 29];
        for i in 0..37 {
            for j in 0..29 {
                let mut acc = 0f32;
                for p in (0..301).rev() {
                    acc = inputs.a[i * 301 + p].mul_add(inputs.b[p * 29 + j], acc);
                }
                fused[i * 29 + j] = acc;
            }
        }
        for other in [naive, fused] {
            let v = check_exact(&inputs, &reference, &other);
            assert!(v.passed, "{v:?}");
            assert!(v.exact);
            assert_eq!(v.elements, 37 * 29);
            assert_eq!((v.max_abs_error, v.tolerance, v.mismatches), (0.0, 0.0, 0));
            assert_eq!(v.f64_sample.elements, SAMPLE_ELEMENTS);
        }
    }

    /// The corruptions the fake driver can inject, each caught and named.
    #[test]
    fn one_low_bit_a_zero_or_a_nan_is_a_named_fault() {
        let (inputs, reference) = setup(33, 33, 2048);
        let at = 33 * 17 + 5;
        assert_ne!(reference.cpu[at], 0.0);
        let low_bit = f32::from_bits(reference.cpu[at].to_bits() ^ 1);
        for (bad, bits) in [(low_bit, Some(1)), (0.0, None), (f32::NAN, None)] {
            let mut gpu = reference.cpu.clone();
            gpu[at] = bad;
            let v = check_exact(&inputs, &reference, &gpu);
            assert!(!v.passed, "{bad}");
            assert_eq!(v.mismatches, 1, "{bad}");
            let first = v.first_mismatch.clone().expect("mismatch reported");
            assert_eq!(
                (first.row, first.col, first.index),
                (17, 5, Some(at as u64))
            );
            assert_eq!(first.kind, Some(MismatchKind::Exact));
            assert_eq!(first.expected, f64::from(reference.cpu[at]));
            let xor = reference.cpu[at].to_bits() ^ bad.to_bits();
            assert_eq!(first.differing_bits, Some(xor));
            if let Some(bits) = bits {
                assert_eq!(xor, bits);
                assert_eq!(describe_bits(xor), "mantissa bit 0");
            }
        }
    }

    /// What the rigorous tolerance used to let through: a flipped low
    /// mantissa bit at K = 2048 and a zero at K = 32768.
    #[test]
    fn what_the_old_tolerance_passed_is_caught() {
        let (inputs, reference) = setup(2, 2, 32768);
        let mut gpu = reference.cpu.clone();
        let at = (0..4).find(|&i| gpu[i] != 0.0).expect("a nonzero element");
        gpu[at] = 0.0;
        assert!(!check_exact(&inputs, &reference, &gpu).passed);
    }

    /// One element of an 8192 x 8192 result: too large for the fake's CPU
    /// emulation of the kernel, so the GPU's result is the CPU's own (as a
    /// correct GPU's is, bit for bit) with one element's low bit flipped.
    #[test]
    fn one_wrong_element_of_an_8192_squared_result_is_found() {
        let (n, k) = (8192u32, 16u32);
        let (inputs, reference) = setup(n, n, k);
        let mut gpu = reference.cpu.clone();
        let at = (0..gpu.len())
            .map(|i| (i + 40_000_000) % gpu.len())
            .find(|&i| gpu[i] != 0.0)
            .unwrap();
        gpu[at] = f32::from_bits(gpu[at].to_bits() ^ 1);
        // The rounding pass reads only its sampled elements: each is the f64
        // reference rounded to f32, as a correct GPU's would be within 1 ulp.
        let mut rounding = vec![0f32; gpu.len()];
        for s in &reference.sample {
            rounding[s.row as usize * n as usize + s.col as usize] = s.value as f32;
        }
        let v = check(&inputs, &reference, &gpu, &rounding);
        assert!(!v.passed);
        assert_eq!((v.elements, v.mismatches), (u64::from(n) * u64::from(n), 1));
        let first = v.first_mismatch.expect("named");
        assert_eq!(first.index, Some(at as u64));
        assert_eq!(first.differing_bits, Some(1));
    }

    #[test]
    fn the_rounding_pass_holds_for_a_correct_product_and_catches_a_wrong_one() {
        let (inputs, reference) = setup(40, 40, 4096);
        let mut rounding = rounding_product(&inputs);
        let v = check(&inputs, &reference, &reference.cpu, &rounding);
        assert!(v.passed, "{v:?}");
        assert!(v.f64_sample.max_abs_error <= v.f64_sample.tolerance);
        assert!(v.f64_sample.tolerance > 0.0);
        // √K tighter than the rigorous bound.
        assert!(probabilistic_gamma(4096) * 5.0 < gamma(4096));
        let s = &reference.sample[0];
        let index = s.row as usize * 40 + s.col as usize;
        // Well beyond the bound (about 0.03 here), well below the element
        // (about 20): a wrong value that still looks plausible.
        rounding[index] += 0.5;
        let v = check(&inputs, &reference, &reference.cpu, &rounding);
        assert!(!v.passed);
        assert_eq!(v.f64_sample.mismatches, 1);
        let first = v.first_mismatch.expect("named");
        assert_eq!(first.kind, Some(MismatchKind::F64Sample));
        assert_eq!(first.index, Some(index as u64));
    }

    #[test]
    fn a_short_result_fails() {
        let (inputs, reference) = setup(4, 4, 4);
        let v = check_exact(&inputs, &reference, &reference.cpu[..10]);
        assert!(!v.passed);
    }

    #[test]
    fn gamma_grows_with_k() {
        assert!(gamma(1) > 0.0);
        assert!(gamma(4096) > gamma(64));
        assert!((gamma(1) - F32_UNIT_ROUNDOFF).abs() < 1e-12);
        assert!(probabilistic_gamma(4096) > probabilistic_gamma(64));
    }

    #[test]
    fn each_wrong_element_is_counted_once() {
        let (inputs, reference) = setup(16, 16, 16);
        let mut gpu = reference.cpu.clone();
        for i in [3, 50, 200] {
            gpu[i] += 100.0;
        }
        let v = check_exact(&inputs, &reference, &gpu);
        assert!(!v.passed);
        assert_eq!(v.mismatches, 3, "{v:?}");
        assert_eq!(v.faults.len(), 3);
    }

    /// A fault at a place of C (a bad cell, a faulty unit) fails both
    /// products there: one wrong element, not two.
    #[test]
    fn an_element_wrong_in_both_passes_is_one_wrong_element() {
        let (inputs, reference) = setup(16, 16, 16);
        let mut places: Vec<usize> = reference
            .sample
            .iter()
            .map(|s| s.row as usize * 16 + s.col as usize)
            .collect();
        places.sort_unstable();
        places.dedup();
        let (mut gpu, mut rounding) = (reference.cpu.clone(), rounding_product(&inputs));
        for &i in &places {
            gpu[i] += 100.0;
            rounding[i] += 100.0;
        }
        // And one more, wrong only in the full pass.
        let extra = (0..256).find(|i| !places.contains(i)).unwrap();
        gpu[extra] += 100.0;
        let v = check(&inputs, &reference, &gpu, &rounding);
        let distinct = places.len() as u64;
        assert_eq!(v.full_pass_mismatches, Some(distinct + 1), "{v:?}");
        assert_eq!(v.f64_sample.mismatches, distinct, "{v:?}");
        assert_eq!(v.mismatches, distinct + 1, "{v:?}");
        assert!(v.mismatches <= v.elements);
    }

    #[test]
    fn bits_are_named() {
        assert_eq!(describe_bits(1 << 30), "exponent bit 30");
        assert_eq!(describe_bits(0x8000_0003), "sign bit, mantissa bits 0, 1");
        assert_eq!(describe_bits(0x402e_e3e0), "13 bits of exponent, mantissa");
        assert_eq!(describe_bits(0), "no bit");
    }
}
