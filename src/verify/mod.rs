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

mod compare;
mod detail;
mod inputs;
mod reference;

pub use compare::check;
pub use detail::{describe_bits, failed_detail, passed_detail};
pub use inputs::{exact_integer_max, Inputs, Rng};
pub use reference::Reference;

/// Unit roundoff of f32.
const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_grows_with_k() {
        assert!(gamma(1) > 0.0);
        assert!(gamma(4096) > gamma(64));
        assert!((gamma(1) - F32_UNIT_ROUNDOFF).abs() < 1e-12);
        assert!(probabilistic_gamma(4096) > probabilistic_gamma(64));
    }
}
