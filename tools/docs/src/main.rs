//! `gpuprobe-docs`: shell completions and man pages for gpuprobe, generated
//! from its clap definitions (`gpuprobe::cli::Cli`), so they never drift
//! from the real flags, and the report's JSON Schema from its types. A build step, not part of the shipped binary:
//! scripts/release puts its output into the release artifacts.
//!
//! ```text
//! gpuprobe-docs completions SHELL    completions for bash, zsh, fish, elvish or powershell, on stdout
//! gpuprobe-docs man DIR              gpuprobe.1 and one page per subcommand (gpuprobe-health.1, ...)
//! gpuprobe-docs dist DIR             DIR/completions/* for every shell and DIR/man/*.1
//! gpuprobe-docs schema               the report's JSON Schema, generated from its types, on stdout
//!                                    (docs/report.schema.json; `gpuprobe schema` prints that file)
//! ```
//!
//! Exit 0 on success, 2 on a usage error, 1 when a file cannot be written.
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;
use gpuprobe::cli::Cli;

const USAGE: &str = "usage: gpuprobe-docs completions SHELL | man DIR | dist DIR | schema";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["completions", shell] => match shell.parse::<Shell>() {
            Ok(shell) => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "gpuprobe",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
            Err(_) => {
                return usage(&format!(
                    "unknown shell {shell:?} (bash, zsh, fish, elvish, powershell)"
                ))
            }
        },
        ["schema"] => {
            use std::io::Write as _;
            std::io::stdout().write_all(gpuprobe::export::schema().as_bytes())
        }
        ["man", dir] => man(Path::new(dir)),
        ["dist", dir] => dist(Path::new(dir)),
        _ => return usage(USAGE),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpuprobe-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("gpuprobe-docs: {message}");
    ExitCode::from(2)
}

fn man(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // gpuprobe.1, and gpuprobe-SUBCOMMAND.1 for each subcommand.
    clap_mangen::generate_to(Cli::command(), dir)
}

fn dist(dir: &Path) -> std::io::Result<()> {
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in Shell::value_variants() {
        clap_complete::generate_to(*shell, &mut Cli::command(), "gpuprobe", &completions)?;
    }
    man(&dir.join("man"))
}
