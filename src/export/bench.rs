//! The text of `gpuprobe bench`: each GPU's table (size, kernel, GPU and
//! CPU GFLOP/s, share of the FP32 peak, speedup, result) and the lines on
//! cuBLAS and the CPU. Part of the text exporter, so not a contract.
use std::fmt::Write as _;

use crate::report::{
    BenchKernel, BenchRow, BenchStatus, CublasSource, CublasStatus, DeviceReport, Figure, Report,
};
use crate::units::percent;

/// ANSI colour around `text` when `color`.
fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A GFLOP/s figure for a column: no unit, three significant digits at
/// least.
fn gflops(g: f64) -> String {
    if g >= 100.0 {
        format!("{g:.0}")
    } else if g >= 1.0 {
        format!("{g:.1}")
    } else {
        format!("{g:.3}")
    }
}

/// A kernel whose every row was skipped for one reason (no tensor cores,
/// no cuBLAS handle): said once under the table instead of in each row.
fn skipped_throughout(rows: &[&BenchRow]) -> Option<String> {
    let first = rows.first()?;
    let reason = first.reason.as_ref()?;
    rows.iter()
        .all(|r| r.status == BenchStatus::Skip && r.reason.as_ref() == Some(reason))
        .then(|| reason.clone())
}

/// The device's bench table, when it has rows.
pub(super) fn table(out: &mut String, d: &DeviceReport, color: bool) {
    if d.bench.is_empty() {
        return;
    }
    // (kernels, reason): kernels skipped throughout for one reason.
    let mut notes: Vec<(Vec<BenchKernel>, String)> = Vec::new();
    let mut hidden = Vec::new();
    for kernel in BenchKernel::ALL {
        let rows: Vec<&BenchRow> = d.bench.iter().filter(|r| r.kernel == kernel).collect();
        if let Some(reason) = skipped_throughout(&rows) {
            hidden.push(kernel);
            match notes.iter_mut().find(|(_, r)| *r == reason) {
                Some((kernels, _)) => kernels.push(kernel),
                None => notes.push((vec![kernel], reason)),
            }
        }
    }
    let _ = writeln!(
        out,
        "  {:>6}  {:<7} {:>12} {:>12} {:>11} {:>8}  result",
        "N", "kernel", "GPU GFLOP/s", "CPU GFLOP/s", "of peak", "vs CPU"
    );
    let shown: Vec<&BenchRow> = d
        .bench
        .iter()
        .filter(|r| !hidden.contains(&r.kernel))
        .collect();
    let mut sizes: Vec<u32> = shown.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        let rows: Vec<&BenchRow> = shown.iter().copied().filter(|r| r.size == size).collect();
        // A size no kernel ran at, for one reason (memory, the deadline):
        // one line.
        if let (Some(reason), true) = (skipped_throughout(&rows), rows.len() > 1) {
            let _ = writeln!(out, "  {size:>6}  {:<7} skipped: {reason}", "all");
            continue;
        }
        for row in rows {
            self::row(out, row, color);
        }
    }
    for (kernels, reason) in notes {
        let names: Vec<&str> = kernels.iter().map(|k| k.as_str()).collect();
        let _ = writeln!(out, "  {}: not run: {reason}", names.join(", "));
    }
}

/// One row of the table.
fn row(out: &mut String, row: &BenchRow, color: bool) {
    let head = format!("  {:>6}  {:<7}", row.size, row.kernel);
    if row.gpu_gflops.is_none() {
        let why = row.reason.as_deref().unwrap_or("not run");
        let mark = match row.status {
            BenchStatus::Fail => paint(color, "31", "FAILED"),
            _ => "skipped".into(),
        };
        let _ = writeln!(out, "{head} {mark}: {why}");
        return;
    }
    let cell = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let result = match (&row.verification, row.status) {
        (Some(v), BenchStatus::Pass) if v.f64_sample.elements > 0 => {
            paint(color, "32", "exact; rounding within bound")
        }
        (_, BenchStatus::Pass) => paint(color, "32", "exact"),
        (Some(v), _) => paint(
            color,
            "31",
            &format!(
                "WRONG: {} of {} elements, {} of {} sampled",
                v.mismatches.saturating_sub(v.f64_sample.mismatches),
                v.elements,
                v.f64_sample.mismatches,
                v.f64_sample.elements
            ),
        ),
        (None, _) => paint(color, "31", "WRONG"),
    };
    let _ = writeln!(
        out,
        "{head} {:>12} {:>12} {:>11} {:>8}  {result}",
        cell(row.gpu_gflops.map(gflops)),
        cell(row.cpu_gflops.map(gflops)),
        cell(row.efficiency.and_then(Figure::value).map(percent)),
        cell(row.speedup_vs_cpu.map(|s| format!("{s:.1}x"))),
    );
}

/// The sweep's machine-wide lines: cuBLAS as found, and the CPU GEMM.
pub(super) fn machine(out: &mut String, r: &Report) {
    let Some(bench) = &r.bench else {
        return;
    };
    let cublas = &bench.cublas;
    let line = match (cublas.status, &cublas.error) {
        (CublasStatus::Loaded, _) => format!(
            "cuBLAS: {}{} (CUBLAS_DEFAULT_MATH: FP32, no TF32)",
            cublas.library_path.as_deref().unwrap_or("loaded"),
            match cublas.library_source {
                Some(CublasSource::LoaderPath) => ", on the loader's path",
                Some(CublasSource::PipWheel) => ", from a pip wheel",
                Some(CublasSource::Explicit) => ", named by --cublas or GPUPROBE_CUBLAS",
                None => "",
            }
        ),
        (CublasStatus::NotChecked, _) => return,
        (_, Some(error)) => format!("cuBLAS: {error}; only gpuprobe's kernels were measured"),
        (_, None) => "cuBLAS: not usable; only gpuprobe's kernels were measured".into(),
    };
    let _ = writeln!(out, "\n{line}");
    if let Some(cpu) = bench.cpu.iter().find(|c| c.status == BenchStatus::Pass) {
        let _ = writeln!(
            out,
            "CPU GEMM: {} on {} thread(s), timed while no GPU work ran",
            crate::cpu::LIBRARY,
            cpu.threads
        );
    }
}
