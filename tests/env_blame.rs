//! Which usage errors blame a `GPUPROBE_*` variable: only a value clap
//! rejected that came from the variable, never one given on the command
//! line (issue 16), and every variable cli.rs declares is known. Usage
//! errors end before anything is probed, so no GPU or driver is needed.
use assert_cmd::Command;
use gpuprobe::app::environment_flags;
use predicates::prelude::*;

/// The binary with no `GPUPROBE_*` variable from the test's environment.
fn gpuprobe() -> Command {
    let mut cmd = Command::cargo_bin("gpuprobe").unwrap();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GPUPROBE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The variables cli.rs declares in `env = "GPUPROBE_..."` attributes.
fn declared_variables() -> Vec<String> {
    let cli = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli.rs")).unwrap();
    cli.split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_table_holds_every_variable_cli_rs_declares() {
    let table = environment_flags();
    let declared = declared_variables();
    assert!(
        declared.len() >= 9,
        "cli.rs declares more variables: {declared:?}"
    );
    for var in &declared {
        assert!(
            table.iter().any(|(v, _)| v == var),
            "{var} is missing from {table:?}"
        );
    }
    for (var, flag) in [
        ("GPUPROBE_STRICT", "--strict"),
        ("GPUPROBE_BANDWIDTH_SIZE", "--bandwidth-size"),
        // Declared only by `bench`: found through the subcommands.
        ("GPUPROBE_CUBLAS", "--cublas"),
        ("GPUPROBE_REQUIRE_GPUS", "--require-gpus"),
    ] {
        assert!(
            table.contains(&(var.to_string(), flag.to_string())),
            "({var}, {flag}) is missing from {table:?}"
        );
    }
}

#[test]
fn a_bad_flag_value_does_not_blame_a_set_variable() {
    for args in [
        &["--bandwidth-size", "1e300"][..],
        &["--bandwidth-size=1e300"],
        &["burn", "--bandwidth-size", "1e300"],
    ] {
        gpuprobe()
            .env("GPUPROBE_BANDWIDTH_SIZE", "64MiB")
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("'1e300'"))
            .stderr(predicate::str::contains("GPUPROBE_BANDWIDTH_SIZE").not())
            .stderr(predicate::str::contains("environment").not());
    }
}

#[test]
fn the_same_bad_value_on_the_command_line_is_the_command_lines() {
    gpuprobe()
        .env("GPUPROBE_BANDWIDTH_SIZE", "1e300")
        .args(["--bandwidth-size", "1e300"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("environment").not());
}

#[test]
fn a_bad_variable_is_named() {
    gpuprobe()
        .env("GPUPROBE_BANDWIDTH_SIZE", "1e300")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "note: --bandwidth-size was set by the environment: GPUPROBE_BANDWIDTH_SIZE=1e300",
        ));
}

#[test]
fn a_subcommands_bad_variable_is_named() {
    gpuprobe()
        .env("GPUPROBE_CUBLAS", "/nonexistent/libcublas.so.13")
        .arg("bench")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "GPUPROBE_CUBLAS=/nonexistent/libcublas.so.13",
        ));
}

/// `health` answers on stdout and exits 1 (Docker reserves 2), with the
/// same rule for the note.
#[test]
fn health_blames_only_the_variable_that_held_the_value() {
    gpuprobe()
        .env("GPUPROBE_REQUIRE_GPUS", "many")
        .arg("health")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("GPUPROBE_REQUIRE_GPUS=many"));
    gpuprobe()
        .env("GPUPROBE_REQUIRE_GPUS", "1")
        .args(["health", "--require-gpus", "many"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("unhealthy: usage error"))
        .stdout(predicate::str::contains("GPUPROBE_REQUIRE_GPUS").not());
}
