//! `fakegpu prepare-windows SCENARIO DIR ARCHIVE`: the fake driver as
//! Windows DLLs, for running gpuprobe.exe under wine (tests/windows.rs).
//!
//! ARCHIVE is libfakegpu.a cross-built for x86_64-pc-windows-gnu
//! (`cargo build -p fakegpu --lib --target x86_64-pc-windows-gnu`); it is
//! linked with mingw-w64's g++ into DIR/nvcuda.dll and DIR/nvml.dll, the
//! names gpuprobe (and cudarc, nvml-wrapper) load on Windows. A .def file
//! lists what each DLL exports: that library's API minus the scenario's
//! `missing_symbols`, as on Linux. The C++ runtime, libgcc and winpthread are
//! linked in statically, so the DLLs need nothing beside them but Windows'
//! own libraries. No device nodes or /proc files: Windows has none, and the
//! scenario file is named by FAKEGPU_SCENARIO as on Linux.
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use fakegpu::scenario::Scenario;

/// The mingw-w64 C++ driver that links the DLLs (Debian:
/// g++-mingw-w64-x86-64); `FAKEGPU_MINGW_CXX` overrides it.
fn compiler() -> String {
    std::env::var("FAKEGPU_MINGW_CXX").unwrap_or_else(|_| "x86_64-w64-mingw32-g++".into())
}

pub fn prepare(scenario_path: &str, dir: &Path, archive: &Path) -> Result<(), String> {
    let scenario = Scenario::load(scenario_path)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if scenario.cuda_library {
        let exported = scenario.cuda_exports();
        link("nvcuda.dll", &exported, archive, dir)?;
    }
    if scenario.nvml.present {
        let exported = fakegpu::nvml::exports_for(&scenario.nvml.driver_version);
        link("nvml.dll", &exported, archive, dir)?;
    }
    Ok(())
}

fn link(file: &str, exported: &[&str], archive: &Path, dir: &Path) -> Result<(), String> {
    let def = dir.join(format!("{file}.def"));
    let mut text = format!("LIBRARY {file}\nEXPORTS\n");
    for symbol in exported {
        let _ = writeln!(text, "    {symbol}");
    }
    std::fs::write(&def, text).map_err(|e| format!("{}: {e}", def.display()))?;
    let mut cmd = Command::new(compiler());
    cmd.arg("-shared")
        .arg("-static")
        .arg("-o")
        .arg(dir.join(file))
        .arg(&def);
    // Pull each exported function's object out of the archive.
    for symbol in exported {
        cmd.arg(format!("-Wl,--undefined={symbol}"));
    }
    // What rustc names for a windows-gnu staticlib (--print
    // native-static-libs), plus advapi32 for the standard library's
    // random source fallback.
    cmd.arg(archive).args([
        "-lkernel32",
        "-lntdll",
        "-luserenv",
        "-lws2_32",
        "-ldbghelp",
        "-ladvapi32",
        "-lstdc++",
    ]);
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", compiler()))?;
    let _ = std::fs::remove_file(&def);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "linking {file} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
