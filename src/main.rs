//! The gpuprobe binary: everything is in the library; this maps it to an
//! exit code (see `exit_code`).
fn main() {
    std::process::exit(gpuprobe::app::main());
}
