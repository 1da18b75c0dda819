//! Where `bench` looks for cuBLAS, in which order, and its `cublas` check.
//!
//! Three places, each a `CublasSource` in the report:
//! - a file `bench --cublas` or GPUPROBE_CUBLAS names: then nothing else is
//!   tried, and a file that does not load fails the check (and the run)
//!   with the loader's message, never falling back to another cuBLAS;
//! - otherwise the dynamic loader's path, by library name, newest CUDA
//!   first (libcublas.so.13, .12, .11, then the development symlink);
//! - then the folders pip wheels install cuBLAS into, under the Python
//!   site-packages directories a container typically has. PyTorch images
//!   keep cuBLAS there, not on the loader's path (torch finds it by
//!   walking `sys.path`, which gpuprobe does not run Python to learn).
//!
//! The wheels' layouts, listed from the wheels themselves (`pip download
//! --no-deps` from PyPI, `unzip -l`, `readelf -d`, 2026-12-07):
//! - nvidia-cublas 13.0.0.19 and 13.10.0.20 (CUDA 13):
//!   `nvidia/cu13/lib/libcublas.so.13` beside `libcublasLt.so.13`; the
//!   Windows wheel `nvidia/cu13/bin/x86_64/cublas64_13.dll`.
//! - nvidia-cublas-cu12 12.6.4.1 and 12.9.1.4:
//!   `nvidia/cublas/lib/libcublas.so.12` beside `libcublasLt.so.12`.
//! - nvidia-cublas-cu11 11.11.3.6: `nvidia/cublas/lib/libcublas.so.11`
//!   beside `libcublasLt.so.11`.
//!
//! Each libcublas NEEDs its libcublasLt and carries `$ORIGIN` as its
//! RUNPATH (13.0.0.19, the cu12 and cu11 wheels) or RPATH (13.10.0.20), so
//! loaded by its full path it finds libcublasLt beside it with nothing on
//! LD_LIBRARY_PATH. The wheels are `Root-Is-Purelib: true`: pip puts them
//! in purelib, the `site-packages` (Debian's Python: `dist-packages`) of
//! the environment, never a `lib64` folder.
//!
//! The Python folders are read under the root (GPUPROBE_TEST_ROOT in tests,
//! as /dev and /proc are), those named by variables included, so a test can
//! lay out a site-packages tree. The search globs one level (`python3*`)
//! and never recurses; on Windows only the loader's path and `--cublas`
//! are searched.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::checks::progress::{Done, Failed, Progress, Scope};
use crate::cuda::cublas::{self, Candidate, Cublas, LoadError};
use crate::report::{CublasInfo, CublasSource, CublasStatus};
use crate::stage::Stage;

/// Each pip wheel's folder and library, newest CUDA first (see the module
/// documentation for where these come from).
#[cfg(not(windows))]
const WHEELS: &[(&str, &str)] = &[
    ("nvidia/cu13/lib", "libcublas.so.13"),
    ("nvidia/cublas/lib", "libcublas.so.12"),
    ("nvidia/cublas/lib", "libcublas.so.11"),
];
#[cfg(windows)]
const WHEELS: &[(&str, &str)] = &[];

/// At most this many `python3*` folders are looked at under one prefix, and
/// this many site-packages folders in all: a bound on what a strange image
/// (or a long PYTHONPATH) can make the search read.
const MAX_PYTHONS: usize = 8;
const MAX_SITES: usize = 32;

/// What the search found, once per process.
struct Search {
    loaded: Result<Cublas, LoadError>,
    /// How the candidate that loaded, or that was there and did not load,
    /// was found; `None` when nothing was there.
    source: Option<CublasSource>,
    /// Every candidate, in the order they are tried.
    candidates: Vec<String>,
    /// Whether `--cublas` or GPUPROBE_CUBLAS named the one candidate.
    explicit: bool,
}

/// libcublas, looked for once per process and never unloaded: the CUDA
/// runtime inside it is not meant to be unloaded while its threads and
/// handlers may live.
fn searched() -> &'static Search {
    static SEARCH: OnceLock<Search> = OnceLock::new();
    SEARCH.get_or_init(|| {
        let explicit = cublas::explicit();
        let plan = plan(explicit, &crate::environment::root(), &|name| {
            std::env::var_os(name)
        });
        search(&plan, explicit.is_some())
    })
}

/// Tries `plan` in order, stopping at the first candidate that is there.
fn search(plan: &[(Candidate, CublasSource)], explicit: bool) -> Search {
    let candidates: Vec<String> = plan.iter().map(|(c, _)| c.to_string()).collect();
    for (candidate, source) in plan {
        match Cublas::load(candidate) {
            Err(LoadError::NotFound { .. }) => {}
            loaded => {
                return Search {
                    loaded,
                    source: Some(*source),
                    candidates,
                    explicit,
                }
            }
        }
    }
    let loaded = Err(LoadError::NotFound {
        tried: candidates.clone(),
    });
    Search {
        loaded,
        source: None,
        candidates,
        explicit,
    }
}

/// The candidates, in order: the explicit file alone when there is one,
/// else the loader's names, then each wheel's library in each site-packages
/// folder that exists under `root`.
fn plan(
    explicit: Option<&Path>,
    root: &Path,
    var: &dyn Fn(&str) -> Option<OsString>,
) -> Vec<(Candidate, CublasSource)> {
    if let Some(path) = explicit {
        return vec![(Candidate::File(path.to_path_buf()), CublasSource::Explicit)];
    }
    let mut plan: Vec<(Candidate, CublasSource)> = cublas::CANDIDATES
        .iter()
        .map(|name| (Candidate::Name(name), CublasSource::LoaderPath))
        .collect();
    if !WHEELS.is_empty() {
        for site in site_packages(root, var) {
            for (folder, file) in WHEELS {
                let path = site.join(folder).join(file);
                plan.push((Candidate::File(path), CublasSource::PipWheel));
            }
        }
    }
    plan
}

/// The site-packages folders of the Python installations a container
/// typically has, as they lie under `root`, in the order Python itself
/// would prefer them (sys.path: PYTHONPATH's entries first, then the
/// active environment's prefix), each that exists, once:
/// - each entry of PYTHONPATH (itself a sys.path entry);
/// - `PREFIX/lib/python3*/site-packages` for each prefix a variable names:
///   VIRTUAL_ENV (a venv), CONDA_PREFIX (an active conda environment),
///   PYTHONHOME (`prefix[:exec_prefix]`);
/// - `/opt/conda/lib/python3*/site-packages` (the conda and PyTorch
///   images' base environment);
/// - `/usr/local/lib/python3*/dist-packages` and `.../site-packages` (pip
///   as root on Debian and Ubuntu's Python; the python:3.x images and
///   source builds);
/// - `/usr/lib/python3/dist-packages` (Debian and Ubuntu's packages).
fn site_packages(root: &Path, var: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let under = |path: &Path| -> Option<PathBuf> {
        // A relative entry is relative to a working folder Python would
        // have, not gpuprobe's: not guessed.
        let relative = path.strip_prefix("/").ok()?;
        Some(root.join(relative))
    };
    let mut sites: Vec<PathBuf> = Vec::new();
    if let Some(path) = var("PYTHONPATH") {
        sites.extend(std::env::split_paths(&path).filter_map(|p| under(&p)));
    }
    let mut prefixes: Vec<PathBuf> = Vec::new();
    for name in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        prefixes.extend(var(name).and_then(|p| under(Path::new(&p))));
    }
    if let Some(home) = var("PYTHONHOME") {
        prefixes.extend(std::env::split_paths(&home).filter_map(|p| under(&p)));
    }
    prefixes.push(root.join("opt/conda"));
    for prefix in &prefixes {
        sites.extend(
            pythons(&prefix.join("lib"))
                .into_iter()
                .map(|p| p.join("site-packages")),
        );
    }
    for python in pythons(&root.join("usr/local/lib")) {
        sites.push(python.join("dist-packages"));
        sites.push(python.join("site-packages"));
    }
    sites.push(root.join("usr/lib/python3/dist-packages"));
    let mut seen: Vec<PathBuf> = Vec::new();
    for site in sites {
        if seen.len() == MAX_SITES {
            break;
        }
        if !seen.contains(&site) && site.is_dir() {
            seen.push(site);
        }
    }
    seen
}

/// The `python3*` folders in `lib` (`python3`, `python3.12`,
/// `python3.13t`), newest first, at most `MAX_PYTHONS`.
fn pythons(lib: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lib) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let rest = name.to_str()?.strip_prefix("python3")?;
            // "python3" itself, or "python3.N" with a suffix such as "t".
            let minor = match rest.strip_prefix('.') {
                Some(v) => v
                    .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                    .parse()
                    .ok()?,
                None if rest.is_empty() => 0,
                None => return None,
            };
            Some((minor, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found
        .into_iter()
        .take(MAX_PYTHONS)
        .map(|(_, path)| path)
        .collect()
}

/// The `cublas` check: cuBLAS loaded, or why not. Absent is no failure
/// (only gpuprobe's kernels are measured then); a library `--cublas` names
/// that cannot be used is one.
pub(super) fn check(progress: &Progress) -> Option<&'static Cublas> {
    progress
        .stage(Scope::Machine, Stage::Cublas, || {
            let found = searched();
            progress.update(|r| {
                if let Some(bench) = r.bench.as_mut() {
                    bench.cublas = info(found);
                }
            });
            let how = match found.source {
                Some(CublasSource::LoaderPath) => "on the loader's path",
                Some(CublasSource::PipWheel) => "in a pip wheel's folder",
                Some(CublasSource::Explicit) => "named by --cublas or GPUPROBE_CUBLAS",
                None => "",
            };
            match (&found.loaded, found.explicit) {
                (Ok(c), _) => Ok(Done::pass(Some(c), format!("loaded {} ({how})", c.path))),
                (Err(e), true) => Err(Failed::new(format!(
                    "the cuBLAS that --cublas or GPUPROBE_CUBLAS names cannot be used, and no \
                     other is tried: {e}"
                ))),
                (Err(e), false) => Ok(Done::skip(
                    None,
                    crate::report::NotRun::Unavailable,
                    format!("{e}: only gpuprobe's kernels are measured"),
                    None,
                )),
            }
        })
        .flatten()
}

/// The report's account of the search.
fn info(found: &Search) -> CublasInfo {
    let (status, path, error) = match &found.loaded {
        Ok(c) => (CublasStatus::Loaded, Some(c.path.clone()), None),
        Err(e) => (
            match e {
                LoadError::NotFound { .. } => CublasStatus::NotFound,
                LoadError::Unloadable { .. } => CublasStatus::Unloadable,
                LoadError::MissingSymbols { .. } => CublasStatus::MissingSymbols,
            },
            match e {
                LoadError::MissingSymbols { path, .. } => Some(path.clone()),
                _ => None,
            },
            Some(e.to_string()),
        ),
    };
    CublasInfo {
        status,
        library_path: path,
        library_candidates: found.candidates.clone(),
        library_source: found.source,
        error,
    }
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    fn make(root: &Path, dirs: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
    }

    fn relative(root: &Path, sites: &[PathBuf]) -> Vec<String> {
        sites
            .iter()
            .map(|s| s.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn site_packages_come_in_python_s_order_under_the_root_each_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        make(
            root,
            &[
                "usr/lib/python3/dist-packages",
                "usr/local/lib/python3.9/dist-packages",
                "usr/local/lib/python3.12/dist-packages",
                "usr/local/lib/python3.12/site-packages",
                "usr/local/lib/python3.13t/site-packages",
                "usr/local/lib/pythonista/site-packages",
                "opt/conda/lib/python3.11/site-packages",
                "opt/venv/lib/python3.12/site-packages",
                "work/pylib",
            ],
        );
        let var = |name: &str| -> Option<OsString> {
            match name {
                "VIRTUAL_ENV" => Some("/opt/venv".into()),
                // A relative entry, an absent one, and one twice.
                "PYTHONPATH" => Some("/work/pylib:rel/lib:/nowhere:/work/pylib".into()),
                "PYTHONHOME" => Some("/opt/conda".into()),
                _ => None,
            }
        };
        let sites = site_packages(root, &var);
        assert_eq!(
            relative(root, &sites),
            [
                "work/pylib",
                "opt/venv/lib/python3.12/site-packages",
                "opt/conda/lib/python3.11/site-packages",
                "usr/local/lib/python3.13t/site-packages",
                "usr/local/lib/python3.12/dist-packages",
                "usr/local/lib/python3.12/site-packages",
                "usr/local/lib/python3.9/dist-packages",
                "usr/lib/python3/dist-packages",
            ]
        );
    }

    #[test]
    fn an_explicit_path_is_the_only_candidate() {
        let tmp = tempfile::tempdir().unwrap();
        make(tmp.path(), &["usr/lib/python3/dist-packages"]);
        let path = Path::new("/opt/cublas/libcublas.so.13");
        let plan = plan(Some(path), tmp.path(), &|_| None);
        assert_eq!(
            plan,
            [(Candidate::File(path.to_path_buf()), CublasSource::Explicit)]
        );
    }

    #[test]
    fn the_loader_s_names_come_first_then_each_wheel_newest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        make(root, &["usr/local/lib/python3.12/dist-packages"]);
        let plan = plan(None, root, &|_| None);
        let (names, wheels) = plan.split_at(cublas::CANDIDATES.len());
        assert!(names
            .iter()
            .all(|(c, s)| matches!(c, Candidate::Name(_)) && *s == CublasSource::LoaderPath));
        assert_eq!(names[0].0, Candidate::Name("libcublas.so.13"));
        let site = root.join("usr/local/lib/python3.12/dist-packages");
        assert_eq!(
            wheels,
            [
                "nvidia/cu13/lib/libcublas.so.13",
                "nvidia/cublas/lib/libcublas.so.12",
                "nvidia/cublas/lib/libcublas.so.11",
            ]
            .map(|f| (Candidate::File(site.join(f)), CublasSource::PipWheel))
        );
    }

    #[test]
    fn nothing_there_is_not_found_with_every_candidate_named() {
        let tmp = tempfile::tempdir().unwrap();
        let absent = tmp.path().join("libcublas.so.13");
        let found = search(
            &[(Candidate::File(absent.clone()), CublasSource::PipWheel)],
            false,
        );
        assert!(found.source.is_none());
        let report = info(&found);
        assert_eq!(report.status, CublasStatus::NotFound);
        assert_eq!(report.library_candidates, [absent.display().to_string()]);
        assert!(report
            .error
            .is_some_and(|e| e.contains(&absent.display().to_string())));
    }
}
