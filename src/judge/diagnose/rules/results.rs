//! Wrong results judged across a node's GPUs: the same wrong elements on
//! several GPUs, or tensor cores wrong where FP32 was exact, point at
//! software (gpuprobe's kernel, the driver's JIT) rather than silicon.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, Report, Severity};

pub(super) const GP035: Rule = Rule {
    code: "GP035",
    severity: Severity::Error,
    summary: "Wrong results that look like software, not a faulty GPU: gpuprobe's kernel or the driver's JIT",
    when: "two or more GPUs returned the same wrong elements of the matmul, bit for bit (hardware faults are random and per GPU; a miscompiled kernel is wrong alike everywhere), or a GPU's tensor-core check got wrong elements while its FP32 matmul on the same integer inputs was exact (gpuprobe's tensor-core kernels hold hand-written mma.sync PTX)",
    fix: "Do not drain these GPUs for this: the likely cause is gpuprobe's kernel or the driver's PTX JIT. Compare with another driver version or node, and with cuBLAS (`gpuprobe bench`); report it to gpuprobe with this JSON output (`--json`) and the driver version. The run still failed: nothing on these GPUs was shown to compute right.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(software_fault),
};

/// GPUs whose wrong results point at software rather than silicon (GP035):
/// the same wrong elements on two or more GPUs, bit for bit, or a
/// tensor-core check that failed where the FP32 matmul was exact.
/// Tensor-core kernels that got wrong results on a GPU whose FP32 matmul
/// on the same integer inputs was exact, and that no other GPU of the node
/// ran right (then this GPU's tensor units are the suspects).
fn tensor_only_faults(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    let passed_elsewhere = |index: u32, kernel: &str| {
        r.devices.iter().any(|o| {
            o.index != index
                && o.tensor_cores
                    .iter()
                    .any(|t| t.kernel == kernel && t.verification.passed)
        })
    };
    for d in &r.devices {
        if !d.matmul.as_ref().is_some_and(|m| m.verification.passed) {
            continue;
        }
        for t in d
            .tensor_cores
            .iter()
            .filter(|t| !t.verification.passed && !passed_elsewhere(d.index, &t.kernel))
        {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {}: the tensor-core kernel {} got {} of {} elements wrong while the \
                     FP32 matmul on the same integer inputs was exact",
                    d.index, t.kernel, t.verification.mismatches, t.verification.elements
                ),
            ));
        }
    }
    evidence
}

fn software_fault(r: &Report) -> DeviceEvidence {
    use crate::report::Verification;
    let wrong: Vec<(u32, &Verification)> = r
        .devices
        .iter()
        .filter_map(|d| {
            let v = &d.matmul.as_ref()?.verification;
            (!v.passed).then_some((d.index, v))
        })
        .collect();
    let alike = |a: &Verification, b: &Verification| {
        a.mismatches == b.mismatches
            && !a.faults.is_empty()
            && a.faults.len() == b.faults.len()
            && a.faults
                .iter()
                .zip(&b.faults)
                .all(|(x, y)| x.index == y.index && x.gpu.to_bits() == y.gpu.to_bits())
    };
    let mut evidence = Vec::new();
    for (index, v) in &wrong {
        let twins: Vec<String> = wrong
            .iter()
            .filter(|(other, w)| other != index && alike(v, w))
            .map(|(other, _)| other.to_string())
            .collect();
        if let (false, Some(first)) = (twins.is_empty(), v.faults.first()) {
            evidence.push((
                Some(*index),
                format!(
                    "GPU {index}: the same {} wrong element(s) as GPU {}, bit for bit (the \
                     first at row {}, column {}: {} for {})",
                    v.mismatches,
                    twins.join(", GPU "),
                    first.row,
                    first.col,
                    first.gpu,
                    first.expected
                ),
            ));
        }
    }
    evidence.extend(tensor_only_faults(r));
    evidence
}
