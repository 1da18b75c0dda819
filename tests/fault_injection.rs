//! Corruption detection as a measured number: each of the 32 bits of an
//! FP32 word flipped at many places of a product gpuprobe verified, and
//! what each check catches: the probe's comparison with the CPU
//! (`verify::check`, every element bit for bit), the burn's comparison with
//! the verified product (`checks::burn::difference`, the host twin of
//! kernels/compare.cu's predicate), and, beside them, the rule gpu-burn and
//! DCGM's diagnostic use: a product compared with the GPU's own first one,
//! wrong where `fabsf(x - first) > 1e-3` (../shared/FACTS.md section 13).
//! Then the memory test's buffer: each of the 32 bits of a word held at 0
//! at some addresses and at 1 at others (the fake driver's stuck-at
//! `memory_faults`), `gpuprobe memtest` run through the emulator, and every
//! pattern word read back with its bit flipped counted, by pattern: what
//! the memory test caught (its own report) beside what the 1e-3 rule would
//! on the same words read as FP32.
//!
//! The table it makes is docs/benchmarks.md's "Corruption detection"
//! section: the test fails when the two differ, and prints the table to put
//! there (a result measured, never written in by hand).
mod common;

use std::fmt::Write as _;

use gpuprobe::checks::burn::difference;
use gpuprobe::report::{Memtest, MemtestPatternKind as Kind};
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
            Class::LowMantissa => "product: mantissa bits 0-9 of a non-zero element",
            Class::HighMantissa => "product: mantissa bits 10-22 of a non-zero element",
            Class::Exponent => "product: exponent bits 23-30 of a non-zero element",
            Class::Sign => "product: sign bit of a non-zero element",
            Class::ZeroNotSign => "product: bits 0-30 of an exact zero",
            Class::ZeroSign => "product: sign bit of an exact zero (-0 is +0)",
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

/// How a count reads in the table: the count and its share.
fn pct(n: usize, of: usize) -> String {
    format!("{n} ({:.1}%)", 100.0 * n as f64 / of as f64)
}

/// The table: one row per class of product flips, then one per memory
/// test pattern.
fn table(outcomes: &[Outcome], memtest: &[PatternRow]) -> String {
    let mut classes: Vec<Class> = outcomes.iter().map(|o| o.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut t = String::from(
        "| Buffer: bit flipped | Flips | gpuprobe, bit for bit (probe: vs CPU; memtest: vs the pattern) | gpuprobe burn (vs verified product) | \\|Δ\\| > 1e-3 vs the expected word (gpu-burn, DCGM) |\n|---|---|---|---|---|\n",
    );
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
    for row in memtest {
        let _ = writeln!(
            t,
            "| memtest {}: one bit of a pattern word | {} | {} | — | {} |",
            row.pattern.as_str(),
            row.flipped,
            pct(row.caught, row.flipped),
            pct(row.absolute, row.flipped),
        );
    }
    t
}

/// Addresses per bit and stuck value: the memory test's words held wrong.
const MEMTEST_ADDRESSES: u64 = 24;

/// The memory test's region (`--size`), one chunk, and where the faulty
/// words start in it: past every buffer the memtest command allocates
/// before the region (the fake puts a fault in the oldest allocation that
/// reaches it; tests/scenarios/memtest-stuck-bit.json likewise).
const MEMTEST_SIZE: &str = "4MiB";
const FIRST_FAULT: u64 = 1 << 20;

/// The random pattern's first seed (`--seed`).
const SEED: u32 = 8;

/// One faulty cell: the word's index in the region, its bit, the value the
/// bit holds whatever is written.
#[derive(Clone, Copy)]
struct Stuck {
    word: u64,
    bit: u32,
    value: u32,
}

/// Every bit, held at 0 and at 1, at `MEMTEST_ADDRESSES` words each, no two
/// cells in one word.
fn stuck_cells() -> Vec<Stuck> {
    let mut cells = Vec::new();
    let mut word = FIRST_FAULT / 4;
    for bit in 0..32 {
        for value in 0..2 {
            for _ in 0..MEMTEST_ADDRESSES {
                cells.push(Stuck { word, bit, value });
                // Spread over the rest of the region, odd strides so that
                // the own-address and random words differ.
                word += 373;
            }
        }
    }
    assert!(word * 4 < 4 << 20, "the cells fit the region");
    cells
}

/// kernels/memtest.cu's gp_mix32 and gp_memtest_word, on the host: the
/// word a pattern writes at word `at` of the region.
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

fn random_word(at: u64, seed: u32) -> u32 {
    let (lo, hi) = (at as u32, (at >> 32) as u32);
    mix32(lo ^ mix32(hi ^ seed))
}

/// The words each pattern's sweeps expect to read back at word `at`, in
/// order (src/checks/memtest/patterns.rs's `sweeps`: a write then a
/// verify per walking step and per own-address half; moving inversions
/// write p, then read p, !p and p).
fn expected_reads(pattern: Kind, at: u64, seed: u32) -> Vec<u32> {
    let own = (at as u32) ^ ((at >> 32) as u32);
    match pattern {
        Kind::WalkingOnes => (0..32).map(|k| 1u32 << k).collect(),
        Kind::WalkingZeros => (0..32).map(|k| !(1u32 << k)).collect(),
        Kind::OwnAddress => vec![own, !own],
        Kind::MovingInversionsOnesZeros => vec![0, !0, 0],
        Kind::MovingInversionsRandom => {
            let r = random_word(at, seed);
            vec![r, !r, r]
        }
    }
}

/// One memory test pattern's row: pattern words read back with a bit
/// flipped, what the memory test counted, what the 1e-3 rule would.
struct PatternRow {
    pattern: Kind,
    flipped: usize,
    caught: usize,
    absolute: usize,
}

/// `gpuprobe memtest` over the stuck cells, through the fake driver and
/// its emulator: one pass of every pattern.
fn run_memtest(cells: &[Stuck]) -> Memtest {
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::scenario("memtest-stuck-bit")).unwrap(),
    )
    .unwrap();
    scenario["devices"][0]["memory_faults"] = cells
        .iter()
        .map(|c| {
            serde_json::json!({
                "offset": c.word * 4,
                "bit": c.bit,
                "kind": if c.value == 0 { "stuck_at_0" } else { "stuck_at_1" },
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memtest-every-bit.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let (mut cmd, _fake) = common::command_with_file(&path);
    let seed = SEED.to_string();
    let out = cmd
        .args([
            "memtest",
            "--json",
            "--duration",
            "1ms",
            "--size",
            MEMTEST_SIZE,
        ])
        .args(["--seed", &seed])
        .output()
        .unwrap();
    let (_, report) = common::parse_report(&out.stdout);
    let m = report.devices[0].memtest.clone().expect("a memtest report");
    assert_eq!((m.passes, m.seed), (1, SEED), "one pass, from the seed");
    m
}

/// Every stuck cell against every pattern: the words it flips, counted
/// on the host from the patterns, beside the memory test's own counts.
fn memtest_rows() -> Vec<PatternRow> {
    let cells = stuck_cells();
    let m = run_memtest(&cells);
    m.patterns
        .iter()
        .map(|p| {
            let (mut flipped, mut absolute) = (0, 0);
            for c in &cells {
                for want in expected_reads(p.pattern, c.word, SEED) {
                    if (want >> c.bit) & 1 == c.value {
                        continue;
                    }
                    let got = want ^ (1 << c.bit);
                    flipped += 1;
                    // NaN compares false: gpu-burn's rule does not count it.
                    let (x, e) = (f32::from_bits(got), f32::from_bits(want));
                    absolute += usize::from((x - e).abs() > ABSOLUTE);
                }
            }
            PatternRow {
                pattern: p.pattern,
                flipped,
                caught: usize::try_from(p.mismatches).unwrap(),
                absolute,
            }
        })
        .collect()
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

    // The memory test counts every pattern word read back with a bit
    // flipped: its count per pattern is the host's, word for word.
    let memtest = memtest_rows();
    assert_eq!(memtest.len(), 5, "every pattern ran");
    for row in &memtest {
        assert_eq!(row.caught, row.flipped, "{}", row.pattern.as_str());
    }

    let table = table(&outcomes, &memtest);
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
