//! Human-readable quantities for text output and details, and the two
//! grammars of quantities given as text: sizes and "major.minor" versions.

/// Bytes in binary units, as nvidia-smi and free(1) count them: "79.1 GiB".
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// GFLOP/s with a sensible unit: "812 GFLOP/s", "48.3 TFLOP/s".
#[must_use]
pub fn flops(gflops: f64) -> String {
    if gflops >= 1000.0 {
        format!("{:.1} TFLOP/s", gflops / 1000.0)
    } else if gflops >= 10.0 {
        format!("{gflops:.0} GFLOP/s")
    } else {
        format!("{gflops:.2} GFLOP/s")
    }
}

/// A value in text: plain where it is short ("2.5", "-0.001953125"),
/// scientific where it is large or tiny ("1.7976931e308"), so no value
/// prints as hundreds of digits.
#[must_use]
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // A value that is an f32 prints as one: its shortest form ("2.7326586").
    let plain = if f64::from(x as f32).to_bits() == x.to_bits() {
        (x as f32).to_string()
    } else {
        x.to_string()
    };
    if x == 0.0 || (1e-4..1e7).contains(&x.abs()) && plain.len() <= 16 {
        plain
    } else {
        format!("{x:.7e}")
    }
}

/// A fraction as a percentage with two significant digits at least, so
/// that a tiny efficiency does not read as 0%.
#[must_use]
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        let decimals = (1.0 - p.log10().floor()).clamp(1.0, 9.0) as usize;
        format!("{p:.decimals$}%")
    }
}

/// "16GiB", "500MB", "1.5 GiB", "2G" (binary, as Docker reads it), "1024".
/// Not inlined: two flags parse sizes, and one copy is enough.
#[inline(never)]
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 16GiB, 500MB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// "12.2", or "12" for "12.0", to (major, minor): the grammar of CUDA
/// versions (`cuda::CudaVersion`) and compute capabilities
/// (`report::ComputeCapability`) alike. Surrounding spaces are ignored;
/// parts beyond u32 are refused rather than wrapped.
#[must_use]
pub fn parse_major_minor(text: &str) -> Option<(u32, u32)> {
    let trimmed = text.trim();
    let (major, minor) = trimmed.split_once('.').unwrap_or((trimmed, "0"));
    let part = |p: &str| {
        // u32::from_str takes a leading '+'; a version does not.
        if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse::<u32>().ok()
        } else {
            None
        }
    };
    Some((part(major)?, part(minor)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(85_520_809_984), "79.6 GiB");
        assert_eq!(flops(812.4), "812 GFLOP/s");
        assert_eq!(flops(48_321.0), "48.3 TFLOP/s");
        assert_eq!(flops(1.234), "1.23 GFLOP/s");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(-0.001_953_125), "-0.001953125");
        assert_eq!(number(f64::MAX), "1.7976931e308");
        assert_eq!(number(1e-20), "1.0000000e-20");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::from(2.732_658_6_f32)), "2.7326586");
    }

    #[test]
    fn percentages_keep_two_significant_digits() {
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.0123), "1.2%");
        assert_eq!(percent(0.000_003_56), "0.00036%");
        assert_eq!(percent(0.0), "0%");
    }
}
