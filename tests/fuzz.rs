//! Property tests over every parser of outside input: command-line values
//! (sizes, durations, device lists, versions, factors), whole argument
//! vectors, the state file `health --state` reads back, the container's
//! environment variables as the diagnosis rules read them, /proc and /sys
//! files, and odd driver returns. The property is always "no panic, and an
//! answer that makes sense"; any panic found becomes a named regression test
//! below the properties.
//!
//! cargo-fuzz needs a nightly toolchain; proptest runs on stable. The case
//! count is proptest's default (256 per property, a few seconds in all);
//! CONTRIBUTING.md shows how to run longer (`PROPTEST_CASES`).
mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::Parser;
use gpuprobe::cli::{parse_devices, parse_positive_duration, Cli, MAX_DURATION};
use gpuprobe::modes::health;
use gpuprobe::report::Report;
use gpuprobe::units::parse_size;
use proptest::prelude::*;

/// Text a hostile user or a broken file might hold: printable noise, digits
/// with units, huge numbers, control characters, non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,30}(\\.[0-9]{0,10})?(ns|us|ms|s|m|h|d|w|y|B|KB|MiB|GiB|TiB|G|x)?",
        "-?[0-9]{1,25}[a-zA-Z]{0,4}",
        "[ ,0-9GPUMIG\\-a-f]{0,40}",
        Just("18446744073709551615s".to_string()),
        Just("1e300".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
    ]
}

/// The value-taking flags, each with the subcommand that accepts it.
const VALUE_FLAGS: [(&str, &str); 17] = [
    ("", "--size"),
    ("", "--iterations"),
    ("", "--min-time"),
    ("", "--seed"),
    ("", "--timeout"),
    ("", "--devices"),
    ("", "--require-gpus"),
    ("", "--require-memory"),
    ("", "--require-compute-capability"),
    ("", "--require-driver"),
    ("", "--require-speedup"),
    ("", "--require-efficiency"),
    ("", "--format"),
    ("watch", "--interval"),
    ("watch", "--count"),
    ("watch", "--unhealthy-after"),
    ("health", "--max-age"),
];

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(common::root().join("benches/report-one-gpu.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

proptest! {
    // Failures are kept as the named regression tests at the end of this
    // file, not in proptest's side files.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn duration_flags_never_overflow_the_clock(text in hostile_text()) {
        if let Ok(d) = parse_positive_duration(&text) {
            prop_assert!(!d.is_zero() && d <= MAX_DURATION);
            prop_assert!(std::time::Instant::now().checked_add(d).is_some());
        }
    }

    #[test]
    fn sizes_parse_or_refuse(text in hostile_text()) {
        let _ = parse_size(&text);
    }

    #[test]
    fn plain_byte_counts_are_exact(n in 0u64..(1 << 52)) {
        prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
    }

    #[test]
    fn device_lists_parse_or_refuse(text in hostile_text()) {
        let _ = parse_devices(&text);
    }

    /// Every flag through clap, as the binary parses it: a value either
    /// parses or is an error that names the flag.
    #[test]
    fn every_value_flag_parses_or_names_itself(which in 0..VALUE_FLAGS.len(), value in hostile_text()) {
        let (command, flag) = VALUE_FLAGS[which];
        let mut args = vec!["gpuprobe".to_string()];
        if !command.is_empty() {
            args.push(command.to_string());
        }
        args.push(format!("{flag}={value}"));
        if command == "health" {
            args.extend(["--state".to_string(), "x".to_string()]);
        }
        if let Err(e) = Cli::try_parse_from(&args) {
            let message = e.to_string();
            prop_assert!(message.contains(flag), "{args:?}: {message}");
        }
    }

    /// Whole argument vectors of known words and noise.
    #[test]
    fn any_argument_vector_parses_or_errs(words in proptest::collection::vec(
        prop_oneof![
            Just("list".to_string()), Just("health".to_string()), Just("watch".to_string()),
            Just("exec".to_string()), Just("schema".to_string()), Just("--".to_string()),
            Just("--json".to_string()), Just("--strict".to_string()), Just("--size".to_string()),
            Just("--timeout".to_string()), Just("--state".to_string()), Just("-1".to_string()),
            hostile_text(),
        ],
        0..8,
    )) {
        let mut args = vec!["gpuprobe".to_string()];
        args.extend(words);
        let _ = Cli::try_parse_from(&args);
    }

    /// Any bytes as a state file: unhealthy with a reason, never a panic.
    #[test]
    fn any_bytes_as_a_state_file_are_judged(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, &bytes).unwrap();
        let (line, code) = health::judge_state(&path, Duration::from_secs(60), SystemTime::now());
        prop_assert!(code == health::HEALTHY || code == health::UNHEALTHY);
        prop_assert!(!line.contains('\n'));
    }

    /// A well-formed report with hostile times and clock.
    #[test]
    fn any_times_in_a_state_file_are_judged(
        started_at in prop_oneof![hostile_text(), Just("9999-12-31T23:59:59Z".to_string()), Just("1970-01-01T00:00:00Z".to_string())],
        duration_ms in prop_oneof![any::<f64>().prop_filter("JSON has no NaN or infinity", |x| x.is_finite()), Just(1e300), Just(-1.0)],
        now_secs in any::<u32>(),
        max_age_ms in 1u64..=MAX_DURATION.as_millis() as u64,
    ) {
        let mut json = fixture();
        json["started_at"] = started_at.into();
        json["duration_ms"] = duration_ms.into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(now_secs) * 4);
        let (_, code) = health::judge_state(&path, Duration::from_millis(max_age_ms), now);
        prop_assert!(code == health::HEALTHY || code == health::UNHEALTHY);
    }

    /// The container's variables and versions as the diagnosis rules read
    /// them: CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES, NVIDIA_REQUIRE_CUDA
    /// and friends, the kernel module's version, the driver's CUDA version.
    #[test]
    fn diagnoses_read_any_environment(
        values in proptest::collection::vec(hostile_text(), 6),
        kernel_module in proptest::option::of(hostile_text()),
        cuda_raw in proptest::option::of(any::<i32>()),
    ) {
        let names = [
            "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_REQUIRE_CUDA",
            "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_DISABLE_REQUIRE", "LD_LIBRARY_PATH",
        ];
        let mut json = fixture();
        json["environment"]["variables"] = names
            .iter()
            .zip(&values)
            .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
            .collect::<Vec<_>>()
            .into();
        json["environment"]["kernel_module_version"] = kernel_module.into();
        json["driver"]["cuda_version_raw"] = cuda_raw.into();
        let report: Report = serde_json::from_value(json).unwrap();
        let ending = gpuprobe::probe::Ending::Finished { measured: true };
        let report = gpuprobe::judge::conclude(report, &ending, &gpuprobe::judge::Policy::default());
        prop_assert_eq!(report.exit_code, report.verdict.exit_code());
    }

    /// A report's typed values as a hand-edited or later report may hold
    /// them: any text as the compute capability (unknown when it is none,
    /// as when consumers parsed the text), any words as throttle reasons
    /// (kept as written). The report reads, writes them back unchanged and
    /// is judged.
    #[test]
    fn odd_typed_values_read_and_are_judged(
        capability in hostile_text(),
        words in proptest::collection::vec(prop_oneof![
            hostile_text(),
            any::<u64>().prop_map(|b| format!("unknown_{b:#x}")),
            Just("sw_power_cap".to_string()),
            Just("board_limit".to_string()),
        ], 0..4),
    ) {
        let mut json = fixture();
        json["devices"][0]["compute_capability"] = capability.clone().into();
        json["devices"][0]["telemetry"]["throttle_reasons"] = words.clone().into();
        json["devices"][0]["matmul"]["throttle_reasons_under_load"] = words.clone().into();
        let report = Report::from_json(json.to_string().as_bytes()).unwrap();
        let d = &report.devices[0];
        prop_assert_eq!(d.compute_capability, capability.parse().ok());
        let written = serde_json::to_value(&d.telemetry.as_ref().unwrap().throttle_reasons).unwrap();
        prop_assert_eq!(written, serde_json::Value::from(words));
        let ending = gpuprobe::probe::Ending::Finished { measured: true };
        let report = gpuprobe::judge::conclude(report, &ending, &gpuprobe::judge::Policy::default());
        prop_assert_eq!(report.exit_code, report.verdict.exit_code());
    }

    #[test]
    fn proc_and_sys_texts_parse_or_refuse(text in any::<String>(), library in hostile_text()) {
        let _ = gpuprobe::environment::kernel_module_version(&text);
        let _ = gpuprobe::environment::library_version(&library);
        let _ = gpuprobe::environment::origin(Some(&text), &library);
    }

    /// /proc/meminfo and the cgroup files with any numbers in them.
    #[test]
    fn memory_files_with_any_numbers(
        available_kib in prop_oneof![any::<u64>().prop_map(|n| n.to_string()), hostile_text()],
        limit in prop_oneof![any::<u64>().prop_map(|n| n.to_string()), Just("max".to_string()), hostile_text()],
        current in prop_oneof![any::<u64>().prop_map(|n| n.to_string()), hostile_text()],
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_memory_files(dir.path(), &available_kib, &limit, &current);
        let _ = gpuprobe::environment::available_memory(dir.path());
    }

    /// The CUDA variables of `environment.traps` with any bytes in them
    /// (not UTF-8, huge, an MPS pipe directory that is anything): read,
    /// never a panic, each value cut to 256 characters.
    #[cfg(unix)]
    #[test]
    fn any_trap_variable_values_are_read(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 12),
    ) {
        let root = tempfile::tempdir().unwrap();
        let names = gpuprobe::report::TrapVariable::ALL.map(gpuprobe::report::TrapVariable::as_str);
        let traps = gpuprobe::environment::traps(root.path(), |name| {
            let at = names.iter().position(|n| *n == name)?;
            Some(std::os::unix::ffi::OsStringExt::from_vec(values[at].clone()))
        });
        for t in traps {
            prop_assert!(t.value.chars().count() <= 256);
        }
    }

    /// cuDeviceGetUuid's 16 bytes, whatever they are.
    #[test]
    fn any_uuid_bytes_format(bytes in any::<[u8; 16]>()) {
        let uuid = gpuprobe::cuda::format_uuid("GPU", &bytes);
        prop_assert!(uuid.starts_with("GPU-") && uuid.len() == 40, "{}", uuid);
        prop_assert!(parse_devices(&uuid).is_ok());
    }
}

fn write_memory_files(root: &Path, available_kib: &str, limit: &str, current: &str) {
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup")).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        format!("MemTotal: 1 kB\nMemAvailable: {available_kib} kB\n"),
    )
    .unwrap();
    std::fs::write(root.join("sys/fs/cgroup/memory.max"), limit).unwrap();
    std::fs::write(root.join("sys/fs/cgroup/memory.current"), current).unwrap();
}

// ---- regressions found by the properties above

/// MemAvailable in kB times 1024 overflowed u64 (a panic in debug builds, a
/// wrong small number in release).
#[test]
fn a_huge_mem_available_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    write_memory_files(dir.path(), &u64::MAX.to_string(), "max", "0");
    assert_eq!(
        gpuprobe::environment::available_memory(dir.path()),
        Some(u64::MAX)
    );
}

/// `--timeout 18446744073709551615s` panicked adding to an Instant.
#[test]
fn the_largest_duration_is_refused() {
    assert!(parse_positive_duration("18446744073709551615s").is_err());
    assert!(parse_positive_duration("365d").is_ok());
}

/// A report starting at the end of year 9999 finishes past what RFC 3339
/// can write; formatting that date in the message panicked `health`.
#[test]
fn a_report_ending_after_year_9999_is_unhealthy_not_a_panic() {
    let mut json = fixture();
    json["started_at"] = "9999-12-31T23:59:59Z".into();
    json["duration_ms"] = 5000.0.into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let (line, code) = health::judge_state(&path, Duration::from_secs(60), SystemTime::now());
    assert_eq!(code, health::UNHEALTHY);
    assert!(line.contains("in the future"), "{line}");
}
