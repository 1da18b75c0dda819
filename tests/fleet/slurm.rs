//! deploy/slurm against a real one-node Slurm (Debian's slurm-wlm and
//! munge): munged, slurmctld and slurmd started here with a generated
//! slurm.conf in a temporary folder, slurmd running the health-check script
//! as its HealthCheckProgram every 2 s. A failing fake scenario drains the
//! node with gpuprobe's reason (`sinfo -R`), a healthy one resumes it, and
//! a drain an administrator made stays. The Prolog's GPU-job gate is tested
//! without Slurm (it only reads slurmd's environment).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{fake_driver, root, scenario, scenario_env};
use crate::support::{free_port, required, tool, wait_for, Killed};

const INSTALL: &str = "apt-get install slurm-wlm munge";

fn script(name: &str) -> PathBuf {
    root().join("deploy/slurm").join(name)
}

/// The defaults file the scripts read: the gpuprobe binary and the
/// scenario's fake-driver environment.
fn write_defaults(path: &Path, driver: &Path) {
    let mut text = format!(
        "GPUPROBE={}\n",
        assert_cmd::cargo::cargo_bin("gpuprobe").display()
    );
    for (k, v) in scenario_env(driver) {
        let _ = writeln!(text, "export {k}='{v}'");
    }
    std::fs::write(path, text).unwrap();
}

/// A one-node cluster; its daemons are killed when it is dropped.
struct Cluster {
    dir: tempfile::TempDir,
    node: String,
    _daemons: Vec<Killed>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // munged refuses a key others can read.
        let mut key = vec![0u8; 1024];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key)
            .unwrap();
        std::fs::write(d.join("munge.key"), key).unwrap();
        set_mode(&d.join("munge.key"), 0o600);
        set_mode(d, 0o700);
        let node = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        // slurmd runs the wrapper with a bare environment: it names the
        // config and the defaults file, counts its runs, then runs the script.
        let wrapper = d.join("healthcheck");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexport PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_CONF={conf} GPUPROBE_SLURM_DEFAULTS={defaults}\n\
                 echo run >> {runs}\nexec {script}\n",
                conf = d.join("slurm.conf").display(),
                defaults = d.join("defaults").display(),
                runs = d.join("runs").display(),
                script = script("gpuprobe-healthcheck.sh").display(),
            ),
        )
        .unwrap();
        set_mode(&wrapper, 0o755);
        let conf = format!(
            "ClusterName=gpuprobetest\nSlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nSlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nAuthInfo=socket={d}/munge.sock\nCredType=cred/munge\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/linear\n\
             ReturnToService=2\nMpiDefault=none\nSwitchType=switch/none\nJobCompType=jobcomp/none\n\
             HealthCheckProgram={wrapper}\nHealthCheckInterval=2\nHealthCheckNodeState=ANY\n\
             NodeName={node} NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n\
             PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            d = d.display(),
            wrapper = wrapper.display(),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        let daemon = |program: &str, args: &[String]| {
            Killed(
                Command::new(program)
                    .args(args)
                    .env("SLURM_CONF", d.join("slurm.conf"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting {program}: {e}")),
            )
        };
        let p = |x: &str| d.join(x).display().to_string();
        let mut daemons = vec![daemon(
            "munged",
            &[
                "--foreground".into(),
                "--force".into(),
                format!("--key-file={}", p("munge.key")),
                format!("--socket={}", p("munge.sock")),
                format!("--pid-file={}", p("munged.pid")),
                format!("--log-file={}", p("log/munged.log")),
                format!("--seed-file={}", p("munged.seed")),
            ],
        )];
        wait_for("munged's socket", Duration::from_secs(30), || {
            d.join("munge.sock").exists().then_some(())
        });
        daemons.push(daemon("slurmctld", &["-D".into(), "-i".into()]));
        daemons.push(daemon("slurmd", &["-D".into()]));
        Cluster {
            dir,
            node,
            _daemons: daemons,
        }
    }

    fn sinfo(&self, args: &[&str]) -> String {
        let out = Command::new("sinfo")
            .args(args)
            .env("SLURM_CONF", self.dir.path().join("slurm.conf"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The node's state and drain reason ("none" when there is none).
    fn state(&self) -> (String, String) {
        let line = self.sinfo(&["-h", "-N", "-n", &self.node, "-o", "%T|%E"]);
        let (state, reason) = line.split_once('|').unwrap_or((&line, ""));
        (state.to_string(), reason.to_string())
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs")).map_or(0, |t| t.lines().count())
    }

    fn scontrol(&self, args: &[&str]) {
        let status = Command::new("scontrol")
            .args(args)
            .env("SLURM_CONF", self.dir.path().join("slurm.conf"))
            .status()
            .unwrap();
        assert!(status.success(), "scontrol {args:?}");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
#[ignore = "needs root, slurm-wlm and munge (apt-get install slurm-wlm munge): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn slurm_drains_on_gpuprobe_failure_and_resumes_when_healthy() {
    for program in ["munged", "slurmctld", "slurmd", "sinfo", "scontrol"] {
        if tool(program, INSTALL).is_none() {
            return;
        }
    }
    if !is_root() {
        assert!(
            !required(),
            "the Slurm test needs root and GPUPROBE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipped: the Slurm test starts slurmctld and slurmd, which needs root");
        return;
    }
    let failing = fake_driver(&scenario("multi-gpu-one-corrupt"));
    let healthy = fake_driver(&scenario("healthy"));
    let cluster = Cluster::start();
    let defaults = cluster.dir.path().join("defaults");
    write_defaults(&defaults, failing.path());

    let bound = Duration::from_secs(60);
    let (state, reason) = wait_for("slurmd's health check to drain the node", bound, || {
        let (state, reason) = cluster.state();
        reason.starts_with("gpuprobe: ").then_some((state, reason))
    });
    assert!(state.starts_with("drain"), "{state}");
    assert!(
        reason.starts_with(
            "gpuprobe: unhealthy: GPU 2 (GPU-3b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a53) failed verify"
        ),
        "{reason}"
    );
    let listed = cluster.sinfo(&["-R", "-h", "-o", "%E|%N"]);
    assert_eq!(listed, format!("{reason}|{}", cluster.node));

    write_defaults(&defaults, healthy.path());
    wait_for("a healthy run to resume the node", bound, || {
        let (state, reason) = cluster.state();
        (state == "idle" && reason == "none").then_some(())
    });

    // A drain someone else made is not the script's to lift.
    cluster.scontrol(&[
        "update",
        &format!("nodename={}", cluster.node),
        "state=drain",
        "reason=maintenance",
    ]);
    let seen = cluster.runs();
    wait_for("two more health-check runs", bound, || {
        (cluster.runs() >= seen + 2).then_some(())
    });
    let (state, reason) = cluster.state();
    assert!(state.starts_with("drain"), "{state}");
    assert_eq!(reason, "maintenance");
}

/// The Prolog with stand-ins for sinfo and scontrol that log their calls.
fn prolog(driver: &Path, job_gpus: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    for stub in ["sinfo", "scontrol"] {
        let path = dir.path().join(stub);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {stub} \"$@\" >> {}\n", log.display()),
        )
        .unwrap();
        set_mode(&path, 0o755);
    }
    let defaults = dir.path().join("defaults");
    write_defaults(&defaults, driver);
    let mut cmd = Command::new(script("gpuprobe-prolog.sh"));
    cmd.env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env("GPUPROBE_SLURM_DEFAULTS", &defaults)
        .env("SLURMD_NODENAME", "gpu-node-01");
    if let Some(gpus) = job_gpus {
        cmd.env("SLURM_JOB_GPUS", gpus);
    }
    let status = cmd.status().unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (status.code().unwrap(), calls)
}

#[test]
fn prolog_refuses_gpu_jobs_on_a_failing_node_only() {
    let failing = fake_driver(&scenario("multi-gpu-one-corrupt"));
    let healthy = fake_driver(&scenario("healthy"));
    // A job without GPUs: nothing runs.
    assert_eq!(prolog(failing.path(), None), (0, String::new()));
    // A GPU job on a failing node: drained with gpuprobe's reason, refused.
    let (code, calls) = prolog(failing.path(), Some("0,1"));
    assert_eq!(code, 1, "{calls}");
    assert!(
        calls.contains(
            "scontrol update nodename=gpu-node-01 state=drain reason=gpuprobe: unhealthy: GPU 2"
        ),
        "{calls}"
    );
    // A GPU job on a healthy node runs, and nothing is drained.
    let (code, calls) = prolog(healthy.path(), Some("0"));
    assert_eq!(code, 0, "{calls}");
    assert!(!calls.contains("scontrol"), "{calls}");
    // A diagnosis's action reaches the drain reason: uncorrectable memory
    // errors (GP015) ask for the node out of service, not a retry.
    let broken = fake_driver(&scenario("ecc-uncorrectable"));
    let (code, calls) = prolog(broken.path(), Some("0"));
    assert_eq!(code, 1, "{calls}");
    assert!(
        calls.contains("state=drain reason=gpuprobe: unhealthy: ")
            && calls.contains("action drain_and_service]"),
        "{calls}"
    );
}
