//! The comparison of the GPU's products with the reference: every element
//! of the exact pass, bit for bit (or within the fallback bound), and the
//! rounding pass's sample within γ̃(K)·Σ|a||b|, into the report's
//! `Verification`.
use crate::report::{Mismatch, MismatchKind, SampleCheck, Verification};

use super::inputs::Inputs;
use super::reference::Reference;
use super::{gamma, probabilistic_gamma, LISTED_FAULTS};

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

#[cfg(test)]
// Exact equality of floats is what these tests are about.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::cpu;
    use crate::verify::{describe_bits, SAMPLE_ELEMENTS};

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
}
