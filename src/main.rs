//! The gpuprobe binary: everything is in the library; this maps it to an
//! exit code (see `exit_code`) and leaves without running the driver's
//! exit-time code (see `app::leave`).
fn main() {
    gpuprobe::app::leave(gpuprobe::app::main());
}
