//! gpuprobe in a real Docker engine, with the fake driver mounted in place of
//! the toolkit-injected libcuda: HEALTHCHECK reaches `healthy` or
//! `unhealthy` as the GPU deserves, the exec entrypoint starts its CMD (as
//! PID 1) only on a good GPU, and `docker stop` ends a watch cleanly.
//!
//! No registry is reachable, so the images are built FROM scratch out of
//! files on this machine: the binary, the fake driver per scenario, /bin/sh
//! and the glibc files they load. The tests are ignored unless asked for
//! (`--run-ignored all`; a plain run lists them as skipped); asked for
//! without a Docker daemon they print a notice and pass, unless
//! GPUPROBE_REQUIRE_DOCKER=1 (set by .ci/run).
#![cfg(target_os = "linux")]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::docker::{copy_into, docker, docker_available, libraries, unique, Image};

const SCENARIOS: [&str; 3] = ["healthy", "multi-gpu-one-corrupt", "hang"];

/// A scratch image from `dockerfile`; removed when dropped.
fn scratch_image(dockerfile: &str) -> Image {
    let context = tempfile::tempdir().unwrap();
    let root = context.path().join("root");
    let binary = assert_cmd::cargo::cargo_bin("gpuprobe");
    let mut files = vec![PathBuf::from("/bin/sh")];
    for scenario in SCENARIOS {
        let path = common::scenario(scenario);
        let fake = common::fake_driver(&path);
        let lib = fake.path().join("libcuda.so.1");
        let dir = root.join("fake").join(scenario);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&lib, dir.join("libcuda.so.1")).unwrap();
        let _ = Command::new("strip")
            .arg("--strip-debug")
            .arg(dir.join("libcuda.so.1"))
            .output();
        std::fs::copy(&path, root.join("fake").join(format!("{scenario}.json"))).unwrap();
        files.extend(libraries(&lib));
    }
    files.extend(libraries(&binary));
    files.extend(libraries(Path::new("/bin/sh")));
    files.sort();
    files.dedup();
    for f in &files {
        copy_into(&root, f);
    }
    std::fs::copy(&binary, root.join("gpuprobe")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY root/ /\n{dockerfile}"),
    )
    .unwrap();
    Image::build(context, "gpuprobe-test")
}

/// A running container; removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn scenario_env(scenario: &str) -> [String; 6] {
    let (var, size) = common::BANDWIDTH_SIZE;
    [
        "-e".into(),
        format!("LD_LIBRARY_PATH=/fake/{scenario}"),
        "-e".into(),
        format!("FAKEGPU_SCENARIO=/fake/{scenario}.json"),
        "-e".into(),
        format!("{var}={size}"),
    ]
}

fn inspect(name: &str, format: &str) -> String {
    let out = docker(&["inspect", "-f", format, name]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until Docker's health status leaves `starting`.
fn settled_health(name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = inspect(name, "{{.State.Health.Status}}");
        if status != "starting" && !status.is_empty() || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

const HEALTH_IMAGE: &str = r#"HEALTHCHECK --interval=1s --timeout=10s --retries=1 CMD ["/gpuprobe", "health", "--timeout", "3s"]
ENTRYPOINT ["/gpuprobe", "watch", "--interval", "1h", "--quiet", "--size", "16", "--iterations", "1", "--timeout", "3s"]
"#;

#[test]
#[ignore = "needs a Docker daemon: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_DOCKER=1"]
fn healthcheck_follows_the_gpu_and_docker_stop_ends_watch_cleanly() {
    if !docker_available() {
        return;
    }
    let image = scratch_image(HEALTH_IMAGE);
    for (scenario, expected) in [
        ("healthy", "healthy"),
        ("multi-gpu-one-corrupt", "unhealthy"),
        ("hang", "unhealthy"),
    ] {
        let name = unique("gpuprobe-health");
        let mut args = vec![
            "run".to_string(),
            "-d".into(),
            "--network".into(),
            "none".into(),
            "--name".into(),
            name.clone(),
        ];
        args.extend(scenario_env(scenario));
        args.push(image.tag.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let container = Container(name);
        let status = settled_health(&container.0);
        let log = inspect(
            &container.0,
            "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}",
        );
        assert_eq!(status, expected, "{scenario}: health log: {log}");

        if scenario == "healthy" {
            // PID 1 must act on SIGTERM itself; otherwise docker stop waits
            // out its grace period and kills (exit 137).
            let started = Instant::now();
            let out = docker(&["stop", "-t", "20", &container.0]);
            assert!(out.status.success());
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "docker stop took {:?}",
                started.elapsed()
            );
            assert_eq!(inspect(&container.0, "{{.State.ExitCode}}"), "0");
        }
    }
}

const EXEC_IMAGE: &str = r#"ENTRYPOINT ["/gpuprobe", "exec", "--size", "16", "--iterations", "1", "--timeout", "3s", "--"]
CMD ["/bin/sh", "-c", "echo workload ran as pid $$"]
"#;

#[test]
#[ignore = "needs a Docker daemon: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_DOCKER=1"]
fn exec_entrypoint_starts_the_workload_only_on_a_good_gpu() {
    if !docker_available() {
        return;
    }
    let image = scratch_image(EXEC_IMAGE);
    for (scenario, code) in [("healthy", 0), ("multi-gpu-one-corrupt", 1), ("hang", 4)] {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--network".into(),
            "none".into(),
        ];
        args.extend(scenario_env(scenario));
        args.push(image.tag.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{scenario}: {stdout}{stderr}"
        );
        if code == 0 {
            assert_eq!(stdout.trim(), "workload ran as pid 1", "{stderr}");
        } else {
            assert!(
                !stdout.contains("workload ran"),
                "{scenario}: the workload must not start"
            );
            assert!(
                stderr.contains("verdict: "),
                "{scenario}: the diagnosis goes to stderr: {stderr}"
            );
        }
    }
}

/// An image imported with `docker import` from a root file system tarball
/// made of this machine's files (no registry is reachable): /bin/sh, cp and
/// mkdir, and the libraries they, gpuprobe and the fake driver load. CI's
/// stand-in for the Dockerfile's BASE (NVIDIA's CUDA base for users) and
/// BUILDER (a Rust image; with PREBUILT it only copies a binary).
fn imported_base(also_for: &[&Path]) -> Image {
    let context = tempfile::tempdir().unwrap();
    let root = context.path().join("root");
    let mut files: Vec<PathBuf> = ["/bin/sh", "/bin/cp", "/bin/mkdir"]
        .map(PathBuf::from)
        .to_vec();
    for binary in files
        .clone()
        .iter()
        .map(PathBuf::as_path)
        .chain(also_for.iter().copied())
    {
        files.extend(libraries(binary));
    }
    files.sort();
    files.dedup();
    for f in &files {
        copy_into(&root, f);
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let tarball = context.path().join("rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = unique("gpuprobe-base");
    let out = docker(&["import", tarball.to_str().unwrap(), &tag]);
    assert!(
        out.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Image::adopt(tag, context)
}

/// The classic builder keeps a multi-stage build's earlier stages as
/// untagged images; on drop, removes those built on the base `.0` (an image
/// id), found by their parent chain, so other builds' images stay.
struct BuildStage(String);

impl Drop for BuildStage {
    fn drop(&mut self) {
        let out = docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let mut parent = id.to_string();
            while !parent.is_empty() && parent != self.0 {
                parent = inspect(&parent, "{{.Parent}}");
            }
            if parent == self.0 {
                let _ = docker(&["rmi", id]);
            }
        }
    }
}

/// The Dockerfile's image runs as nobody: the libraries the toolkit injects
/// are readable by every user, and so must the fake's folder be when it is
/// mounted in their place (a temporary folder is its owner's alone).
fn readable_by_all(dir: &Path) {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
#[ignore = "needs a Docker daemon: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_DOCKER=1"]
fn dockerfile_image_gates_on_the_gpu_and_reports_health() {
    if !docker_available() {
        return;
    }
    let scenario = common::scenario("healthy");
    let fake = common::fake_driver(&scenario);
    readable_by_all(fake.path());
    let binary = assert_cmd::cargo::cargo_bin("gpuprobe");
    let base = imported_base(&[&binary, &fake.path().join("libcuda.so.1")]);

    // The repository's Dockerfile, with this build's binary as PREBUILT.
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::root().join("Dockerfile"),
        context.path().join("Dockerfile"),
    )
    .unwrap();
    std::fs::create_dir_all(context.path().join("dist")).unwrap();
    std::fs::copy(&binary, context.path().join("dist/gpuprobe")).unwrap();
    let tag = unique("gpuprobe-dockerfile");
    let out = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .args(["--build-arg", &format!("BASE={}", base.tag)])
        .args(["--build-arg", &format!("BUILDER={}", base.tag)])
        .args(["--build-arg", "PREBUILT=dist/gpuprobe"])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build of Dockerfile failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = Image::adopt(tag, context);
    let _build_stage = BuildStage(inspect(&base.tag, "{{.Id}}"));
    assert_eq!(
        inspect(&image.tag, "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","gpuprobe","health"]"#
    );
    assert_eq!(
        inspect(&image.tag, "{{json .Config.Entrypoint}}"),
        r#"["gpuprobe","exec","--"]"#
    );
    // Not root, and a number Kubernetes' runAsNonRoot can check.
    assert_eq!(inspect(&image.tag, "{{.Config.User}}"), "65534:65534");

    // No GPU runtime: the gate refuses with 3 and CMD never starts.
    let out = docker(&["run", "--rm", "--network", "none", &image.tag]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("verdict: NO GPU"), "{stderr}");
    assert!(out.stdout.is_empty(), "CMD must not start");

    // The image's HEALTHCHECK: unhealthy without a GPU, healthy with the
    // fake driver mounted where the toolkit would inject libcuda.so.1.
    let scenarios = common::root().join("tests/scenarios");
    for (mounted, expected) in [(false, "unhealthy"), (true, "healthy")] {
        let name = unique("gpuprobe-dockerfile-health");
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--network",
            "none",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--name",
            &name,
            "--entrypoint",
            "gpuprobe",
        ]
        .map(String::from)
        .to_vec();
        if mounted {
            args.extend([
                "-v".into(),
                format!("{}:/fake:ro", fake.path().display()),
                "-v".into(),
                format!("{}:/scenarios:ro", scenarios.display()),
                "-e".into(),
                "LD_LIBRARY_PATH=/fake".into(),
                "-e".into(),
                "FAKEGPU_SCENARIO=/scenarios/healthy.json".into(),
            ]);
        }
        args.push(image.tag.clone());
        args.extend(["watch", "--interval", "1h", "--quiet", "--size", "16"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let container = Container(name);
        let status = settled_health(&container.0);
        let log = inspect(
            &container.0,
            "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}",
        );
        assert_eq!(
            status, expected,
            "mounted fake: {mounted}; health log: {log}"
        );
    }
}
