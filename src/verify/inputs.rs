//! The matmul's inputs, made by a seeded generator: the exact pass's
//! integers times a power of two, sized from K so that every sum is exact,
//! and the rounding pass's multiples of 2⁻²³.
/// Integers below this magnitude are exact in f32 (24-bit significand).
const F32_EXACT_INTEGERS: u64 = 1 << 24;

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

    pub(super) fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }
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
    pub(super) a_row_abs: Vec<f64>,
    /// max_p |b_pj| for each column j of B (the fallback tolerance).
    pub(super) b_col_max: Vec<f64>,
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
    pub(super) fn rounding_dot_f64(&self, row: u32, col: u32) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
