//! `gpuprobe bench`: the sweep (src/checks/bench) with a progress bar on a
//! terminal, and its GFLOP/s drawn as an SVG (`--plot`).
//!
//! The report is the probe's, with `command: bench`, each GPU's `bench`
//! rows and the top-level `bench`; the table is the text exporter's.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::checks::progress::{Progress, Scope};
use crate::export::OutputFormat;
use crate::plot::{render_svg, Panel, Plot, Scale, Series};
use crate::report::{BenchKernel, BenchStatus, CublasStatus, Figure, Report};
use crate::stage::Stage;

/// Runs the sweep, measuring the cuBLAS at `cublas` (`--cublas`,
/// GPUPROBE_CUBLAS) when given, else the one the search finds; a progress
/// bar on stderr while it runs, when stderr is a terminal and the output
/// is text (not with --json, whose reader is a program).
#[must_use]
pub fn run(plan: &crate::judge::Plan, format: OutputFormat, cublas: Option<PathBuf>) -> Report {
    if let Some(path) = cublas {
        crate::cuda::cublas::use_explicit(path);
    }
    let shown = format == OutputFormat::Text && std::io::stderr().is_terminal();
    let sizes = match &plan.probe.work {
        crate::probe::Work::Sweep { sizes } => sizes.as_slice(),
        _ => &[],
    };
    let bar = Bar::new(shown, sizes);
    let report = crate::judge::run(plan, |progress, _| bar.tick(progress));
    bar.finish();
    report
}

/// The sweep's progress: one step per size on the CPU and one per row
/// (kernel and size) on each GPU.
struct Bar {
    bar: ProgressBar,
    sizes: Vec<u32>,
}

impl Bar {
    fn new(shown: bool, sizes: &[u32]) -> Bar {
        let bar = if shown {
            let bar = ProgressBar::with_draw_target(
                Some(sizes.len() as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "gpuprobe bench {elapsed:>4} [{bar:30}] {pos}/{len} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Bar {
            bar,
            sizes: sizes.to_vec(),
        }
    }

    fn tick(&self, progress: &Progress) {
        if self.bar.is_hidden() {
            return;
        }
        let (done, total, cpu_done) = progress.update(|r| {
            let cpu_done = r.bench.as_ref().map_or(0, |b| b.cpu.len());
            let cublas = r
                .bench
                .as_ref()
                .is_some_and(|b| b.cublas.status == CublasStatus::Loaded);
            // Rows per size: every kernel but cuBLAS, and cuBLAS when loaded.
            let per_gpu = BenchKernel::ALL.len() - usize::from(!cublas);
            let gpus = r
                .devices
                .iter()
                .filter(|d| d.checks.iter().any(|c| Stage::Context.is(&c.name)))
                .count();
            let rows: usize = r.devices.iter().map(|d| d.bench.len()).sum();
            let total = self.sizes.len() * (1 + gpus * per_gpu);
            (cpu_done + rows, total, cpu_done)
        });
        let on_cpu = progress
            .running()
            .iter()
            .any(|(scope, stage)| *scope == Scope::Machine && *stage == Stage::BenchCpu);
        let message = match (on_cpu, cpu_done) {
            (true, k) => self.sizes.get(k).map(|n| format!("N={n} on the CPU")),
            (false, 0) => Some("starting".into()),
            (false, k) => self.sizes.get(k - 1).map(|n| format!("N={n} on the GPUs")),
        };
        self.bar.set_length(total.max(1) as u64);
        self.bar.set_position(done as u64);
        self.bar.set_message(message.unwrap_or_default());
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Writes `--plot` (atomically), if asked; `Err(OUTPUT)` when it could not
/// be written, said on stderr.
pub fn plot(report: &Report, path: Option<&Path>) -> Result<(), i32> {
    write_plot(path, || chart(report))
}

/// Writes the plot `make` draws to `--plot` (atomically), if asked;
/// `Err(OUTPUT)` when it could not be written, said on stderr. Shared by
/// the commands that plot (`bench`, `burn`).
pub fn write_plot(path: Option<&Path>, make: impl FnOnce() -> Plot) -> Result<(), i32> {
    let Some(path) = path else {
        return Ok(());
    };
    let written = render_svg(&make())
        .map_err(|e| e.to_string())
        .and_then(|svg| {
            crate::output::write_atomic(path, svg.as_bytes()).map_err(|e| e.to_string())
        });
    written.map_err(|e| {
        crate::output::stderr_line!("gpuprobe: cannot write --plot {}: {e}", path.display());
        crate::exit_code::OUTPUT
    })
}

/// GFLOP/s against N on a log2 axis: one line per GPU and kernel (verified
/// results only: a wrong product has no speed worth drawing), the CPU's,
/// and each GPU's FP32 peak as a dashed roofline.
#[must_use]
pub fn chart(report: &Report) -> Plot {
    let benched: Vec<_> = report
        .devices
        .iter()
        .filter(|d| !d.bench.is_empty())
        .collect();
    let several = benched.len() > 1;
    let mut series = Vec::new();
    let mut rooflines = Vec::new();
    for d in &benched {
        let prefix = if several {
            format!("GPU {} ", d.index)
        } else {
            String::new()
        };
        for kernel in BenchKernel::ALL {
            let points: Vec<(f64, f64)> = d
                .bench
                .iter()
                .filter(|r| r.kernel == kernel && r.status == BenchStatus::Pass)
                .filter_map(|r| r.gpu_gflops.map(|g| (f64::from(r.size), g)))
                .collect();
            if !points.is_empty() {
                series.push(Series {
                    name: format!("{prefix}{kernel}"),
                    points,
                });
            }
        }
        if let Some(Figure::Value(peak)) = d.peak.as_ref().map(|p| p.fp32_gflops) {
            rooflines.push((format!("{prefix}FP32 peak ({peak:.0} GFLOP/s)"), peak));
        }
    }
    if let Some(bench) = &report.bench {
        let points: Vec<(f64, f64)> = bench
            .cpu
            .iter()
            .filter_map(|c| c.gflops.map(|g| (f64::from(c.size), g)))
            .collect();
        if !points.is_empty() {
            series.push(Series {
                name: "CPU".into(),
                points,
            });
        }
    }
    let title = match benched.as_slice() {
        [one] => format!(
            "gpuprobe bench: {}",
            one.name.as_deref().unwrap_or("GPU (name unknown)")
        ),
        _ => "gpuprobe bench".into(),
    };
    Plot {
        title,
        x_label: "N (N x N x N GEMM)".into(),
        x_scale: Scale::Log2,
        panels: vec![Panel {
            y_label: "GFLOP/s".into(),
            series,
            reference_lines: rooflines,
        }],
    }
}
