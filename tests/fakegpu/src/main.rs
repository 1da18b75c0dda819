//! `fakegpu prepare SCENARIO DIR`: writes DIR/libcuda.so.1 for a scenario.
//! `fakegpu check SCENARIO`: validates a scenario file.
//!
//! The library is linked from libfakegpu.a (built beside this binary) with a
//! version script that exports the driver API symbols minus the scenario's
//! `missing_symbols`, so dlsym sees exactly what an old driver would export.
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use fakegpu::scenario::Scenario;

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
        _ => Err("usage: fakegpu check SCENARIO | fakegpu prepare SCENARIO DIR".into()),
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
    for name in &scenario.missing_symbols {
        if !fakegpu::cuda::EXPORTS.contains(&name.as_str()) {
            return Err(format!(
                "missing_symbols names {name}, which the fake never exports"
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exported: Vec<&str> = fakegpu::cuda::EXPORTS
        .iter()
        .copied()
        .filter(|s| !scenario.missing_symbols.iter().any(|m| m == s))
        .collect();
    link(dir, "libcuda.so.1", &exported)
}

fn archive() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let lib = exe.with_file_name("libfakegpu.a");
    if lib.exists() {
        Ok(lib)
    } else {
        Err(format!(
            "{} not found: build with `cargo build -p fakegpu`",
            lib.display()
        ))
    }
}

fn link(dir: &Path, soname: &str, exported: &[&str]) -> Result<(), String> {
    let map = dir.join(format!("{soname}.map"));
    let script = format!(
        "{{\n  global:\n{}  local: *;\n}};\n",
        exported
            .iter()
            .map(|s| format!("    {s};\n"))
            .collect::<String>()
    );
    std::fs::write(&map, script).map_err(|e| e.to_string())?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(cc);
    cmd.arg("-shared")
        .arg("-o")
        .arg(dir.join(soname))
        .arg(format!("-Wl,-soname,{soname}"))
        .arg(format!("-Wl,--version-script={}", map.display()));
    for symbol in exported {
        cmd.arg(format!("-Wl,--undefined={symbol}"));
    }
    cmd.arg(archive()?)
        .args(["-lstdc++", "-lpthread", "-ldl", "-lm", "-lgcc_s", "-lc"]);
    let out = cmd
        .output()
        .map_err(|e| format!("running the linker: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "linking {soname} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
