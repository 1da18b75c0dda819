//! Compiles the project's kernels (kernels/*.cu) for the host, together with
//! the execution-model emulation in emu/, so the fake cuLaunchKernel runs the
//! very source the embedded PTX is built from; and the fake libraries' own
//! kernels (emu/libraries/*.cu: what the fake cuBLAS launches), which are
//! not gpuprobe's. The same list of entry points becomes kernel_names.rs,
//! the Rust side's list of the kernels the emulator runs (what a
//! scenario's `kernel_bug.kernel` may name).
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels_dir = manifest.join("../../kernels").canonicalize().unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let mut sources = String::new();
    let mut table = String::new();
    let mut names = Vec::new();
    let libraries_dir = manifest.join("emu/libraries");
    let mut entries: Vec<_> = [&kernels_dir, &libraries_dir]
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    entries.sort();
    for path in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(sources, "#include \"{}\"", path.display()).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        // A file with no barrier (no __syncthreads, no warp-collective mma)
        // holds kernels whose threads never wait for each other: the
        // emulator may run them one after another as plain calls.
        let barrier_free = !text.contains("__syncthreads") && !text.contains("gp_mma");
        for name in kernel_names(&text) {
            writeln!(table, "GPUPROBE_KERNEL({name}, {barrier_free})").unwrap();
            names.push(name);
        }
    }
    std::fs::write(out.join("kernels_source.inc"), sources).unwrap();
    std::fs::write(out.join("kernels_table.inc"), table).unwrap();
    std::fs::write(out.join("kernel_names.rs"), format!("{names:?}")).unwrap();

    println!("cargo:rerun-if-changed=emu");
    println!("cargo:rerun-if-changed={}", kernels_dir.display());
    let mut build = cc::Build::new();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        // mingw-w64's GetCurrentFiber reads the TEB through gs:0x20, which
        // GCC 12 misreads as an out-of-bounds array access (a false
        // positive).
        build.flag("-Wno-array-bounds");
    }
    build
        .cpp(true)
        .std("c++17")
        .file(manifest.join("emu/emu.cpp"))
        .include(manifest.join("emu"))
        .include(&kernels_dir)
        .define("GPUPROBE_HOST_EMULATION", None)
        .define(
            "KERNELS_SOURCE",
            Some(format!("\"{}\"", out.join("kernels_source.inc").display()).as_str()),
        )
        .define(
            "KERNELS_TABLE",
            Some(format!("\"{}\"", out.join("kernels_table.inc").display()).as_str()),
        )
        .flag_if_supported("-Wno-unknown-pragmas")
        .opt_level(2)
        .compile("fakegpu_emu");
}

/// Entry points: `extern "C" __global__ void NAME(`, or
/// `extern "C" __global__ void GP_LAUNCH_BOUNDS(...) NAME(`.
fn kernel_names(source: &str) -> Vec<String> {
    let marker = "__global__ void ";
    source
        .match_indices(marker)
        .filter(|(at, _)| source[..*at].trim_end().ends_with("extern \"C\""))
        .filter_map(|(at, _)| {
            let mut rest = &source[at + marker.len()..];
            if let Some(bounds) = rest.strip_prefix("GP_LAUNCH_BOUNDS(") {
                rest = &bounds[bounds.find(')')? + 1..];
            }
            rest.find('(').map(|end| rest[..end].trim().to_string())
        })
        .collect()
}
