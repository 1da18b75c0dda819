//! The work of `probe::Work::Gpus`: each selected GPU's pipeline on a
//! thread of its own beside the CPU product it is checked against, then the
//! CPU baseline and each GPU's speed over it. The orchestrator hands over
//! the GPUs and the plan's `GpuWork`; which checks run is the plan's.
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::cpu_reference::{cpu_baseline, cpu_reference, cpu_reference_fits};
use super::progress::{Done, Failed, Progress, Scope};
use super::{burn, gpu, pipeline, CpuWork, GpuWork, SAMPLE_SALT};
use crate::cpu::{self, Repeat};
use crate::cuda;
use crate::report::{CheckStatus, DeviceStatus, NotRun, NotVerified, ReportCommand};
use crate::stage::Stage;
use crate::telemetry;
use crate::verify::{Inputs, Reference};

/// The GPUs the orchestrator found and what the plan asks of them.
pub struct Gpus<'a> {
    pub progress: &'a Progress,
    pub driver: &'a cuda::Driver,
    pub nvml: Option<&'static telemetry::Loaded>,
    pub deadline: Option<Instant>,
    /// The selected GPUs the driver identified: (slot, handle).
    pub probed: Vec<(usize, cuda::CuDevice)>,
    /// Every selected slot (a GPU not identified included).
    pub selected: &'a [usize],
    pub command: ReportCommand,
    /// The matmul's edge, repeat and the inputs' seed.
    pub size: u32,
    pub repeat: Repeat,
    pub seed: u64,
}

/// Runs `work` on the GPUs; whether the matmul ran (its host buffers and
/// the CPU reference fit), so that the requirements judge it.
#[must_use]
pub fn run(g: &Gpus<'_>, work: &GpuWork) -> bool {
    let cpus = cpu::available(&crate::environment::root());
    let fits = host_memory(g.progress, g.size, g.probed.len())
        && (work.cpu == CpuWork::ReferenceOnly
            || cpu_reference_fits(g.progress, g.size, cpus.count, g.deadline));
    if fits {
        run_devices(g, work, cpus);
        compare_with_cpu(g.progress, g.selected);
        if let Some(plan) = work.peers {
            peers(g, plan);
        }
    } else {
        // No GPU is touched; each says why, the machine check that failed.
        let failed = if host_memory_failed(g.progress) {
            Stage::HostMemory
        } else {
            Stage::CpuReference
        };
        for &(slot, _) in &g.probed {
            g.progress.skip(
                Scope::Device(slot),
                Stage::Context,
                NotRun::EarlierFailure,
                format!("not run: {failed} failed, so no stage ran on this GPU"),
            );
        }
        g.progress.update(|r| {
            for d in &mut r.devices {
                d.status = DeviceStatus::Skipped;
            }
        });
    }
    fits
}

/// Whether the `host_memory` check failed.
fn host_memory_failed(progress: &Progress) -> bool {
    progress.update(|r| {
        r.checks
            .iter()
            .any(|c| Stage::HostMemory.is(&c.name) && c.status == CheckStatus::Fail)
    })
}

/// The least time the peer check asks of the deadline: below it the GPUs'
/// writes into each other are not started (a write that hangs cannot be
/// cancelled, and the report is due).
const PEER_RESERVE: Duration = Duration::from_millis(500);

/// The peer-to-peer check, last: among the selected GPUs whose own stages
/// passed, where there are two or more and the deadline allows.
fn peers(g: &Gpus<'_>, plan: super::peer::Plan) {
    if g.probed.len() < 2 {
        return;
    }
    // Each GPU that cannot take part, with why: a busy GPU admits no
    // context of this process (never a fault of the peer path), a failed
    // one has already failed the run.
    let (passed, left_out) = g.progress.update(|r| {
        let mut passed = Vec::new();
        let mut left_out = Vec::new();
        for &(slot, device) in &g.probed {
            let Some(d) = r.devices.get(slot) else {
                continue;
            };
            match (d.compute_not_verified, d.status) {
                (Some(NotVerified::MemoryHeldWithoutProcess), _) => left_out.push((
                    slot,
                    NotRun::MemoryHeld,
                    "the GPU admits no context of this process",
                )),
                (Some(_), _) => left_out.push((
                    slot,
                    NotRun::Busy,
                    "the GPU admits no context of this process (busy)",
                )),
                (None, DeviceStatus::Pass | DeviceStatus::Warn) => {
                    passed.push(super::peer::Member { slot, device });
                }
                (None, _) => left_out.push((
                    slot,
                    NotRun::EarlierFailure,
                    "this GPU failed its own checks",
                )),
            }
        }
        (passed, left_out)
    });
    let everyone = if passed.len() < 2 {
        Some((
            NotRun::EarlierFailure,
            "fewer than two GPUs could take part (the others failed their own checks or are busy)",
        ))
    } else if g
        .deadline
        .is_some_and(|d| d.saturating_duration_since(Instant::now()) < PEER_RESERVE)
    {
        Some((NotRun::OutOfTime, "the deadline leaves too little time"))
    } else {
        None
    };
    for (slot, reason, why) in left_out {
        g.progress
            .skip(Scope::Device(slot), Stage::Peer, reason, why);
    }
    match everyone {
        None => super::peer::run(g.progress, g.driver, &passed, plan, g.seed, g.deadline),
        Some((reason, why)) => {
            for member in &passed {
                g.progress
                    .skip(Scope::Device(member.slot), Stage::Peer, reason, why);
            }
        }
    }
}

/// Whether the matmul's host buffers fit in what this process may take:
/// A and B of both verification passes, the CPU product and its scratch
/// copy, and two results per GPU.
fn host_memory(progress: &Progress, n: u32, gpus: usize) -> bool {
    let need = (6 + 2 * gpus as u64) * u64::from(n) * u64::from(n) * 4;
    progress
        .stage(Scope::Machine, Stage::HostMemory, || {
            let available = crate::environment::available_memory(&crate::environment::root());
            let detail = format!(
                "the {n}x{n}x{n} matmul needs {} of host memory, {} available",
                crate::units::bytes(need),
                available.map_or("unknown".into(), crate::units::bytes)
            );
            match available {
                Some(a) if need > a => Err(Failed::new(format!("{detail}; try a smaller --size"))),
                _ => Ok(Done::pass((), detail)),
            }
        })
        .is_some()
}

/// Each selected GPU's pipeline on a thread of its own, beside the CPU
/// product they are checked against; then, with every GPU thread done, the
/// CPU baseline timed on its own (GPU threads waiting on their events
/// would take cores from it: src/cpu.rs).
fn run_devices(g: &Gpus<'_>, work: &GpuWork, cpus: cpu::Cpus) {
    let (progress, probed) = (g.progress, g.probed.as_slice());
    let n = g.size;
    let inputs = Inputs::generate(n, n, n, g.seed);
    let reference = OnceLock::new();
    let tensor = OnceLock::new();
    let host_link = std::sync::Mutex::new(());
    let start_line = burn::StartLine::new(probed.len());
    let product_time = std::thread::scope(|scope| {
        for &(slot, device) in probed {
            let job = pipeline::Pipeline {
                command: g.command,
                job: gpu::Job {
                    driver: g.driver,
                    progress,
                    slot,
                    device,
                    inputs: &inputs,
                    reference: &reference,
                    repeat: g.repeat,
                    nvml: g.nvml,
                    deadline: g.deadline,
                    host_link: &host_link,
                },
                tensor_cores: work.tensor_cores,
                tensor: &tensor,
                burn: work.burn,
                start_line: work.burn.is_some().then_some(&start_line),
                at_start_line: std::cell::Cell::new(false),
                bandwidth: work.bandwidth,
                memtest: work.memtest,
                counters_before: work.counters_before,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("gpu{slot}"))
                .spawn_scoped(scope, move || pipeline::probe(&job));
            if let Err(e) = spawned {
                // No thread, no burn: the others need not wait for it.
                // Failed, not skipped: a GPU nothing ran on is no pass.
                start_line.leave();
                progress.stage(Scope::Device(slot), Stage::Context, || {
                    Err::<Done<()>, _>(
                        Failed::new(format!("could not start a thread: {e}"))
                            .not_run(NotRun::Internal),
                    )
                });
            }
        }
        cpu_product(progress, work.cpu, &inputs, cpus, &reference)
    });
    if let Some(estimate) = product_time.filter(|_| work.cpu == CpuWork::Timed { baseline: true }) {
        cpu_baseline(progress, &inputs, g.repeat, cpus, estimate, g.deadline);
    }
}

/// The CPU's product the GPUs are checked against, published in
/// `reference`: untimed (`CpuWork::ReferenceOnly`), or timed, returning
/// how long it took.
fn cpu_product(
    progress: &Progress,
    work: CpuWork,
    inputs: &Inputs,
    cpus: cpu::Cpus,
    reference: &OnceLock<Reference>,
) -> Option<Duration> {
    if work != CpuWork::ReferenceOnly {
        return cpu_reference(progress, inputs, cpus.count, reference);
    }
    // Only the product, to check the readback against; no timing.
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let mut product = vec![0f32; m * n];
    cpu::naive_sgemm(m, n, k, &inputs.a, &inputs.b, &mut product);
    // The only publication in this run, so `set` cannot find it taken.
    let _ = reference.set(Reference::new(inputs, product, inputs.seed ^ SAMPLE_SALT));
    None
}

/// Each GPU's speed over the CPU's; GPUs not selected are skipped.
fn compare_with_cpu(progress: &Progress, selected: &[usize]) {
    progress.update(|r| {
        let cpu_gflops = r.cpu.as_ref().map(|c| c.gflops).filter(|g| *g > 0.0);
        for d in &mut r.devices {
            if let (Some(m), Some(cpu)) = (d.matmul.as_mut(), cpu_gflops) {
                m.speedup_vs_cpu = Some(m.gpu_gflops / cpu);
            }
            if !selected.contains(&(d.index as usize)) {
                d.status = DeviceStatus::Skipped;
            }
        }
    });
}
