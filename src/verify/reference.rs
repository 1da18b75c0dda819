//! What the GPU's products are compared with: the CPU's product of the
//! exact inputs and an f64 reference of a sample of the rounding pass's.
use super::inputs::{Inputs, Rng};
use super::SAMPLE_ELEMENTS;

/// One element of the f64 reference.
pub(super) struct SampleElement {
    pub(super) row: u32,
    pub(super) col: u32,
    pub(super) value: f64,
    pub(super) abs_sum: f64,
}

/// What the GPU's products are compared with.
pub struct Reference {
    /// The CPU's f32 product of the exact pass's inputs, all elements.
    pub cpu: Vec<f32>,
    pub(super) sample_seed: u64,
    /// f64 reference elements of the rounding pass's product.
    pub(super) sample: Vec<SampleElement>,
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
