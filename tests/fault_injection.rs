//! Corruption detection as a measured number: each of the 32 bits of an
//! FP32 word flipped at many places of a product gpuprobe verified, and
//! what each check catches: the probe's comparison with the CPU
//! (`verify::check`, every element bit for bit), the burn's comparison with
//! the verified product (`checks::burn::difference`, the host twin of
//! kernels/compare.cu's predicate), and, beside them, the rule gpu-burn and
//! DCGM's diagnostic use: a product compared with the GPU's own first one,
//! wrong where `fabsf(x - first) > 1e-3` (../shared/FACTS.md section 13).
//!
//! The table it makes is docs/benchmarks.md's "Corruption detection"
//! section: the test fails when the two differ, and prints the table to put
//! there (a result measured, never written in by hand).
use std::fmt::Write as _;

use gpuprobe::checks::burn::difference;
use gpuprobe::verify::{check, Inputs, Reference};

/// The product: 64 x 64 x 64 of gpuprobe's exact inputs (integers scaled
/// into (-1, 1), so every sum is exact and the CPU's product is the GPU's,
/// bit for bit).
const EDGE: u32 = 64;

/// Places flipped in non-zero elements, spread evenly over C.
const PLACES: usize = 64;

/// Places whose element is made an exact zero (+0) in both the verified
/// product and the one checked: a zero's sign bit is its own row.
const ZERO_PLACES: usize = 16;

/// gpu-burn's and DCGM's bound, as gpu-burn's compare kernel writes it.
const ABSOLUTE: f32 = 1e-3;

/// One flip: the class of its row in the table, and what caught it.
struct Outcome {
    class: Class,
    probe: bool,
    burn: bool,
    absolute: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    LowMantissa,
    HighMantissa,
    Exponent,
    Sign,
    ZeroNotSign,
    ZeroSign,
}

impl Class {
    fn of(bit: u32, zero: bool) -> Class {
        match (zero, bit) {
            (true, 31) => Class::ZeroSign,
            (true, _) => Class::ZeroNotSign,
            (false, 0..=9) => Class::LowMantissa,
            (false, 10..=22) => Class::HighMantissa,
            (false, 23..=30) => Class::Exponent,
            (false, _) => Class::Sign,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Class::LowMantissa => "mantissa bits 0-9 of a non-zero element",
            Class::HighMantissa => "mantissa bits 10-22 of a non-zero element",
            Class::Exponent => "exponent bits 23-30 of a non-zero element",
            Class::Sign => "sign bit of a non-zero element",
            Class::ZeroNotSign => "bits 0-30 of an exact zero",
            Class::ZeroSign => "sign bit of an exact zero (-0 is +0)",
        }
    }
}

/// Every flip of every bit at every place, checked three ways.
fn outcomes() -> Vec<Outcome> {
    let inputs = Inputs::generate(EDGE, EDGE, EDGE, 0x5eed);
    assert!(inputs.exact(), "64³ sums are exact");
    let n = EDGE as usize;
    let mut golden = vec![0f32; n * n];
    gpuprobe::cpu::naive_sgemm(n, n, n, &inputs.a, &inputs.b, &mut golden);
    let nonzero: Vec<usize> = (0..golden.len()).filter(|i| golden[*i] != 0.0).collect();
    let places: Vec<usize> = (0..PLACES)
        .map(|p| nonzero[p * nonzero.len() / PLACES])
        .collect();
    let zeros: Vec<usize> = (0..ZERO_PLACES)
        .map(|p| (p * golden.len() / ZERO_PLACES + 7) % golden.len())
        .filter(|i| !places.contains(i))
        .collect();
    for &z in &zeros {
        golden[z] = 0.0;
    }
    let reference = Reference::exact_only(golden.clone());
    let mut out = Vec::new();
    for (place, zero) in places
        .iter()
        .map(|p| (*p, false))
        .chain(zeros.iter().map(|z| (*z, true)))
    {
        for bit in 0..32 {
            let mut got = golden.clone();
            got[place] = f32::from_bits(golden[place].to_bits() ^ (1 << bit));
            let verification = check(&inputs, &reference, &got, &[]);
            let (x, g) = (got[place], golden[place]);
            out.push(Outcome {
                class: Class::of(bit, zero),
                probe: verification.mismatches > 0,
                burn: difference(&golden, &got, EDGE).is_some(),
                // NaN compares false: gpu-burn's rule does not count it.
                absolute: (x - g).abs() > ABSOLUTE,
            });
        }
    }
    out
}

/// The table, one row per class.
fn table(outcomes: &[Outcome]) -> String {
    let mut classes: Vec<Class> = outcomes.iter().map(|o| o.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut t = String::from(
        "| Bit flipped | Flips | gpuprobe probe (vs CPU, bit for bit) | gpuprobe burn (vs verified product) | \\|Δ\\| > 1e-3 vs first product (gpu-burn, DCGM) |\n|---|---|---|---|---|\n",
    );
    let pct = |n: usize, of: usize| format!("{n} ({:.1}%)", 100.0 * n as f64 / of as f64);
    for class in classes {
        let rows: Vec<&Outcome> = outcomes.iter().filter(|o| o.class == class).collect();
        let count = |f: fn(&Outcome) -> bool| rows.iter().filter(|o| f(o)).count();
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} |",
            class.label(),
            rows.len(),
            pct(count(|o| o.probe), rows.len()),
            pct(count(|o| o.burn), rows.len()),
            pct(count(|o| o.absolute), rows.len()),
        );
    }
    t
}

#[test]
fn every_flip_that_changes_the_value_is_caught() {
    let outcomes = outcomes();
    for o in &outcomes {
        // Every flip changes the number except a zero's sign, which both
        // of gpuprobe's checks treat as the same number by design.
        let changes = o.class != Class::ZeroSign;
        assert_eq!(o.probe, changes, "{:?}", o.class);
        assert_eq!(o.burn, changes, "{:?}", o.class);
    }
    // gpu-burn's rule misses most flips of the low mantissa bits of the
    // product's elements (|x| < 64 here) and every NaN it makes.
    let missed = outcomes
        .iter()
        .filter(|o| o.class == Class::LowMantissa && !o.absolute)
        .count();
    assert!(missed > 0);

    let table = table(&outcomes);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md"),
    )
    .unwrap();
    assert!(
        doc.contains(&table),
        "docs/benchmarks.md's \"Corruption detection\" table is not what this test measures; \
         put this there:\n\n{table}"
    );
}
