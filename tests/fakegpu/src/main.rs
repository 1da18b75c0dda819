//! `fakegpu prepare SCENARIO DIR`: lays out a scenario in DIR:
//! - libcuda.so.1 (unless the scenario has none; in `cuda_library_dir`),
//! - libnvidia-ml.so.1 (unless `nvml.present` is false),
//! - the fake libcublas (when the scenario has `cublas`): libcublas.so.12
//!   in DIR for `true`, else under its object's name in its place (DIR, or
//!   a pip wheel's folder in a site-packages tree under root/),
//! - root/: the device nodes and /proc files gpuprobe inspects,
//! - env: KEY=VALUE lines to run the program under test with
//!   (LD_LIBRARY_PATH, FAKEGPU_SCENARIO, GPUPROBE_TEST_ROOT, FAKEGPU_LOCK, FAKEGPU_RM,
//!   the scenario's own variables).
//!
//! `fakegpu check SCENARIO`: validates a scenario file, with the very
//! checks `prepare` and the fake libraries make when they load it
//! (`Scenario::load`): what one accepts, all accept.
//!
//! `fakegpu prepare-windows SCENARIO DIR ARCHIVE`: nvcuda.dll and nvml.dll
//! for the scenario, linked from a cross-built archive (see `windows.rs`).
//!
//! The libraries are linked from libfakegpu.a (built beside this binary)
//! with a version script exporting only that library's API minus the
//! scenario's `missing_symbols`, so dlsym sees what a real (old) driver
//! would export; each distinct library is linked once per build of the fake
//! (see `link.rs`).
mod link;
mod windows;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use fakegpu::scenario::Scenario;
use link::Library;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check", scenario] => Scenario::load(scenario).map(|_| ()),
        ["prepare", scenario, dir] => prepare(scenario, Path::new(dir)),
        ["prepare-windows", scenario, dir, archive] => {
            windows::prepare(scenario, Path::new(dir), Path::new(archive))
        }
        _ => Err("usage: fakegpu check SCENARIO | fakegpu prepare SCENARIO DIR | fakegpu prepare-windows SCENARIO DIR ARCHIVE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fakegpu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare(scenario_path: &str, dir: &Path) -> Result<(), String> {
    let scenario = Scenario::load(scenario_path)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let cuda_dir = dir.join(&scenario.cuda_library_dir);
    place_libraries(&scenario, &dir, &cuda_dir)?;
    let rm = dir.join("rm");
    // A fresh view: nothing queued, nothing taken (a folder prepared again
    // must not keep the last run's).
    let _ = std::fs::remove_dir_all(&rm);
    std::fs::create_dir_all(&rm).map_err(|e| e.to_string())?;
    let root = dir.join("root");
    lay_out_root(&scenario, &root, &dir)?;
    if let Some(injected) = scenario.host.driver_mounts {
        let table = mount_table(&scenario, &dir, &cuda_dir, injected);
        let proc_self = root.join("proc/self");
        std::fs::create_dir_all(&proc_self).map_err(|e| e.to_string())?;
        std::fs::write(proc_self.join("mountinfo"), table).map_err(|e| e.to_string())?;
    }

    let mut env = vec![
        (
            "FAKEGPU_SCENARIO".to_string(),
            std::fs::canonicalize(scenario_path)
                .map_err(|e| e.to_string())?
                .display()
                .to_string(),
        ),
        ("GPUPROBE_TEST_ROOT".to_string(), root.display().to_string()),
        // Where the fake driver creates device nodes (`host.runs_as_root`).
        ("FAKEGPU_ROOT".to_string(), root.display().to_string()),
        // The driver's global lock (driver_lock.rs).
        (
            "FAKEGPU_LOCK".to_string(),
            dir.join("driver.lock").display().to_string(),
        ),
        // The kernel module's view of each GPU (rm.rs).
        ("FAKEGPU_RM".to_string(), rm.display().to_string()),
    ];
    let dir_text = dir.display().to_string();
    if !scenario.env.contains_key("LD_LIBRARY_PATH") {
        let mut path = vec![dir_text.clone()];
        if cuda_dir != dir {
            path.insert(0, cuda_dir.display().to_string());
        }
        env.push(("LD_LIBRARY_PATH".into(), path.join(":")));
    }
    for (k, v) in &scenario.env {
        env.push((k.clone(), v.replace("{dir}", &dir_text)));
    }
    let text = env.iter().fold(String::new(), |mut text, (k, v)| {
        let _ = writeln!(text, "{k}={v}");
        text
    });
    std::fs::write(dir.join("env"), text).map_err(|e| e.to_string())
}

/// The scenario's libraries: libcuda (in `cuda_dir`), NVML and cuBLAS, each
/// where the scenario has it.
fn place_libraries(scenario: &Scenario, dir: &Path, cuda_dir: &Path) -> Result<(), String> {
    if scenario.cuda_library {
        std::fs::create_dir_all(cuda_dir).map_err(|e| e.to_string())?;
        let exported = scenario.cuda_exports();
        // A real driver installs libcuda.so.VERSION and the SONAME link.
        let file = scenario
            .cuda_library_version
            .as_ref()
            .map_or("libcuda.so.1".to_string(), |v| format!("libcuda.so.{v}"));
        link::place(
            &Library {
                file: &file,
                soname: "libcuda.so.1",
                exported: &exported,
            },
            cuda_dir,
        )?;
        if file != "libcuda.so.1" {
            symlink(&file, &cuda_dir.join("libcuda.so.1"))?;
        }
    }
    if scenario.nvml.present {
        link::place(
            &Library {
                file: "libnvidia-ml.so.1",
                soname: "libnvidia-ml.so.1",
                exported: &fakegpu::nvml::exports_for(&scenario.nvml.driver_version),
            },
            dir,
        )?;
    }
    if let Some(cublas) = &scenario.cublas {
        // What the toolkit or the wheel installs: the SONAME a program
        // loads, cuBLAS itself loading libcuda.so.1 (cublas.rs). The real
        // wheels' libcublas also NEEDs libcublasLt beside it (found through
        // its RUNPATH or RPATH of $ORIGIN); the fake needs none.
        let folder = match cublas.place.wheel_folder() {
            None => dir.to_path_buf(),
            Some(wheel) => dir
                .join("root")
                .join(cublas.site_packages.trim_start_matches('/'))
                .join(wheel),
        };
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        link::place(
            &Library {
                file: &cublas.soname,
                soname: &cublas.soname,
                exported: fakegpu::cublas::EXPORTS,
            },
            &folder,
        )?;
    }
    Ok(())
}

/// A container's mount table (/proc/self/mountinfo): an overlay root, and
/// (`injected`, as the toolkit does) each driver library bind-mounted from
/// the host.
fn mount_table(scenario: &Scenario, dir: &Path, cuda_dir: &Path, injected: bool) -> String {
    let mut table = String::from("21 1 0:40 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l\n");
    if injected {
        let mut id = 30;
        let mut mounted = vec![dir.join("libnvidia-ml.so.1")];
        if !scenario.cuda_library_in_image {
            mounted.insert(0, cuda_dir.join("libcuda.so.1"));
        }
        for lib in mounted {
            if let Ok(real) = lib.canonicalize() {
                let _ = writeln!(
                    table,
                    "{id} 21 259:2 /usr/lib/x86_64-linux-gnu/{} {} ro,nosuid,nodev,relatime master:1 - ext4 /dev/nvme0n1p2 rw",
                    real.file_name().unwrap_or_default().to_string_lossy(),
                    real.display()
                );
                id += 1;
            }
        }
    }
    table
}

fn symlink(target: &str, link: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("{}: {e}", link.display()))
}

/// The files gpuprobe inspects under GPUPROBE_TEST_ROOT.
fn lay_out_root(scenario: &Scenario, root: &Path, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).map_err(io)?;
    for node in &scenario.dev_nodes() {
        let path = dev.join(node);
        if scenario.host.dev_unopenable.contains(node) {
            fakegpu::nodes::denied(&path)?;
        } else if scenario.host.dev_without_driver.contains(node) {
            fakegpu::nodes::driverless(&path, fakegpu::nodes::minor(node))?;
        } else {
            std::fs::write(&path, b"").map_err(io)?;
        }
    }
    if let Some(text) = &scenario.host.proc_driver_version {
        let text = if text.is_empty() {
            format!(
                "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
                scenario.nvml.driver_version
            )
        } else {
            text.clone()
        };
        let proc_dir = root.join("proc/driver/nvidia");
        std::fs::create_dir_all(&proc_dir).map_err(io)?;
        std::fs::write(proc_dir.join("version"), text).map_err(io)?;
    }
    if let Some(log) = &scenario.host.kernel_log {
        let proc_dir = root.join("proc");
        std::fs::create_dir_all(&proc_dir).map_err(io)?;
        std::fs::write(proc_dir.join("kmsg"), log).map_err(io)?;
    }
    for (path, contents) in &scenario.host.files {
        let path = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap_or(root)).map_err(io)?;
        std::fs::write(&path, contents.replace("{dir}", &dir.display().to_string())).map_err(io)?;
    }
    Ok(())
}
