//! Human-readable quantities for text output and details.

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
    }
}
