//! Least privilege, proven: every pod that deploy/kubernetes runs (a Pod, or
//! the pod template of a Deployment, DaemonSet, StatefulSet, ReplicaSet,
//! ReplicationController, Job or CronJob) meets the Kubernetes "restricted"
//! Pod Security Standard, control by control, and every Namespace there
//! enforces it. The controls and their allowed values are the Kubernetes
//! documentation's ("Pod Security Standards", the Baseline and Restricted
//! tables; kubernetes.io/docs/concepts/security/pod-security-standards),
//! which Pod Security Admission enforces; a failure names the control.
//!
//! The manifests are YAML; python3 with PyYAML (the kubernetes-validate
//! venv has it, as a dependency) turns them into JSON, and the checks are
//! here, in Rust, over that JSON.
use serde_json::{json, Value};

use crate::common::root;
use crate::support::{required, tool};

/// The controls of the restricted standard: the Baseline policy's and the
/// Restricted policy's own, by the names the documentation gives them, and
/// one of gpuprobe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Control {
    HostProcess,
    HostNamespaces,
    PrivilegedContainers,
    CapabilitiesBaseline,
    HostPathVolumes,
    HostPorts,
    HostProbes,
    AppArmor,
    SeLinux,
    ProcMount,
    SeccompBaseline,
    Sysctls,
    VolumeTypes,
    PrivilegeEscalation,
    RunningAsNonRoot,
    RunningAsNonRootUser,
    Seccomp,
    Capabilities,
    /// gpuprobe's own: the user is a number, at the pod or in every
    /// container. The kubelet refuses to start a container with
    /// `runAsNonRoot` whose image names its user by name and no
    /// `runAsUser` says which, since it cannot check a name is not root.
    NumericUser,
}

impl Control {
    const ALL: [Self; 19] = [
        Self::HostProcess,
        Self::HostNamespaces,
        Self::PrivilegedContainers,
        Self::CapabilitiesBaseline,
        Self::HostPathVolumes,
        Self::HostPorts,
        Self::HostProbes,
        Self::AppArmor,
        Self::SeLinux,
        Self::ProcMount,
        Self::SeccompBaseline,
        Self::Sysctls,
        Self::VolumeTypes,
        Self::PrivilegeEscalation,
        Self::RunningAsNonRoot,
        Self::RunningAsNonRootUser,
        Self::Seccomp,
        Self::Capabilities,
        Self::NumericUser,
    ];

    /// The control's name in the documentation's tables.
    fn name(self) -> &'static str {
        match self {
            Self::HostProcess => "Baseline: HostProcess",
            Self::HostNamespaces => "Baseline: Host Namespaces",
            Self::PrivilegedContainers => "Baseline: Privileged Containers",
            Self::CapabilitiesBaseline => "Baseline: Capabilities",
            Self::HostPathVolumes => "Baseline: HostPath Volumes",
            Self::HostPorts => "Baseline: Host Ports",
            Self::HostProbes => "Baseline: Host Probes / Lifecycle Hooks",
            Self::AppArmor => "Baseline: AppArmor",
            Self::SeLinux => "Baseline: SELinux",
            Self::ProcMount => "Baseline: /proc Mount Type",
            Self::SeccompBaseline => "Baseline: Seccomp",
            Self::Sysctls => "Baseline: Sysctls",
            Self::VolumeTypes => "Restricted: Volume Types",
            Self::PrivilegeEscalation => "Restricted: Privilege Escalation",
            Self::RunningAsNonRoot => "Restricted: Running as Non-root",
            Self::RunningAsNonRootUser => "Restricted: Running as Non-root user",
            Self::Seccomp => "Restricted: Seccomp",
            Self::Capabilities => "Restricted: Capabilities",
            Self::NumericUser => "gpuprobe: a numeric runAsUser",
        }
    }
}

/// Capabilities the Baseline policy lets a container add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The "safe" sysctls the Baseline policy allows.
const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types the Baseline policy allows (besides none).
const SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The only volume types the Restricted policy permits.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// A pod template's spec and metadata, where the kind carries one.
fn pod_of(doc: &Value) -> Option<(&Value, &Value)> {
    let template = match doc["kind"].as_str()? {
        "Pod" => doc,
        "Deployment"
        | "DaemonSet"
        | "StatefulSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &doc["spec"]["template"],
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    Some((&template["spec"], &template["metadata"]))
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Every container of the pod, with its list's name.
fn containers(spec: &Value) -> Vec<(String, &Value)> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| {
            items(&spec[*list]).iter().map(move |c| {
                let name = c["name"].as_str().unwrap_or("?");
                (format!("{list}[{name}]"), c)
            })
        })
        .collect()
}

/// Undefined, null, false.
fn unset_or_false(v: &Value) -> bool {
    v.is_null() || *v == json!(false)
}

/// Undefined, null, "".
fn unset_or_empty(v: &Value) -> bool {
    v.is_null() || *v == json!("")
}

/// Each violation of the restricted standard in a pod: the control and
/// where.
#[allow(clippy::too_many_lines)] // one table, control by control
fn violations(spec: &Value, metadata: &Value) -> Vec<(Control, String)> {
    let mut out = Vec::new();
    let mut fail = |control: Control, at: String| out.push((control, at));
    let pod = &spec["securityContext"];
    let all = containers(spec);
    let windows = spec["os"]["name"] == "windows";

    // HostProcess.
    if !unset_or_false(&pod["windowsOptions"]["hostProcess"]) {
        fail(Control::HostProcess, "securityContext".into());
    }
    for (at, c) in &all {
        if !unset_or_false(&c["securityContext"]["windowsOptions"]["hostProcess"]) {
            fail(Control::HostProcess, at.clone());
        }
    }
    // Host Namespaces.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if !unset_or_false(&spec[field]) {
            fail(Control::HostNamespaces, field.into());
        }
    }
    for (at, c) in &all {
        let sc = &c["securityContext"];
        // Privileged Containers.
        if !unset_or_false(&sc["privileged"]) {
            fail(Control::PrivilegedContainers, at.clone());
        }
        // Capabilities (Baseline): only the listed ones may be added.
        for cap in items(&sc["capabilities"]["add"]) {
            if !BASELINE_CAPABILITIES.contains(&cap.as_str().unwrap_or("")) {
                fail(Control::CapabilitiesBaseline, format!("{at} adds {cap}"));
            }
        }
        // Host Ports.
        for port in items(&c["ports"]) {
            if !(port["hostPort"].is_null() || port["hostPort"] == 0) {
                fail(
                    Control::HostPorts,
                    format!("{at} hostPort {}", port["hostPort"]),
                );
            }
        }
        // Host Probes / Lifecycle Hooks.
        let mut handlers: Vec<(&str, &Value)> = ["livenessProbe", "readinessProbe", "startupProbe"]
            .iter()
            .map(|p| (*p, &c[*p]))
            .collect();
        handlers.push(("lifecycle.postStart", &c["lifecycle"]["postStart"]));
        handlers.push(("lifecycle.preStop", &c["lifecycle"]["preStop"]));
        for (what, h) in handlers {
            for way in ["httpGet", "tcpSocket"] {
                if !unset_or_empty(&h[way]["host"]) {
                    fail(Control::HostProbes, format!("{at} {what}.{way}.host"));
                }
            }
        }
        // /proc Mount Type.
        if !(sc["procMount"].is_null() || sc["procMount"] == "Default") {
            fail(Control::ProcMount, at.clone());
        }
    }
    // AppArmor, SELinux and Seccomp (Baseline), at the pod and in each
    // container.
    let contexts: Vec<(String, &Value)> = std::iter::once(("securityContext".to_string(), pod))
        .chain(
            all.iter()
                .map(|(at, c)| (at.clone(), &c["securityContext"])),
        )
        .collect();
    for (at, sc) in &contexts {
        let apparmor = &sc["appArmorProfile"]["type"];
        if !(apparmor.is_null() || apparmor == "RuntimeDefault" || apparmor == "Localhost") {
            fail(
                Control::AppArmor,
                format!("{at} appArmorProfile {apparmor}"),
            );
        }
        let selinux = &sc["seLinuxOptions"];
        let kind = selinux["type"].as_str().unwrap_or("");
        if !(kind.is_empty() || SELINUX_TYPES.contains(&kind)) {
            fail(Control::SeLinux, format!("{at} seLinuxOptions.type {kind}"));
        }
        for field in ["user", "role"] {
            if !unset_or_empty(&selinux[field]) {
                fail(Control::SeLinux, format!("{at} seLinuxOptions.{field}"));
            }
        }
        if sc["seccompProfile"]["type"] == "Unconfined" {
            fail(Control::SeccompBaseline, at.clone());
        }
    }
    for (key, value) in metadata["annotations"].as_object().into_iter().flatten() {
        if key.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            let v = value.as_str().unwrap_or("");
            if !(v == "runtime/default" || v.starts_with("localhost/")) {
                fail(Control::AppArmor, format!("annotation {key}: {v}"));
            }
        }
    }
    // Sysctls.
    for s in items(&pod["sysctls"]) {
        let name = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&name) {
            fail(Control::Sysctls, name.into());
        }
    }
    // HostPath Volumes, and the Restricted policy's Volume Types.
    for v in items(&spec["volumes"]) {
        let name = v["name"].as_str().unwrap_or("?");
        if !v["hostPath"].is_null() {
            fail(Control::HostPathVolumes, format!("volume {name}"));
        }
        if !RESTRICTED_VOLUMES.iter().any(|t| !v[*t].is_null()) {
            fail(Control::VolumeTypes, format!("volume {name}"));
        }
    }
    // Running as Non-root: true at the pod, or in every container; never
    // false anywhere.
    let pod_non_root = pod["runAsNonRoot"] == true;
    if pod["runAsNonRoot"] == false {
        fail(Control::RunningAsNonRoot, "securityContext".into());
    }
    for (at, c) in &all {
        let v = &c["securityContext"]["runAsNonRoot"];
        if *v == false || (!pod_non_root && *v != true) {
            fail(Control::RunningAsNonRoot, at.clone());
        }
    }
    // Running as Non-root user: no runAsUser 0 anywhere. gpuprobe's: a
    // number at the pod or in every container.
    for (at, sc) in &contexts {
        if sc["runAsUser"] == 0 {
            fail(Control::RunningAsNonRootUser, at.clone());
        }
    }
    let pod_user = pod["runAsUser"].is_u64();
    for (at, c) in &all {
        if !pod_user && !c["securityContext"]["runAsUser"].is_u64() {
            fail(Control::NumericUser, at.clone());
        }
    }
    // The Linux-only controls (not required of a pod whose spec.os.name is
    // windows).
    if !windows {
        let allowed = |t: &Value| t == "RuntimeDefault" || t == "Localhost";
        let pod_seccomp = &pod["seccompProfile"]["type"];
        for (at, c) in &all {
            let sc = &c["securityContext"];
            // Privilege Escalation.
            if sc["allowPrivilegeEscalation"] != false {
                fail(Control::PrivilegeEscalation, at.clone());
            }
            // Seccomp: allowed at the pod, or in every container.
            let own = &sc["seccompProfile"]["type"];
            if !(allowed(own) || (own.is_null() && allowed(pod_seccomp))) {
                fail(Control::Seccomp, at.clone());
            }
            // Capabilities: drop ALL, add back NET_BIND_SERVICE at most.
            let caps = &sc["capabilities"];
            if !items(&caps["drop"]).iter().any(|c| c == "ALL") {
                fail(Control::Capabilities, format!("{at} does not drop ALL"));
            }
            for cap in items(&caps["add"]) {
                if cap != "NET_BIND_SERVICE" {
                    fail(Control::Capabilities, format!("{at} adds {cap}"));
                }
            }
        }
        if !(pod_seccomp.is_null() || allowed(pod_seccomp)) {
            fail(Control::Seccomp, "securityContext".into());
        }
    }
    out
}

/// Every YAML document of every manifest under deploy/kubernetes, as JSON,
/// with its file; None when python3 with PyYAML is missing (said visibly).
fn documents() -> Option<Vec<(String, Value)>> {
    let install = "python3 with PyYAML: python3 -m venv V && V/bin/pip install kubernetes-validate";
    let python = tool("python3", install)?;
    let files = super::kubernetes::manifests();
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import json, sys, yaml\n\
             print(json.dumps([[f, d] for f in sys.argv[1:] \
             for d in yaml.safe_load_all(open(f)) if d is not None]))",
        )
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'yaml'") && !required() {
        eprintln!("skipped: python3 has no PyYAML ({install})");
        return None;
    }
    assert!(out.status.success(), "reading the manifests: {stderr}");
    let all: Vec<(String, Value)> = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        all.into_iter()
            .map(|(f, d)| {
                let f = f.trim_start_matches(&format!("{}/", root().display()));
                (f.to_string(), d)
            })
            .collect(),
    )
}

#[test]
#[ignore = "needs python3 with PyYAML (the kubernetes-validate venv has it): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn every_pod_in_deploy_kubernetes_meets_the_restricted_pod_security_standard() {
    let Some(docs) = documents() else { return };
    let mut pods = Vec::new();
    let mut problems = Vec::new();
    for (file, doc) in &docs {
        let what = format!(
            "{file}: {}/{}",
            doc["kind"].as_str().unwrap_or("?"),
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
        if doc["kind"] == "Namespace" {
            let label = &doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"];
            if label != "restricted" {
                problems.push(format!(
                    "{what}: label pod-security.kubernetes.io/enforce is {label}, not restricted"
                ));
            }
        }
        let Some((spec, metadata)) = pod_of(doc) else {
            continue;
        };
        pods.push(what.clone());
        for (control, at) in violations(spec, metadata) {
            problems.push(format!("{what}: {} ({at})", control.name()));
        }
    }
    assert!(
        problems.is_empty(),
        "violations of the restricted Pod Security Standard:\n{}",
        problems.join("\n")
    );
    // The DaemonSet, the node check's Job, the workload and NPD's DaemonSet.
    for expected in [
        "DaemonSet/gpuprobe",
        "Job/gpuprobe-node-check",
        "Deployment/trainer",
        "DaemonSet/node-problem-detector-gpuprobe",
    ] {
        assert!(
            pods.iter().any(|p| p.ends_with(expected)),
            "{expected} not found among {pods:?}"
        );
    }
}

/// A pod that meets the standard, as the manifests write one.
fn restricted_pod() -> Value {
    json!({
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "containers": [{
            "name": "gpuprobe",
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}
            },
            "resources": {"limits": {"nvidia.com/gpu": 1}}
        }],
        "volumes": [{"name": "config", "configMap": {"name": "x"}}]
    })
}

/// `restricted_pod` with one control broken, and any other control that
/// the same change breaks too.
fn broken(control: Control) -> (Value, Value, Option<Control>) {
    let (mut s, mut m) = (restricted_pod(), json!({}));
    let c = &mut s["containers"][0];
    let mut also = None;
    match control {
        Control::HostProcess => {
            s["securityContext"]["windowsOptions"] = json!({"hostProcess": true});
        }
        Control::HostNamespaces => s["hostNetwork"] = json!(true),
        Control::PrivilegedContainers => c["securityContext"]["privileged"] = json!(true),
        Control::CapabilitiesBaseline => {
            c["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"]);
            also = Some(Control::Capabilities);
        }
        Control::HostPathVolumes => {
            // A hostPath volume is no permitted type either.
            s["volumes"] = json!([{"name": "dev", "hostPath": {"path": "/dev"}}]);
            also = Some(Control::VolumeTypes);
        }
        Control::HostPorts => {
            c["ports"] = json!([{"containerPort": 9477, "hostPort": 9477}]);
        }
        Control::HostProbes => {
            c["readinessProbe"] = json!({"httpGet": {"host": "10.0.0.1", "port": 9477}});
        }
        Control::AppArmor => {
            m["annotations"] =
                json!({"container.apparmor.security.beta.kubernetes.io/gpuprobe": "unconfined"});
        }
        Control::SeLinux => {
            s["securityContext"]["seLinuxOptions"] = json!({"user": "system_u"});
        }
        Control::ProcMount => c["securityContext"]["procMount"] = json!("Unmasked"),
        Control::SeccompBaseline => {
            s["securityContext"]["seccompProfile"]["type"] = json!("Unconfined");
            also = Some(Control::Seccomp);
        }
        Control::Sysctls => {
            s["securityContext"]["sysctls"] = json!([{"name": "kernel.msgmax", "value": "1"}]);
        }
        Control::VolumeTypes => {
            s["volumes"] = json!([{"name": "n", "nfs": {"server": "s", "path": "/"}}]);
        }
        Control::PrivilegeEscalation => {
            c["securityContext"]["allowPrivilegeEscalation"] = Value::Null;
        }
        Control::RunningAsNonRoot => s["securityContext"]["runAsNonRoot"] = Value::Null,
        Control::RunningAsNonRootUser => c["securityContext"]["runAsUser"] = json!(0),
        Control::Seccomp => s["securityContext"]["seccompProfile"] = Value::Null,
        Control::Capabilities => {
            c["securityContext"]["capabilities"] = json!({"drop": ["NET_RAW"]});
        }
        Control::NumericUser => s["securityContext"]["runAsUser"] = Value::Null,
    }
    (s, m, also)
}

/// The checks can fail: each control, broken once in an otherwise
/// restricted pod, is reported under its own name (and only it, or the
/// one other control the same change breaks).
#[test]
fn each_control_catches_its_own_violation() {
    let fine = violations(&restricted_pod(), &json!({}));
    assert!(fine.is_empty(), "{fine:?}");
    for control in Control::ALL {
        let (spec, metadata, also) = broken(control);
        let mut found: Vec<Control> = violations(&spec, &metadata)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        found.sort();
        found.dedup();
        let mut expected: Vec<Control> = std::iter::once(control).chain(also).collect();
        expected.sort();
        assert_eq!(found, expected, "{}", control.name());
    }
    // A Windows pod is spared the Linux-only controls.
    let mut spec = restricted_pod();
    spec["os"] = json!({"name": "windows"});
    spec["containers"][0]["securityContext"] = json!({});
    spec["securityContext"]["seccompProfile"] = Value::Null;
    let windows = violations(&spec, &json!({}));
    assert!(windows.is_empty(), "{windows:?}");
}
