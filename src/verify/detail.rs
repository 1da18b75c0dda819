//! The verify stage's detail in words: what passed, or how many elements
//! are wrong and the first of them, with the bits that differ.
use crate::report::{MismatchKind, Verification};
use crate::units::number;

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
mod tests {
    use super::*;

    #[test]
    fn bits_are_named() {
        assert_eq!(describe_bits(1 << 30), "exponent bit 30");
        assert_eq!(describe_bits(0x8000_0003), "sign bit, mantissa bits 0, 1");
        assert_eq!(describe_bits(0x402e_e3e0), "13 bits of exponent, mantissa");
        assert_eq!(describe_bits(0), "no bit");
    }
}
