//! gpuprobe against NVIDIA's own driver libraries on a machine without a
//! GPU or kernel module: libcuda and libnvidia-ml 470, 535, 550 and 555 from
//! Debian's non-free component (555 from experimental;
//! scripts/fetch-nvidia-libs). They load and answer without a device, so
//! everything gpuprobe does before a GPU is needed (loading, symbol
//! resolution, the driver version, cuInit's and NVML's failures, the device
//! nodes libcuda itself creates) is proven against the real thing, and the
//! fake driver is held to the same answers.
//!
//! The tests are ignored unless asked for (`--run-ignored all`; a plain run
//! lists them as skipped). Asked for without the libraries (or without root
//! for the cases that need a private /dev), they print a notice and pass,
//! unless GPUPROBE_REQUIRE_TOOLS=1 (set by .ci/run); the Docker case likewise
//! needs a daemon (GPUPROBE_REQUIRE_DOCKER=1). Runs that let libcuda create
//! /dev/nvidiactl get a private /dev (a tmpfs in a mount namespace of their
//! own), so the machine's /dev is never touched.
#![cfg(target_os = "linux")]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::docker::{copy_into, docker, docker_available, libraries, Image};
use gpuprobe::report::{NodeError, Report, Verdict};
use serde_json::Value;

/// A pinned driver: its version, and the CUDA version libcuda reports.
struct Pinned {
    version: &'static str,
    cuda: &'static str,
    cuda_raw: i32,
}

const DRIVERS: [Pinned; 4] = [
    Pinned {
        version: "470.256.02",
        cuda: "11.4",
        cuda_raw: 11040,
    },
    Pinned {
        version: "535.261.03",
        cuda: "12.2",
        cuda_raw: 12020,
    },
    Pinned {
        version: "550.163.01",
        cuda: "12.4",
        cuda_raw: 12040,
    },
    // Debian experimental: the newest NVIDIA libraries reachable here.
    Pinned {
        version: "555.58.02",
        cuda: "12.5",
        cuda_raw: 12050,
    },
];

fn required() -> bool {
    std::env::var("GPUPROBE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Where scripts/fetch-nvidia-libs put the libraries, if it has.
fn libs() -> Option<PathBuf> {
    let dir = std::env::var_os("GPUPROBE_NVIDIA_LIBS")
        .map_or_else(|| common::root().join("target/nvidia-libs"), PathBuf::from);
    let complete = DRIVERS
        .iter()
        .all(|d| dir.join(d.version).join("libcuda.so.1").exists());
    if !complete {
        assert!(
            !required(),
            "NVIDIA's driver libraries are not in {} and GPUPROBE_REQUIRE_TOOLS=1: run scripts/fetch-nvidia-libs",
            dir.display()
        );
        eprintln!(
            "skipped: NVIDIA's driver libraries are not in {} (run scripts/fetch-nvidia-libs)",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Who runs gpuprobe.
#[derive(Clone, Copy, Debug, PartialEq)]
enum User {
    Root,
    Nobody,
}

/// `program args` with `env` and a private, empty /dev (a tmpfs in a new
/// mount namespace, with /dev/null), as `user`. Needs root (to mount and
/// to switch users); `None` with a notice when not root.
fn isolated(user: User, program: &Path, args: &[&str], env: &[(&str, String)]) -> Option<Output> {
    if !is_root() {
        assert!(
            !required(),
            "the real-driver host cases need root (a private /dev) and GPUPROBE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipped: the real-driver host cases need root for a private /dev");
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o mode=755 gpuprobe-dev /dev && mknod -m 666 /dev/null c 1 3 && exec \"$@\"")
        .arg("sh");
    if user == User::Nobody {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    cmd.arg(program).args(args).env_clear();
    cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running unshare");
    assert_ne!(
        out.status.code(),
        Some(125),
        "unshare or setpriv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

fn codes(report: &Report) -> BTreeSet<&str> {
    report.diagnoses.iter().map(|d| d.code.as_str()).collect()
}

/// What every run against a real driver without a GPU must show; `where_`
/// names the case in failures.
fn check_no_gpu_report(
    where_: &str,
    d: &Pinned,
    out: &Output,
    user: User,
    nvml_unknown: bool,
) -> Report {
    assert_eq!(out.status.code(), Some(3), "{where_}: exit code");
    let (_, report) = common::parse_report(&out.stdout);
    assert_eq!(report.verdict, Verdict::NoGpu, "{where_}");
    let path = report.driver.library_path.as_deref().unwrap_or("");
    assert!(
        path.ends_with(&format!("libcuda.so.{}", d.version)),
        "{where_}: the real file is named: {path}"
    );
    assert!(
        report.driver.missing_symbols.is_empty(),
        "{where_}: every required symbol resolves: {:?}",
        report.driver.missing_symbols
    );
    assert_eq!(
        report.driver.cuda_version.as_deref(),
        Some(d.cuda),
        "{where_}"
    );
    assert_eq!(report.driver.cuda_version_raw, Some(d.cuda_raw), "{where_}");
    assert!(
        report.driver.missing_optional_symbols.is_empty(),
        "{where_}: the optional symbols too (cuDeviceGetUuid_v2 is CUDA 11.4): {:?}",
        report.driver.missing_optional_symbols
    );
    // nvmlInit_v2 answers NVML_ERROR_DRIVER_NOT_LOADED without a kernel
    // module, and NVML_ERROR_UNKNOWN where the node it made is refused (a
    // container's device cgroup: `nvml_unknown`).
    assert_eq!(
        report.nvml.error_code,
        Some(if nvml_unknown { 999 } else { 9 }),
        "{where_}: {:?}",
        report.nvml
    );
    let found = codes(&report);
    assert!(
        found.contains("GP001") && !found.contains("GP013") && !found.contains("GP027"),
        "{where_}: no GPU runtime, not a revoked or driverless node: {found:?}"
    );
    let created: Vec<_> = report
        .environment
        .device_nodes
        .iter()
        .filter(|n| n.created_during_run)
        .collect();
    match user {
        User::Root => {
            assert!(
                created
                    .iter()
                    .any(|n| n.path == "/dev/nvidiactl" && !n.openable),
                "{where_}: libcuda as root creates /dev/nvidiactl: {:?}",
                report.environment.device_nodes
            );
            let gp001 = report.diagnoses.iter().find(|x| x.code == "GP001").unwrap();
            assert!(
                gp001
                    .evidence
                    .iter()
                    .any(|e| e.starts_with("/dev/nvidiactl appeared during this run")),
                "{where_}: {:?}",
                gp001.evidence
            );
        }
        User::Nobody => assert!(
            report.environment.device_nodes.is_empty(),
            "{where_}: a user cannot create nodes: {:?}",
            report.environment.device_nodes
        ),
    }
    report
}

/// `health`: one line, exit 1; `exec`: refuses with 3 and does not start
/// the workload (which would print gpuprobe's version and exit 0).
fn check_health_and_exec(where_: &str, health: &Output, exec: &Output) {
    let text = String::from_utf8_lossy(&health.stdout);
    assert_eq!(health.status.code(), Some(1), "{where_}: health: {text}");
    assert_eq!(
        text.lines().count(),
        1,
        "{where_}: health prints one line: {text}"
    );
    assert!(text.starts_with("unhealthy: "), "{where_}: {text}");
    assert!(text.contains("GP001"), "{where_}: {text}");
    assert_eq!(
        exec.status.code(),
        Some(3),
        "{where_}: exec: {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&exec.stdout).contains("gpuprobe"),
        "{where_}: exec started the workload"
    );
}

/// The invocations each case runs: full probe, list, health, exec.
const RUNS: [&[&str]; 4] = [
    &["--json"],
    &["list", "--json"],
    &["health"],
    &["exec", "--", "/gpuprobe", "--version"],
];

#[test]
#[ignore = "needs NVIDIA's driver libraries (scripts/fetch-nvidia-libs) and root: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn real_drivers_on_the_host_as_root_and_as_a_user() {
    let Some(libs) = libs() else { return };
    let binary = assert_cmd::cargo::cargo_bin("gpuprobe");
    for d in &DRIVERS {
        let env = [(
            "LD_LIBRARY_PATH",
            libs.join(d.version).display().to_string(),
        )];
        for user in [User::Root, User::Nobody] {
            let where_ = format!("host, {} as {user:?}", d.version);
            let mut outs = Vec::new();
            for args in RUNS {
                // On the host the workload is gpuprobe itself.
                let args: Vec<&str> = args
                    .iter()
                    .map(|a| {
                        if *a == "/gpuprobe" {
                            binary.to_str().unwrap()
                        } else {
                            a
                        }
                    })
                    .collect();
                let Some(out) = isolated(user, &binary, &args, &env) else {
                    return;
                };
                outs.push(out);
            }
            check_no_gpu_report(&format!("{where_}, probe"), d, &outs[0], user, false);
            let list = check_no_gpu_report(&format!("{where_}, list"), d, &outs[1], user, false);
            assert!(list.devices.is_empty() && list.cpu.is_none(), "{where_}");
            check_health_and_exec(&where_, &outs[2], &outs[3]);
        }
    }
}

/// How an image finds the driver library.
#[derive(Clone, Copy, Debug)]
enum Lookup {
    /// In Debian's own folder for it, found through /etc/ld.so.cache made by
    /// ldconfig (the folder is not on the loader's default path).
    LoaderCache,
    /// In /opt/nvidia, named by LD_LIBRARY_PATH.
    LibraryPath,
}

/// An image FROM scratch with gpuprobe and a real driver baked in;
/// removed when dropped.
fn driver_image(libs: &Path, d: &Pinned, lookup: Lookup) -> Image {
    let context = tempfile::tempdir().unwrap();
    let root = context.path().join("root");
    let binary = assert_cmd::cargo::cargo_bin("gpuprobe");
    let source = libs.join(d.version);
    let folder = match lookup {
        Lookup::LoaderCache => "usr/lib/x86_64-linux-gnu/nvidia/current",
        Lookup::LibraryPath => "opt/nvidia",
    };
    let target = root.join(folder);
    std::fs::create_dir_all(&target).unwrap();
    let mut files = libraries(&binary);
    for lib in ["libcuda", "libnvidia-ml"] {
        let file = format!("{lib}.so.{}", d.version);
        std::fs::copy(source.join(&file), target.join(&file)).unwrap();
        std::os::unix::fs::symlink(&file, target.join(format!("{lib}.so.1"))).unwrap();
        files.extend(libraries(&source.join(&file)));
    }
    files.sort();
    files.dedup();
    for f in &files {
        copy_into(&root, f);
    }
    std::fs::copy(&binary, root.join("gpuprobe")).unwrap();
    let mut dockerfile = String::from("FROM scratch\nCOPY root/ /\n");
    match lookup {
        Lookup::LoaderCache => {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/ld.so.conf"), format!("/{folder}\n")).unwrap();
            // ldconfig -r builds the image's own cache from the image's
            // files, as `RUN ldconfig` would inside it.
            let out = Command::new("ldconfig")
                .arg("-r")
                .arg(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success() && root.join("etc/ld.so.cache").exists(),
                "ldconfig -r: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Lookup::LibraryPath => dockerfile.push_str("ENV LD_LIBRARY_PATH=/opt/nvidia\n"),
    }
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    Image::build(context, "gpuprobe-real-driver")
}

#[test]
#[ignore = "needs NVIDIA's driver libraries (scripts/fetch-nvidia-libs) and a Docker daemon: run with --run-ignored all; .ci/run does"]
fn real_drivers_baked_into_an_image_started_without_gpu_access() {
    let Some(libs) = libs() else { return };
    if !docker_available() {
        return;
    }
    std::thread::scope(|scope| {
        for d in &DRIVERS {
            let libs = &libs;
            scope.spawn(move || {
                for lookup in [Lookup::LoaderCache, Lookup::LibraryPath] {
                    let image = driver_image(libs, d, lookup);
                    for (user, spec) in [(User::Root, "0:0"), (User::Nobody, "65534:65534")] {
                        let where_ = format!("docker, {} via {lookup:?} as {user:?}", d.version);
                        // As root, NVML makes /dev/nvidiactl, which the
                        // device cgroup refuses: NVML_ERROR_UNKNOWN.
                        let unknown = user == User::Root;
                        let outs: Vec<Output> = RUNS
                            .iter()
                            .map(|args| {
                                let mut all =
                                    vec!["run", "--rm", "--network", "none", "--user", spec];
                                all.push(&image.tag);
                                all.push("/gpuprobe");
                                all.extend_from_slice(args);
                                docker(&all)
                            })
                            .collect();
                        let report = check_no_gpu_report(
                            &format!("{where_}, probe"),
                            d,
                            &outs[0],
                            user,
                            unknown,
                        );
                        check_no_gpu_report(&format!("{where_}, list"), d, &outs[1], user, unknown);
                        check_health_and_exec(&where_, &outs[2], &outs[3]);
                        // The libraries are files of the image, not mounts
                        // from the host: the baked-in warning stands beside
                        // GP001.
                        assert_eq!(
                            codes(&report),
                            BTreeSet::from(["GP001", "GP023"]),
                            "{where_}"
                        );
                        if user == User::Root {
                            // Root may mknod in a default container, but the
                            // device cgroup refuses to open what it made.
                            let node = report
                                .environment
                                .device_nodes
                                .iter()
                                .find(|n| n.path == "/dev/nvidiactl")
                                .unwrap();
                            assert_eq!(
                                node.error_kind,
                                Some(NodeError::PermissionDenied),
                                "{where_}: {node:?}"
                            );
                        }
                        if let Lookup::LoaderCache = lookup {
                            assert!(
                                report
                                    .driver
                                    .library_path
                                    .as_deref()
                                    .is_some_and(|p| p
                                        .starts_with("/usr/lib/x86_64-linux-gnu/nvidia/current/")),
                                "{where_}: {:?}",
                                report.driver.library_path
                            );
                        }
                    }
                }
            });
        }
    });
}

/// The answers of `driver-answers` for one pair of libraries, in a fresh
/// process with a private /dev (libcuda's cuInit may create a node).
fn answers(cuda: &Path, nvml: &Path, env: &[(&str, String)]) -> Option<Value> {
    let tool = common::fakegpu_tool("driver-answers");
    let out = isolated(
        User::Root,
        &tool,
        &[cuda.to_str().unwrap(), nvml.to_str().unwrap()],
        env,
    )?;
    assert!(
        out.status.success(),
        "driver-answers {}: {}",
        cuda.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The fake, configured for "this driver, no device", answers the device-free
/// calls exactly as NVIDIA's library does: cuDriverGetVersion,
/// cuDeviceGetCount before and after cuInit, cuInit itself (twice),
/// cuGetErrorName and cuGetErrorString for every code 0-999, nvmlInit_v2,
/// nvmlSystemGetDriverVersion before and after it, nvmlErrorString for every
/// code.
#[test]
#[ignore = "needs NVIDIA's driver libraries (scripts/fetch-nvidia-libs) and root: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn the_fake_answers_device_free_calls_as_the_real_driver_does() {
    let Some(libs) = libs() else { return };
    for d in &DRIVERS {
        let real_dir = libs.join(d.version);
        let Some(real) = answers(
            &real_dir.join("libcuda.so.1"),
            &real_dir.join("libnvidia-ml.so.1"),
            &[],
        ) else {
            return;
        };
        assert_eq!(real["cuda"]["cuDriverGetVersion"]["version"], d.cuda_raw);
        let scenario = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            scenario.path(),
            serde_json::json!({
                "description": format!("NVIDIA {} with no GPU and no kernel module", d.version),
                "driver_version": d.cuda_raw,
                "cuda_library_version": d.version,
                "devices": [],
                "nvml": {"init_result": 9, "driver_version": d.version},
                "host": {"dev": [], "runs_as_root": true, "proc_driver_version": null}
            })
            .to_string(),
        )
        .unwrap();
        let fake_dir = common::fake_driver(scenario.path());
        let env = common::scenario_env(fake_dir.path());
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let fake = answers(
            &fake_dir.path().join("libcuda.so.1"),
            &fake_dir.path().join("libnvidia-ml.so.1"),
            &env,
        )
        .expect("root was checked above");
        for library in ["cuda", "nvml"] {
            let (r, f) = (&real[library], &fake[library]);
            for (call, answer) in r.as_object().unwrap() {
                assert_eq!(
                    Some(answer),
                    f.get(call),
                    "{}: the fake's {call} differs from NVIDIA's",
                    d.version
                );
            }
        }
    }
}

/// Every symbol the fake libraries export, standing for a pinned driver, is
/// one that driver's own libraries export under the same name, so the fake
/// offers gpuprobe nothing a real driver would not.
#[test]
#[ignore = "needs NVIDIA's driver libraries (scripts/fetch-nvidia-libs): run with --run-ignored all; .ci/run does"]
fn every_symbol_the_fake_exports_exists_in_the_real_libraries() {
    let Some(libs) = libs() else { return };
    for d in &DRIVERS {
        let out = Command::new(common::fakegpu_tool("driver-answers"))
            .args(["--exports", d.version])
            .output()
            .unwrap();
        let exports: Value = serde_json::from_slice(&out.stdout).unwrap();
        for (library, file) in [("cuda", "libcuda.so.1"), ("nvml", "libnvidia-ml.so.1")] {
            let path = libs.join(d.version).join(file);
            // SAFETY: loading the library runs its initialisers only; no
            // driver call is made, the symbols are only looked up.
            let lib = unsafe { libloading::Library::new(&path) }.unwrap();
            let missing: Vec<&str> = exports[library]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|name| {
                    // SAFETY: the symbol is looked up, never called.
                    unsafe { lib.get::<*const ()>(format!("{name}\0").as_bytes()) }.is_err()
                })
                .collect();
            assert!(
                missing.is_empty(),
                "{} {file} lacks what the fake exports: {missing:?}",
                d.version
            );
        }
    }
}

/// gpuprobe's own names for CUresult codes (used when a driver cannot name
/// them) are NVIDIA's: each equals what a real cuGetErrorName answers. Only
/// CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER (36, from a cuda.h newer than 12.4)
/// is unknown to every pinned driver; any other such code fails the test.
/// gpuprobe's NVML codes (nvml-wrapper's NvmlError, read back through
/// `telemetry::nvml_code`) round-trip for every code nvml.h defines, and
/// each is one the real nvmlErrorString names.
#[test]
#[ignore = "needs NVIDIA's driver libraries (scripts/fetch-nvidia-libs) and root: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn gpuprobe_names_error_codes_as_the_real_driver_does() {
    let Some(libs) = libs() else { return };
    let mut cuda_names = std::collections::BTreeMap::new();
    let mut nvml_known = BTreeSet::new();
    for d in &DRIVERS {
        let dir = libs.join(d.version);
        let Some(answers) = answers(
            &dir.join("libcuda.so.1"),
            &dir.join("libnvidia-ml.so.1"),
            &[],
        ) else {
            return;
        };
        for (code, e) in answers["cuda"]["errors"].as_object().unwrap() {
            cuda_names.insert(code.parse::<i32>().unwrap(), e["name"].clone());
        }
        for code in answers["nvml"]["nvmlErrorString"]
            .as_object()
            .unwrap()
            .keys()
        {
            nvml_known.insert(code.parse::<i32>().unwrap());
        }
    }
    let mut unverified = Vec::new();
    for (code, name) in gpuprobe::cuda::error::known_codes() {
        match cuda_names.get(&code) {
            Some(real) => assert_eq!(real, &Value::String(name.clone()), "CUresult {code}"),
            None => unverified.push(code),
        }
    }
    assert_eq!(unverified, [36], "codes no pinned driver names");
    let mut unverified = Vec::new();
    for code in (1..=40).chain([999]) {
        // Codes nvml-wrapper has no variant for are not named by gpuprobe.
        let error = match nvml_wrapper::error::nvml_try(code as u32) {
            Ok(()) | Err(nvml_wrapper::error::NvmlError::UnexpectedVariant(_)) => continue,
            Err(error) => error,
        };
        if let Some(named) = gpuprobe::telemetry::nvml_code(error) {
            assert_eq!(
                named, code,
                "gpuprobe reads NVML code {code} back as {named}"
            );
            // 999 (NVML_ERROR_UNKNOWN) is what nvmlErrorString calls every
            // code it does not know, so it is not in the named list.
            if !nvml_known.contains(&code) && code != 999 {
                unverified.push(code);
            }
        }
    }
    assert!(
        unverified.is_empty(),
        "NVML codes gpuprobe names that no pinned driver names: {unverified:?}"
    );
}
