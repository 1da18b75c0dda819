//! `gpuprobe bench`: every GEMM gpuprobe has (and cuBLAS's, when the image
//! has it) at each size of a sweep, on every selected GPU, each result
//! verified as the probe's matmul is, beside the CPU GEMM at the same size.
//!
//! It runs after the probe's machine stages (driver, cuInit, enumeration,
//! selection), so a container without a GPU gets the probe's diagnoses and
//! exit codes. Then the sweep goes size by size, in rounds: this thread
//! makes a size's inputs and CPU product, timing it (the CPU baseline)
//! while every GPU thread waits idle; then each GPU runs that size's
//! kernels on its own thread, where its context lives; the next round
//! starts when all are done. So the CPU is timed with no GPU thread taking
//! its cores, the GPUs share each size's reference, and one size's buffers
//! exist at a time.
//!
//! A size that does not fit (host memory, GPU memory, or what is left
//! before the deadline, projected from the size before it) is skipped with
//! the reason, and so are the larger ones; the session's watchdog ends the
//! run at the deadline whatever a driver call does.
mod cublas;
mod gpu;

use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use super::progress::{Done, Failed, Progress, Scope};
use super::SAMPLE_SALT;
use crate::cpu::{self, Repeat};
use crate::cuda::{kernels, CuDevice, Driver};
use crate::report::{
    BenchCpu, BenchReport, BenchStatus, CublasInfo, CublasStatus, DeviceStatus, Figure,
    MissingInput, NotRun,
};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::bytes;
use crate::verify::{Inputs, Reference};

/// One size of the sweep, as every GPU receives it.
pub(super) enum Round {
    /// Not run on any GPU, for this reason.
    Skip {
        size: u32,
        why: NotRun,
        reason: String,
    },
    Run(Box<Prepared>),
}

impl Round {
    fn size(&self) -> u32 {
        match self {
            Round::Skip { size, .. } => *size,
            Round::Run(p) => p.size,
        }
    }
}

/// A size's inputs and what the GPUs' results are checked against.
pub(super) struct Prepared {
    size: u32,
    inputs: Inputs,
    /// The CPU product of the exact inputs, with the rounding pass's f64
    /// sample.
    reference: Reference,
    /// The tensor-core kernels' inputs where the exact inputs are not exact
    /// in BF16 (below N = 256 their integers pass 2⁸); `None`: the exact
    /// inputs themselves.
    tensor_inputs: Option<Inputs>,
    /// The tensor-core products' reference (exact pass only), made by the
    /// first GPU that needs it: none is needed below compute capability 8.0.
    tensor_reference: OnceLock<Reference>,
    /// The CPU GEMM at this size: timed runs and their mean.
    cpu_runs: (u32, Duration),
    /// The CPU GEMM's speed at this size.
    cpu_gflops: Option<f64>,
}

impl Prepared {
    /// The tensor-core kernels' inputs.
    fn tensor_inputs(&self) -> &Inputs {
        self.tensor_inputs.as_ref().unwrap_or(&self.inputs)
    }

    /// The tensor-core kernels' reference, made on first use.
    fn tensor_reference(&self) -> &Reference {
        self.tensor_reference
            .get_or_init(|| match &self.tensor_inputs {
                None => Reference::exact_only(self.reference.cpu.clone()),
                Some(t) => {
                    let n = self.size as usize;
                    let threads = cpu::available_cpus();
                    Reference::exact_only(cpu::product(n, n, n, &t.a, &t.b, threads))
                }
            })
    }
}

/// What the sweep runs: the sizes, ascending, and the inputs' seed and
/// repeat (`probe::Work::Sweep` and the plan's matmul settings).
pub struct Sweep<'a> {
    pub sizes: &'a [u32],
    pub seed: u64,
    pub repeat: Repeat,
}

/// Runs the sweep on the `probed` GPUs (slot, handle) and records it.
pub fn run(
    progress: &Progress,
    sweep: &Sweep<'_>,
    driver: &Driver,
    probed: &[(usize, CuDevice)],
    nvml: Option<&'static telemetry::Loaded>,
    cpus: cpu::Cpus,
    deadline: Option<Instant>,
) {
    let slots: Vec<usize> = probed.iter().map(|(slot, _)| *slot).collect();
    progress.update(|r| {
        for (slot, d) in r.devices.iter_mut().enumerate() {
            if !slots.contains(&slot) && d.status != DeviceStatus::Fail {
                d.status = DeviceStatus::Skipped;
            }
        }
        r.bench = Some(BenchReport {
            sizes: sweep.sizes.to_vec(),
            cpu: Vec::new(),
            cublas: CublasInfo {
                status: CublasStatus::NotChecked,
                library_path: None,
                library_candidates: Vec::new(),
                library_source: None,
                error: None,
            },
        });
    });
    if probed.is_empty() {
        return;
    }
    let cublas = cublas::check(progress);
    std::thread::scope(|scope| {
        let mut gpus = Vec::new();
        for &(slot, device) in probed {
            let (rounds_tx, rounds) = mpsc::channel::<Arc<Round>>();
            let (done, done_rx) = mpsc::channel::<()>();
            let job = gpu::Job {
                driver,
                progress,
                slot,
                device,
                cublas,
                repeat: sweep.repeat,
                deadline,
                nvml,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("gpu{slot}"))
                .spawn_scoped(scope, move || gpu::sweep(&job, &rounds, &done));
            match spawned {
                Ok(_) => gpus.push((rounds_tx, done_rx)),
                Err(e) => {
                    progress.stage(Scope::Device(slot), Stage::Context, || {
                        Err::<Done<()>, _>(
                            Failed::new(format!("could not start a thread: {e}"))
                                .not_run(NotRun::Internal),
                        )
                    });
                }
            }
        }
        let mut plan = Plan::new(sweep, cpus, gpus.len(), deadline);
        for &size in sweep.sizes {
            let round = Arc::new(plan.prepare(progress, size));
            // A GPU thread that has gone (it panicked) is dropped from the
            // sweep; the others run the size in parallel.
            gpus.retain(|(tx, _)| tx.send(Arc::clone(&round)).is_ok());
            gpus.retain(|(_, done)| done.recv().is_ok());
        }
        // Dropping the senders ends each GPU's sweep.
    });
    progress.update(fill_efficiency);
}

/// Each row's efficiency against its GPU's FP32 peak, once the peak's
/// inputs (NVML's maximum clock, read after the sweep) are in.
fn fill_efficiency(report: &mut crate::report::Report) {
    for d in &mut report.devices {
        let peak = crate::peak::peak_of(d).fp32_gflops;
        for row in &mut d.bench {
            row.efficiency = row.gpu_gflops.map(|g| match peak {
                Figure::Value(p) if g.is_finite() => Figure::Value(g / p),
                Figure::Value(_) => Figure::Missing(MissingInput::NoMatmul),
                missing @ Figure::Missing(_) => missing,
            });
        }
    }
}

/// Edge of the CPU product timed to project the first large size's.
const CALIBRATION: u32 = 256;

/// The CPU side of the sweep: what each size takes, and when the rest
/// cannot fit before the deadline.
struct Plan {
    seed: u64,
    repeat: Repeat,
    cpus: cpu::Cpus,
    gpus: usize,
    deadline: Option<Instant>,
    /// The last CPU product made: (size, time).
    last: Option<(u32, Duration)>,
    /// Set once a size did not fit before the deadline: every larger one
    /// is skipped with it.
    stopped: Option<String>,
}

impl Plan {
    fn new(sweep: &Sweep<'_>, cpus: cpu::Cpus, gpus: usize, deadline: Option<Instant>) -> Plan {
        Plan {
            seed: sweep.seed,
            repeat: sweep.repeat,
            cpus,
            gpus,
            deadline,
            last: None,
            stopped: None,
        }
    }

    /// The `bench_cpu` check of one size: its round for the GPUs, skipped
    /// or prepared (inputs, CPU product, CPU speed).
    fn prepare(&mut self, progress: &Progress, size: u32) -> Round {
        let round = progress.stage(Scope::Machine, Stage::BenchCpu, || {
            Ok(match self.why_not(size) {
                Some((why, reason)) => {
                    let detail = format!("N={size} not run: {reason}");
                    Done::skip(Round::Skip { size, why, reason }, why, detail, None)
                }
                None => self.make(size),
            })
        });
        let round = round.unwrap_or_else(|| Round::Skip {
            size,
            why: NotRun::EarlierFailure,
            reason: "the CPU reference failed".into(),
        });
        let row = match &round {
            Round::Skip { reason, .. } => BenchCpu {
                size,
                status: BenchStatus::Skip,
                reason: Some(reason.clone()),
                threads: self.cpus.count as u32,
                iterations: 0,
                time_ms: None,
                gflops: None,
            },
            Round::Run(p) => BenchCpu {
                size,
                status: BenchStatus::Pass,
                reason: None,
                threads: self.cpus.count as u32,
                iterations: p.cpu_runs.0,
                time_ms: Some(p.cpu_runs.1.as_secs_f64() * 1e3),
                gflops: p.cpu_gflops,
            },
        };
        progress.update(|r| {
            if let Some(bench) = r.bench.as_mut() {
                bench.cpu.push(row);
            }
        });
        debug_assert_eq!(round.size(), size);
        round
    }

    /// Why `size` cannot run now, if it cannot.
    fn why_not(&mut self, size: u32) -> Option<(NotRun, String)> {
        if let Some(stopped) = &self.stopped {
            return Some((NotRun::OutOfTime, stopped.clone()));
        }
        // A and B of both verification passes, the CPU product and the
        // tensor-core reference, and on each GPU's thread the NaN fill of
        // C and the two products read back.
        let need = (6 + 3 * self.gpus as u64) * u64::from(size) * u64::from(size) * 4;
        let root = crate::environment::root();
        if let Some(available) = crate::environment::available_memory(&root).filter(|a| need > *a) {
            return Some((
                NotRun::NoMemory,
                format!(
                    "N={size} needs {} of host memory, {} available",
                    bytes(need),
                    bytes(available)
                ),
            ));
        }
        let left = self.deadline?.saturating_duration_since(Instant::now());
        let product = self.project(size);
        // Short products are timed again for at least cpu::MIN_TIME.
        let cost = if product < cpu::MIN_TIME {
            product + 2 * cpu::MIN_TIME
        } else {
            product
        };
        if cost <= left / 2 {
            return None;
        }
        self.stopped = Some("a smaller size did not fit before the deadline (--timeout)".into());
        Some((
            NotRun::OutOfTime,
            format!(
                "the CPU reference at N={size} would take about {:.1} s on {} thread(s), and \
                 half of what is left before the deadline is {:.1} s; larger sizes are skipped \
                 too (--timeout sets the deadline)",
                cost.as_secs_f64(),
                self.cpus.count,
                (left / 2).as_secs_f64()
            ),
        ))
    }

    /// What the CPU product at `size` should take: the last one scaled by
    /// the flops (larger products run at least as fast per flop, so this
    /// errs long), or a 256³ product's scaled. A product smaller than that
    /// is no basis: its time is mostly starting the threads, which a
    /// busy machine stretches, and scaled by the cube it projected a
    /// 512³ product at minutes.
    fn project(&self, size: u32) -> Duration {
        let scale = |from: u32| (f64::from(size) / f64::from(from)).powi(3);
        match self.last {
            Some((n, took)) if n >= CALIBRATION => took.mul_f64(scale(n)),
            _ if size <= CALIBRATION => Duration::ZERO,
            _ => {
                let edge = CALIBRATION as usize;
                let ones = vec![1f32; edge * edge];
                let started = Instant::now();
                let _ = cpu::product(edge, edge, edge, &ones, &ones, self.cpus.count);
                started.elapsed().mul_f64(scale(CALIBRATION))
            }
        }
    }

    /// A size's inputs, CPU product and CPU speed.
    fn make(&mut self, size: u32) -> Done<Round> {
        let n = size as usize;
        let threads = self.cpus.count;
        let inputs = Inputs::generate(size, size, size, self.seed);
        let started = Instant::now();
        let product = cpu::product(n, n, n, &inputs.a, &inputs.b, threads);
        let took = started.elapsed();
        self.last = Some((size, took));
        // A product that took cpu::MIN_TIME is a long enough measurement
        // by itself: timing it again would double the wait at large sizes
        // for nothing. A shorter one is timed again for at least that
        // long, as the probe's baseline is, within what is left.
        let (runs, mean) = if took >= cpu::MIN_TIME {
            (1, took)
        } else {
            let until = self.deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                (Instant::now() + left / 2, took)
            });
            let m = cpu::measure(n, n, n, &inputs.a, &inputs.b, threads, self.repeat, until);
            (m.iterations, m.mean)
        };
        let gflops = cpu::gflops(n, n, n, mean);
        // BF16 keeps 8 significant bits: the exact inputs' integers (below
        // 2^8 from N = 256 on) are then exact in BF16 and TF32 as they are.
        let bf16_exact = inputs
            .a
            .iter()
            .chain(&inputs.b)
            .all(|x| kernels::to_bf16_exact(*x).to_bits() == x.to_bits());
        let tensor_inputs = (!bf16_exact).then(|| {
            let mut t = Inputs::generate(size, size, size, self.seed);
            for x in t.a.iter_mut().chain(t.b.iter_mut()) {
                *x = kernels::to_bf16_exact(*x);
            }
            t
        });
        let reference = Reference::new(&inputs, product, self.seed ^ SAMPLE_SALT);
        let detail = format!(
            "N={size}: {} on {threads} thread(s), {runs} timed run(s) of {:.3} ms, with no GPU \
             work running",
            crate::units::flops(gflops),
            mean.as_secs_f64() * 1e3
        );
        let prepared = Prepared {
            size,
            inputs,
            reference,
            tensor_inputs,
            tensor_reference: OnceLock::new(),
            cpu_runs: (runs, mean),
            cpu_gflops: Some(gflops).filter(|g| *g > 0.0),
        };
        Done::pass(Round::Run(Box::new(prepared)), detail)
    }
}
