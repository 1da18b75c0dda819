//! The diagnosis engine: one table of rules (rules/), each with a stable
//! code, a severity, the cause in one line and a concrete fix, evaluated over
//! the finished report (which holds every fact: driver, NVML, environment,
//! checks). docs/diagnoses.md is generated from the same table
//! (`gpuprobe diagnoses`), and a test keeps the two equal.
mod rules;

use std::fmt::Write as _;

use crate::report::{Action, DeviceStatus, Diagnosis, Reading, RecoveryAction, Report, Severity};

pub use rules::RULES;

/// One rule of the table.
pub struct Rule {
    /// Stable code, GPnnn; never reused for another meaning.
    pub code: &'static str,
    pub severity: Severity,
    /// The cause, in one line.
    pub summary: &'static str,
    /// What makes it fire, for docs/diagnoses.md.
    pub when: &'static str,
    /// What to change.
    pub fix: &'static str,
    /// What it asks of the node or the workload, for schedulers.
    pub action: Remedy,
    /// How the rule finds its evidence.
    pub trigger: Trigger,
}

/// The action a rule's diagnosis carries.
#[derive(Debug, Clone, Copy)]
pub enum Remedy {
    /// Always this one.
    Always(Action),
    /// The one NVML's recovery action asks for on the GPUs the diagnosis
    /// names, the most disruptive of them (GP039).
    AsTheDriverAsks,
}

impl Remedy {
    /// The action of a diagnosis about `devices`.
    fn action(self, report: &Report, devices: &[u32]) -> Action {
        match self {
            Remedy::Always(action) => action,
            Remedy::AsTheDriverAsks => report
                .devices
                .iter()
                .filter(|d| devices.contains(&d.index))
                .filter_map(|d| match &d.telemetry.as_ref()?.recovery_action {
                    Reading::Value(asked) => Some(recovery(asked)),
                    Reading::Unavailable(_) => None,
                })
                .max()
                .unwrap_or(Action::DrainAndService),
        }
    }

    /// Its words in docs/diagnoses.md.
    fn describe(self) -> String {
        match self {
            Remedy::Always(action) => format!("`{}`", action.as_str()),
            Remedy::AsTheDriverAsks => format!(
                "as the driver asks: `{}` for gpu_reset, `{}` for drain_p2p and \
                 drain_and_reset, `{}` for node_reboot, `{}` for a value this gpuprobe \
                 does not know",
                Action::ResetGpu.as_str(),
                Action::DrainAndReset.as_str(),
                Action::RebootNode.as_str(),
                Action::DrainAndService.as_str()
            ),
        }
    }
}

/// NVML's recovery action as one of gpuprobe's (NVIDIA, "Error Recovery and
/// Response Flags": reset, reboot, drain P2P, drain P2P and reset). A value
/// this release does not name takes the node out of scheduling until
/// someone reads what the driver wants.
fn recovery(asked: &RecoveryAction) -> Action {
    match asked {
        RecoveryAction::None => Action::None,
        RecoveryAction::GpuReset => Action::ResetGpu,
        RecoveryAction::DrainP2p | RecoveryAction::DrainAndReset => Action::DrainAndReset,
        RecoveryAction::NodeReboot => Action::RebootNode,
        RecoveryAction::Unknown(_) | RecoveryAction::Other(_) => Action::DrainAndService,
    }
}

/// A rule's test.
pub enum Trigger {
    /// Concerns the machine or container: the evidence, or `None`.
    Machine(fn(&Report) -> Option<Vec<String>>),
    /// Concerns particular GPUs: evidence lines, each with the CUDA index
    /// of the GPU it is about (`None` for a GPU CUDA does not see). The
    /// rule fires when there is any.
    PerDevice(fn(&Report) -> DeviceEvidence),
}

/// Evidence lines, each with the CUDA index of the GPU it is about.
pub type DeviceEvidence = Vec<(Option<u32>, String)>;

/// Diagnoses that share a cause on one GPU. Where `primary` fires for a
/// GPU, what each rule of `follows` says of that same GPU is that cause
/// seen again: its evidence joins the primary's ("also GP017: …") and it
/// no longer stands as a diagnosis of its own for that GPU. One cause, one
/// diagnosis; applied in order.
pub struct SameCause {
    pub primary: &'static str,
    pub follows: &'static [&'static str],
    /// Why they are one cause, for docs/diagnoses.md.
    pub why: &'static str,
}

/// The table of shared causes; a test checks every code is a rule's.
pub const SAME_CAUSE: &[SameCause] = &[
    SameCause {
        primary: "GP032",
        follows: &["GP017", "GP030", "GP043"],
        why: "a GPU that slows under sustained load is held by the power or cooling that \
              throttled its matmul (GP017), kept that matmul far below its peak (GP030) and \
              behind its identical neighbours (GP043); GP032's fix covers them",
    },
    SameCause {
        primary: "GP015",
        follows: &["GP033"],
        why: "uncorrectable memory errors that take a GPU out of service (GP015) are the cause \
              of what the burn met on that GPU: its uncorrectable ECC errors, and wrong results \
              from the failing memory (GP033)",
    },
    SameCause {
        primary: "GP033",
        follows: &["GP036"],
        why: "a GPU that computed wrong results under load is out of service whatever NVML says \
              of its contained errors; the pending row remap (GP036) is applied by the reset \
              GP033's fix includes",
    },
    SameCause {
        primary: "GP017",
        follows: &["GP030", "GP043", "GP046"],
        why: "a matmul far below its peak (GP030), or behind its identical neighbours (GP043), \
              on a GPU throttled by temperature or power is slow for that reason; a power limit \
              an earlier job left lowered (GP046) is what GP017 names as the cap",
    },
    SameCause {
        primary: "GP030",
        follows: &["GP043", "GP046"],
        why: "a GPU whose clocks NVML saw held down while its matmul ran (GP030) is behind its \
              identical neighbours (GP043) for that reason; applications clocks an earlier job \
              left lowered (GP046) are what held them, and GP030's fix restores them",
    },
    SameCause {
        primary: "GP015",
        follows: &["GP044"],
        why: "uncorrectable memory errors that take a GPU out of service (GP015) explain the \
              words its memory test read back wrong (GP044); GP015's fix, by NVML's account of \
              the memory, covers both",
    },
    SameCause {
        primary: "GP044",
        follows: &["GP033"],
        why: "a GPU whose memory does not hold what is written to it (GP044) computes wrong \
              results under load from the corrupted data (GP033); the memory is the cause, and \
              GP044's fix covers both",
    },
    SameCause {
        primary: "GP037",
        follows: &["GP047"],
        why: "persistence mode off (GP047) is what made cuInit slow (GP037); one fix covers both",
    },
    SameCause {
        primary: "GP014",
        follows: &["GP040"],
        why: "a GPU that has fallen off the bus (GP014) explains the Xids it logged on the way \
              (79 and what came before it, GP040); the reboot GP014's fix asks for covers them",
    },
];

/// What a rule found: machine-wide evidence, or lines about GPUs.
enum Found {
    Machine(Vec<String>),
    PerDevice(DeviceEvidence),
}

/// Every rule that fires on `report`, most severe first, diagnoses that
/// share a cause on a GPU joined (`SAME_CAUSE`).
#[must_use]
pub fn diagnose(report: &Report) -> Vec<Diagnosis> {
    let mut fired: Vec<(&Rule, Found)> = RULES
        .iter()
        .filter_map(|rule| match rule.trigger {
            Trigger::Machine(f) => f(report).map(|e| (rule, Found::Machine(e))),
            Trigger::PerDevice(f) => {
                let found = f(report);
                (!found.is_empty()).then_some((rule, Found::PerDevice(found)))
            }
        })
        .collect();
    for relation in SAME_CAUSE {
        join_same_cause(&mut fired, relation);
    }
    let mut out: Vec<Diagnosis> = fired
        .into_iter()
        .filter_map(|(rule, found)| {
            let (evidence, devices) = match found {
                Found::Machine(evidence) => (evidence, Vec::new()),
                Found::PerDevice(found) if found.is_empty() => return None,
                Found::PerDevice(found) => {
                    let mut devices: Vec<u32> = found.iter().filter_map(|(d, _)| *d).collect();
                    devices.dedup();
                    (found.into_iter().map(|(_, e)| e).collect(), devices)
                }
            };
            let action = rule.action.action(report, &devices);
            Some(Diagnosis {
                code: rule.code.into(),
                severity: rule.severity,
                summary: rule.summary.into(),
                evidence,
                devices,
                fix: rule.fix.into(),
                action,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
    });
    out
}

/// Moves what each follower found on the primary's GPUs into the
/// primary's evidence, marked with the follower's code.
fn join_same_cause(fired: &mut [(&Rule, Found)], relation: &SameCause) {
    let Some(at) = fired.iter().position(|(r, _)| r.code == relation.primary) else {
        return;
    };
    let gpus: Vec<u32> = match &fired[at].1 {
        Found::PerDevice(found) => found.iter().filter_map(|(d, _)| *d).collect(),
        Found::Machine(_) => return,
    };
    let mut joined = Vec::new();
    for (rule, found) in fired.iter_mut() {
        let Found::PerDevice(lines) = found else {
            continue;
        };
        if !relation.follows.contains(&rule.code) {
            continue;
        }
        let (same, other): (DeviceEvidence, DeviceEvidence) = std::mem::take(lines)
            .into_iter()
            .partition(|(d, _)| d.is_some_and(|d| gpus.contains(&d)));
        *lines = other;
        joined.extend(
            same.into_iter()
                .map(|(d, line)| (d, format!("also {}: {line}", rule.code))),
        );
    }
    if let Found::PerDevice(lines) = &mut fired[at].1 {
        lines.extend(joined);
    }
}

/// Each GPU a diagnosis names takes its severity: an error fails a
/// passing GPU, a warning makes it warn. (The verdict is the judge's:
/// `crate::judge::conclude`.)
pub(super) fn mark_devices(report: &mut Report) {
    for d in &report.diagnoses {
        for device in report
            .devices
            .iter_mut()
            .filter(|x| d.devices.contains(&x.index))
        {
            device.status = match (d.severity, device.status) {
                (Severity::Error, DeviceStatus::Pass | DeviceStatus::Warn) => DeviceStatus::Fail,
                (Severity::Warning, DeviceStatus::Pass) => DeviceStatus::Warn,
                (_, status) => status,
            };
        }
    }
}

/// docs/diagnoses.md.
#[must_use]
pub fn markdown() -> String {
    let mut out = String::from(
        "# Diagnoses\n\n\
         Generated by `gpuprobe diagnoses` from the rule table in\n\
         src/judge/diagnose/rules/mod.rs; a test fails when this file and the table differ.\n\
         Each rule has a scenario in tests/scenarios/ that triggers it, driven by\n\
         tests/diagnoses.rs.\n\n\
         Severity sets the verdict: `error` makes a working verdict `failed`,\n\
         `warning` makes `healthy` `degraded`, `info` changes nothing.\n\n\
         Action is what the diagnosis asks of the node or the workload, from a closed set\n\
         ordered least to most disruptive (`diagnoses[].action` in the JSON report, the\n\
         `gpuprobe_diagnosis_action` metric, and in `health`'s line, which the Slurm drain\n\
         reason and the node-problem-detector condition carry, the most disruptive of the\n\
         warnings' and errors'): `none`, `fix_configuration`, `restart_workload`,\n\
         `reset_gpu`, `drain_and_reset`, `reboot_node`, `drain_and_service`.\n",
    );
    out.push_str(
        "\nDiagnoses that share a cause on one GPU are one diagnosis: where the first\n\
         fires for a GPU, the others' evidence about that GPU joins it (\"also GPnnn: ...\").\n\n",
    );
    for relation in SAME_CAUSE {
        let _ = writeln!(
            out,
            "- {} takes {}: {}",
            relation.primary,
            relation.follows.join(", "),
            relation.why
        );
    }
    for rule in RULES {
        let severity = match rule.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let _ = write!(
            out,
            "\n## {}: {}\n\n- severity: {severity}\n- action: {}\n- when: {}\n- fix: {}\n",
            rule.code,
            rule.summary,
            rule.action.describe(),
            rule.when,
            rule.fix
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(code: &str) -> &'static Rule {
        RULES.iter().find(|r| r.code == code).expect(code)
    }

    #[test]
    fn shared_causes_name_rules_no_more_severe_than_their_primary() {
        for relation in SAME_CAUSE {
            let primary = rule(relation.primary);
            for code in relation.follows {
                assert!(rule(code).severity <= primary.severity, "{code}");
            }
        }
    }

    /// GP032 on GPU 0 takes GP017's and GP030's lines about GPU 0; GP017 on
    /// GPU 1 stays, and takes GP030's line about GPU 1.
    #[test]
    fn one_cause_on_one_gpu_is_one_diagnosis() {
        let line = |gpu: u32, what: &str| (Some(gpu), format!("GPU {gpu}: {what}"));
        let mut fired = vec![
            (
                rule("GP017"),
                Found::PerDevice(vec![line(0, "hot"), line(1, "hot")]),
            ),
            (
                rule("GP030"),
                Found::PerDevice(vec![line(0, "slow"), line(1, "slow")]),
            ),
            (rule("GP032"), Found::PerDevice(vec![line(0, "slowed")])),
        ];
        for relation in SAME_CAUSE {
            join_same_cause(&mut fired, relation);
        }
        let lines = |code: &str| match &fired.iter().find(|(r, _)| r.code == code).unwrap().1 {
            Found::PerDevice(found) => found.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
            Found::Machine(_) => unreachable!(),
        };
        assert_eq!(
            lines("GP032"),
            [
                "GPU 0: slowed",
                "also GP017: GPU 0: hot",
                "also GP030: GPU 0: slow"
            ]
        );
        assert_eq!(lines("GP017"), ["GPU 1: hot", "also GP030: GPU 1: slow"]);
        assert!(lines("GP030").is_empty());
    }
    /// `burn --memtest` on a GPU with bad memory: the memory test's finding
    /// (GP044) takes the burn's wrong results on that GPU (GP033); NVML's
    /// uncorrectable errors (GP015) on another GPU take its memory test's.
    #[test]
    fn bad_memory_is_one_diagnosis_with_the_wrong_results_it_causes() {
        let line = |gpu: u32, what: &str| (Some(gpu), format!("GPU {gpu}: {what}"));
        let mut fired = vec![
            (
                rule("GP015"),
                Found::PerDevice(vec![line(1, "remap failed")]),
            ),
            (
                rule("GP033"),
                Found::PerDevice(vec![line(0, "wrong product"), line(2, "wrong product")]),
            ),
            (
                rule("GP044"),
                Found::PerDevice(vec![line(0, "bit 13"), line(1, "bit 7")]),
            ),
        ];
        for relation in SAME_CAUSE {
            join_same_cause(&mut fired, relation);
        }
        let lines = |code: &str| match &fired.iter().find(|(r, _)| r.code == code).unwrap().1 {
            Found::PerDevice(found) => found.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
            Found::Machine(_) => unreachable!(),
        };
        assert_eq!(
            lines("GP015"),
            ["GPU 1: remap failed", "also GP044: GPU 1: bit 7"]
        );
        assert_eq!(
            lines("GP044"),
            ["GPU 0: bit 13", "also GP033: GPU 0: wrong product"]
        );
        assert_eq!(lines("GP033"), ["GPU 2: wrong product"]);
    }

    /// NVML's recovery actions map onto gpuprobe's by what each asks
    /// (NVIDIA, "Error Recovery and Response Flags"); a value this release
    /// does not name takes the node out of scheduling, never `none`.
    #[test]
    fn the_drivers_recovery_action_is_the_diagnosis_action() {
        let cases = [
            (RecoveryAction::None, Action::None),
            (RecoveryAction::GpuReset, Action::ResetGpu),
            (RecoveryAction::DrainP2p, Action::DrainAndReset),
            (RecoveryAction::DrainAndReset, Action::DrainAndReset),
            (RecoveryAction::NodeReboot, Action::RebootNode),
            (RecoveryAction::Unknown(7), Action::DrainAndService),
            (
                RecoveryAction::Other("bus_reset".into()),
                Action::DrainAndService,
            ),
        ];
        for (asked, action) in cases {
            assert_eq!(recovery(&asked), action, "{asked:?}");
        }
    }

    /// Advice asks nothing of the node: the most disruptive action of the
    /// warnings and errors is what a run needs.
    #[test]
    fn the_action_needed_is_the_most_disruptive_of_warnings_and_errors() {
        let diagnosis = |severity, action| Diagnosis {
            code: "GP000".into(),
            severity,
            summary: String::new(),
            evidence: Vec::new(),
            devices: Vec::new(),
            fix: String::new(),
            action,
        };
        let mut sorted = Action::ALL;
        sorted.sort();
        assert_eq!(sorted, Action::ALL, "ALL is least disruptive first");
        assert_eq!(Action::needed(&[]), Action::None);
        let advice = [diagnosis(Severity::Info, Action::FixConfiguration)];
        assert_eq!(Action::needed(&advice), Action::None);
        let run = [
            diagnosis(Severity::Error, Action::ResetGpu),
            diagnosis(Severity::Warning, Action::DrainAndService),
            diagnosis(Severity::Info, Action::RebootNode),
        ];
        assert_eq!(Action::needed(&run), Action::DrainAndService);
    }
}
