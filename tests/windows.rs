//! gpuprobe.exe for real: cross-built for x86_64-pc-windows-gnu with
//! Debian's mingw-w64 and run under Debian's wine64 (FACTS.md, section 8).
//! With no driver: the JSON report is schema-valid with verdict `no_gpu`,
//! exit 3, a missing nvcuda.dll is "not found" (not "found but could not be
//! loaded"), GP018 and its fix in a Windows container, `health` one line
//! and exit 1, `exec` refusing with 3 and `--warn-only` passing the child's
//! exit code through. With the fake driver cross-built as nvcuda.dll and
//! nvml.dll beside the .exe (`fakegpu prepare-windows`, kernels run on fibers
//! instead of ucontext): a healthy GPU exits 0 and a corrupting one exits 1.
//!
//! The tests need wine64, mingw-w64 and the Rust target, so they are ignored
//! unless asked for (`--run-ignored all`); asked for without one, they say
//! so and pass, unless GPUPROBE_REQUIRE_TOOLS=1 (set by .ci/run).
#![cfg(target_os = "linux")]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gpuprobe::report::{CheckStatus, DeviceStatus, Verdict};
use serde_json::Value;

const TARGET: &str = "x86_64-pc-windows-gnu";

fn missing(tool: &str) {
    assert!(
        std::env::var("GPUPROBE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{tool} not found and GPUPROBE_REQUIRE_TOOLS=1"
    );
    eprintln!(
        "skipped: {tool} not found (install it, or set GPUPROBE_REQUIRE_TOOLS=1 to make this fail)"
    );
}

/// Debian installs wine64 outside PATH (package wine64); WINE64 overrides.
fn wine64() -> Option<PathBuf> {
    let candidates = std::env::var_os("WINE64")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/lib/wine/wine64"), "wine64".into()]);
    candidates
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
}

/// The tools every test here needs, or the name of the first one missing.
fn tools() -> Result<PathBuf, &'static str> {
    let wine = wine64().ok_or("wine64 (apt-get install wine64)")?;
    if Command::new("x86_64-w64-mingw32-g++")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("x86_64-w64-mingw32-g++ (apt-get install g++-mingw-w64-x86-64)");
    }
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = libdir
        .and_then(|d| std::fs::read_dir(d).ok())
        .is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        });
    if !installed {
        return Err(
            "the Rust target x86_64-pc-windows-gnu (rustup target add x86_64-pc-windows-gnu)",
        );
    }
    Ok(wine)
}

/// Builds with cargo for the Windows target; the artifacts' paths.
fn cargo_build(args: &[&str]) -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--target",
            TARGET,
        ])
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo build {args:?} --target {TARGET} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A folder holding gpuprobe.exe and what wine needs beside it, and a wine
/// prefix of its own; its wineserver is stopped when dropped.
struct WinDir {
    wine: PathBuf,
    dir: tempfile::TempDir,
    prefix: tempfile::TempDir,
    /// An empty root: no C:\Windows\System32 for gpuprobe to inspect.
    root: tempfile::TempDir,
}

impl WinDir {
    fn new(wine: PathBuf) -> WinDir {
        let exe = cargo_build(&["--bin", "gpuprobe"])
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "exe"))
            .expect("cargo built no gpuprobe.exe");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&exe, dir.path().join("gpuprobe.exe")).unwrap();
        // Rust's std asks bcryptprimitives.dll for ProcessPrng, which wine
        // 8.0 lacks (FACTS.md, section 8): a stand-in goes beside the .exe.
        let stub = common::root().join("tests/wine/bcryptprimitives");
        let out = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-shared", "-o"])
            .arg(dir.path().join("bcryptprimitives.dll"))
            .arg(stub.with_extension("c"))
            .arg(stub.with_extension("def"))
            .arg("-ladvapi32")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the bcryptprimitives.dll stand-in failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let win = WinDir {
            wine,
            dir,
            prefix: tempfile::tempdir().unwrap(),
            root: tempfile::tempdir().unwrap(),
        };
        // Create the prefix once, before any run reads its output.
        let boot = win.wine().arg("wineboot").arg("--init").output().unwrap();
        assert!(boot.status.success(), "wineboot: {boot:?}");
        win
    }

    fn wine(&self) -> Command {
        let mut cmd = Command::new(&self.wine);
        cmd.current_dir(self.dir.path())
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            .env("GPUPROBE_TEST_ROOT", windows_path(self.root.path()))
            .env_remove("FAKEGPU_SCENARIO")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("NVIDIA_VISIBLE_DEVICES");
        cmd
    }

    /// gpuprobe.exe with `args` under wine.
    fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = self.wine();
        cmd.arg("gpuprobe.exe").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

impl Drop for WinDir {
    fn drop(&mut self) {
        let server = self.wine.with_file_name("wineserver");
        let _ = Command::new(server)
            .arg("-k")
            .env("WINEPREFIX", self.prefix.path())
            .output();
    }
}

/// What a Windows program under wine calls a Linux path (wine maps Z: to /).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display().to_string().replace('/', "\\"))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("wine ended by a signal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
#[ignore = "needs wine64, mingw-w64 and the x86_64-pc-windows-gnu target: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn exe_without_a_driver_reports_no_gpu_with_the_windows_fix() {
    let wine = match tools() {
        Ok(wine) => wine,
        Err(tool) => return missing(tool),
    };
    let win = WinDir::new(wine);

    // Outside a container: no driver, classified as not found.
    let out = win.run(&["--json"], &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let (_, report) = common::parse_report(&out.stdout);
    assert_eq!(report.verdict, Verdict::NoGpu);
    let load = report
        .checks
        .iter()
        .find(|c| c.name == "load_driver")
        .expect("a load_driver check");
    assert_eq!(load.status, CheckStatus::Fail);
    assert!(
        load.detail
            .contains("no CUDA driver library found (tried nvcuda.dll)"),
        "a missing nvcuda.dll is not found: {}",
        load.detail
    );
    assert!(
        !load.detail.contains("could not be loaded"),
        "{}",
        load.detail
    );

    // A Windows container (its images have C:\License.txt) started without
    // the GPU device class: GP018 with the documented fix.
    std::fs::write(win.root.path().join("License.txt"), "").unwrap();
    let out = win.run(&["--json"], &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let (_, report) = common::parse_report(&out.stdout);
    assert_eq!(report.verdict, Verdict::NoGpu);
    let windows = report.environment.windows.as_ref().expect("windows facts");
    assert!(windows.container && !windows.host_driver_store);
    let gp018 = report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP018")
        .unwrap_or_else(|| panic!("GP018 expected: {:?}", report.diagnoses));
    assert!(
        gp018
            .fix
            .contains("--isolation process --device class/5B45201D-F2F2-4F3B-85BB-30FF1F953599"),
        "{}",
        gp018.fix
    );

    // HEALTHCHECK: one line, exit 1.
    let out = win.run(&["health"], &[]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.trim_end().lines().count(), 1, "one line: {stdout:?}");
    assert!(stdout.starts_with("unhealthy: "), "{stdout}");
    assert!(stdout.contains("GP018"), "{stdout}");

    // ENTRYPOINT: refuses with 3 without starting the workload ...
    let out = win.run(&["exec", "--", "cmd", "/c", "echo workload ran"], &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("workload ran"));
    assert!(
        text(&out.stderr).contains("verdict: "),
        "{}",
        text(&out.stderr)
    );
    // ... and with --warn-only the workload runs and its code comes back.
    let out = win.run(&["exec", "--warn-only", "--", "cmd", "/c", "exit 7"], &[]);
    assert_eq!(code(&out), 7, "{}", text(&out.stderr));
}

#[test]
#[ignore = "needs wine64, mingw-w64 and the x86_64-pc-windows-gnu target: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn exe_with_a_broken_nvcuda_dll_reports_it_found_but_unloadable() {
    let wine = match tools() {
        Ok(wine) => wine,
        Err(tool) => return missing(tool),
    };
    let win = WinDir::new(wine);
    std::fs::write(win.dir.path().join("nvcuda.dll"), b"not a DLL").unwrap();
    let out = win.run(&["--json"], &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let (_, report) = common::parse_report(&out.stdout);
    let load = report
        .checks
        .iter()
        .find(|c| c.name == "load_driver")
        .expect("a load_driver check");
    assert!(
        load.detail
            .contains("nvcuda.dll was found but could not be loaded"),
        "{}",
        load.detail
    );
}

#[test]
#[ignore = "needs wine64, mingw-w64 and the x86_64-pc-windows-gnu target: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn exe_with_the_fake_driver_dlls_passes_a_good_gpu_and_fails_a_corrupt_one() {
    let wine = match tools() {
        Ok(wine) => wine,
        Err(tool) => return missing(tool),
    };
    let archive = cargo_build(&["-p", "fakegpu", "--lib"])
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "libfakegpu.a"))
        .expect("cargo built no libfakegpu.a");
    let win = WinDir::new(wine);
    for (scenario, expected) in [("healthy", 0), ("multi-gpu-one-corrupt", 1)] {
        let path = common::scenario(scenario);
        let out = Command::new(common::fakegpu_tool("fakegpu"))
            .arg("prepare-windows")
            .arg(&path)
            .arg(win.dir.path())
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fakegpu prepare-windows: {}",
            text(&out.stderr)
        );
        let out = win.run(
            &["--json", "--size", "64", "--iterations", "1"],
            &[
                ("FAKEGPU_SCENARIO", windows_path(&path)),
                (common::BANDWIDTH_SIZE.0, common::BANDWIDTH_SIZE.1.into()),
            ],
        );
        assert_eq!(code(&out), expected, "{scenario}: {}", text(&out.stderr));
        let (_, report) = common::parse_report(&out.stdout);
        assert_eq!(
            report.driver.library_path.as_deref(),
            Some("nvcuda.dll"),
            "{scenario}"
        );
        assert_eq!(
            report.nvml.status,
            gpuprobe::report::NvmlStatus::Loaded,
            "{scenario}"
        );
        if expected == 0 {
            assert_eq!(report.verdict, Verdict::Healthy, "{}", report.summary);
            assert_eq!(report.devices.len(), 1);
            assert_eq!(report.devices[0].status, DeviceStatus::Pass);
        } else {
            assert_eq!(report.verdict, Verdict::Failed, "{}", report.summary);
            let failed: Vec<u32> = report
                .devices
                .iter()
                .filter(|d| d.status == DeviceStatus::Fail)
                .map(|d| d.index)
                .collect();
            assert_eq!(failed, [2], "{}", report.summary);
        }
    }
}

/// Dockerfile.windows cannot be built here (no Windows engine), so its
/// recipe is read back: exec-form JSON that parses to the path the .exe is
/// copied to (backslashes doubled), the escape directive, the COPY source
/// scripts/build-windows makes, and the documented `docker run` line.
#[test]
fn dockerfile_windows_is_an_exec_form_recipe_for_the_built_exe() {
    let text = std::fs::read_to_string(common::root().join("Dockerfile.windows")).unwrap();
    assert_eq!(text.lines().next(), Some("# escape=`"));
    assert!(text.contains(
        "docker run --isolation process --device class/5B45201D-F2F2-4F3B-85BB-30FF1F953599"
    ));
    // Instructions, with backtick continuations joined.
    let joined = text.replace("`\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let exe = r"C:\gpuprobe\gpuprobe.exe";
    let copy = instructions
        .iter()
        .find_map(|l| l.strip_prefix("COPY "))
        .expect("a COPY");
    let parts: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(parts, [r"dist\gpuprobe-windows-x86_64.exe", exe]);
    let script = std::fs::read_to_string(common::root().join("scripts/build-windows")).unwrap();
    assert!(script.contains("dist/gpuprobe-windows-x86_64.exe"));

    let exec_form = |keyword: &str| -> Vec<String> {
        let line = instructions
            .iter()
            .find(|l| l.starts_with(keyword))
            .unwrap_or_else(|| panic!("no {keyword}"));
        let json = &line[line
            .find('[')
            .unwrap_or_else(|| panic!("{keyword} is not exec form"))..];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{keyword}: {e}: {json}"))
    };
    assert_eq!(exec_form("HEALTHCHECK"), [exe, "health"]);
    assert!(instructions
        .iter()
        .any(|l| l.starts_with("HEALTHCHECK") && l.contains(" CMD [")));
    assert_eq!(exec_form("ENTRYPOINT"), [exe, "exec", "--"]);
    assert_eq!(exec_form("CMD")[0], exe);
}
