//! Shell completions and man pages, generated from the clap definitions by
//! the `gpuprobe-docs` build step (tools/docs) that scripts/release ships:
//! every subcommand and every long option of the real CLI appears in them,
//! so they cannot drift from `gpuprobe --help`.
use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use gpuprobe::cli::Cli;
use serde_json::Value;

mod common;

fn gpuprobe_docs() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["build", "-p", "gpuprobe-docs", "--message-format=json"])
        .current_dir(common::root())
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "building gpuprobe-docs failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["name"] == "gpuprobe-docs")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no gpuprobe-docs executable")
}

#[test]
fn completions_and_man_pages_cover_every_subcommand_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(gpuprobe_docs())
        .arg("dist")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cli = Cli::command();
    let subcommands: Vec<String> = cli
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    assert!(subcommands.iter().any(|s| s == "health"), "{subcommands:?}");
    let options: Vec<String> = cli
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    assert!(options.iter().any(|o| o == "--json"), "{options:?}");

    for file in [
        "gpuprobe.bash",
        "_gpuprobe",
        "gpuprobe.fish",
        "_gpuprobe.ps1",
        "gpuprobe.elv",
    ] {
        let text = std::fs::read_to_string(dir.path().join("completions").join(file))
            .unwrap_or_else(|e| panic!("completions/{file}: {e}"));
        for word in subcommands.iter().chain(&options) {
            // fish writes long options without their dashes (-l json).
            let bare = word.trim_start_matches('-');
            assert!(text.contains(bare), "completions/{file} lacks {word}");
        }
    }

    let man = std::fs::read_to_string(dir.path().join("man/gpuprobe.1")).unwrap();
    assert!(man.contains(".TH gpuprobe 1"), "{man}");
    for option in &options {
        // roff escapes each dash: \-\-json
        assert!(
            man.contains(&option.replace('-', "\\-")),
            "gpuprobe.1 lacks {option}"
        );
    }
    for sub in &subcommands {
        let page = dir.path().join(format!("man/gpuprobe-{sub}.1"));
        assert!(page.exists(), "no man page {}", page.display());
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(gpuprobe_docs())
        .args(["completions", "no-such-shell"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// The completion scripts `gpuprobe completions SHELL` prints are the
/// committed files in completions/, and those are what the generator makes
/// from the current clap definitions (regenerate with
/// `cargo run -q -p gpuprobe-docs -- completions SHELL > completions/FILE`).
#[test]
fn committed_completions_are_current_and_are_what_gpuprobe_prints() {
    let docs = gpuprobe_docs();
    for (shell, file) in [
        ("bash", "gpuprobe.bash"),
        ("zsh", "_gpuprobe"),
        ("fish", "gpuprobe.fish"),
        ("elvish", "gpuprobe.elv"),
        ("powershell", "_gpuprobe.ps1"),
    ] {
        let committed = std::fs::read(common::root().join("completions").join(file)).unwrap();
        let generated = Command::new(&docs)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(generated.status.success(), "{shell}");
        assert!(
            generated.stdout == committed,
            "completions/{file} is stale: regenerate it with `cargo run -q -p gpuprobe-docs -- completions {shell} > completions/{file}`"
        );
        let printed = Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(printed.status.code(), Some(0), "{shell}");
        assert!(printed.stdout == committed, "gpuprobe completions {shell}");
    }
}
