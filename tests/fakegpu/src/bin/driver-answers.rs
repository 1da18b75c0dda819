//! `driver-answers LIBCUDA LIBNVML`: makes the calls a driver answers without
//! a device, on whichever libcuda and libnvidia-ml it is given, and prints
//! the answers as one JSON object. tests/real_driver.rs runs it once on
//! NVIDIA's own libraries and once on the fake configured for "no device",
//! each in a fresh process (cuInit's outcome is per process), and requires
//! the same answers: the fake is held to what the real driver does.
//!
//! `driver-answers --exports NVML_DRIVER_VERSION` prints the symbols the fake
//! libraries export when they stand for that driver, so the test can require
//! each of them in the real libraries.
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::process::ExitCode;

use libloading::Library;
use serde_json::{json, Value};

/// The highest code asked of cuGetErrorName/cuGetErrorString and
/// nvmlErrorString: CUresult stops at 999 (CUDA_ERROR_UNKNOWN), nvmlReturn_t
/// at 999 (NVML_ERROR_UNKNOWN).
const LAST_CODE: c_int = 999;

type CuGetText = unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int;

fn text(ptr: *const c_char) -> Value {
    if ptr.is_null() {
        Value::Null
    } else {
        // SAFETY: the driver returns NUL-terminated static strings
        // (cuda.h: "pStr will hold a pointer to a NULL-terminated string").
        Value::String(
            unsafe { CStr::from_ptr(ptr) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

fn cuda(path: &str) -> Result<Value, String> {
    // SAFETY: loading a driver library runs its initialisers, as any CUDA
    // program does.
    let lib = unsafe { Library::new(path) }.map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: each signature below is the driver API's (cuda.h).
    unsafe {
        let get_version = *lib
            .get::<unsafe extern "C" fn(*mut c_int) -> c_int>(b"cuDriverGetVersion\0")
            .map_err(|e| e.to_string())?;
        let init = *lib
            .get::<unsafe extern "C" fn(c_uint) -> c_int>(b"cuInit\0")
            .map_err(|e| e.to_string())?;
        let count = *lib
            .get::<unsafe extern "C" fn(*mut c_int) -> c_int>(b"cuDeviceGetCount\0")
            .map_err(|e| e.to_string())?;
        let name = *lib
            .get::<CuGetText>(b"cuGetErrorName\0")
            .map_err(|e| e.to_string())?;
        let string = *lib
            .get::<CuGetText>(b"cuGetErrorString\0")
            .map_err(|e| e.to_string())?;

        let mut version = -1;
        let version_rc = get_version(&raw mut version);
        let mut before = -1;
        let count_before_rc = count(&raw mut before);
        let init_rc = init(0);
        let mut after = -1;
        let count_after_rc = count(&raw mut after);
        let init_again_rc = init(0);
        let mut names = BTreeMap::new();
        for code in 0..=LAST_CODE {
            let mut n = std::ptr::null();
            let mut s = std::ptr::null();
            let name_rc = name(code, &raw mut n);
            let string_rc = string(code, &raw mut s);
            // Codes the driver does not know answer CUDA_ERROR_INVALID_VALUE;
            // only the known ones are listed, with anything else that differs.
            if name_rc != 1 || string_rc != 1 {
                names.insert(
                    code.to_string(),
                    json!({"name_rc": name_rc, "name": text(n), "string_rc": string_rc, "string": text(s)}),
                );
            }
        }
        Ok(json!({
            "cuDriverGetVersion": {"rc": version_rc, "version": version},
            "cuDeviceGetCount_before_cuInit": {"rc": count_before_rc, "count": before},
            "cuInit": init_rc,
            "cuDeviceGetCount_after_cuInit": {"rc": count_after_rc, "count": after},
            "cuInit_again": init_again_rc,
            "errors": names,
        }))
    }
}

fn nvml(path: &str) -> Result<Value, String> {
    // SAFETY: as for libcuda.
    let lib = unsafe { Library::new(path) }.map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: each signature below is NVML's (nvml.h).
    unsafe {
        let init = *lib
            .get::<unsafe extern "C" fn() -> c_int>(b"nvmlInit_v2\0")
            .map_err(|e| e.to_string())?;
        let driver = *lib
            .get::<unsafe extern "C" fn(*mut c_char, c_uint) -> c_int>(
                b"nvmlSystemGetDriverVersion\0",
            )
            .map_err(|e| e.to_string())?;
        let error_string = *lib
            .get::<unsafe extern "C" fn(c_int) -> *const c_char>(b"nvmlErrorString\0")
            .map_err(|e| e.to_string())?;
        let mut buffer = [0 as c_char; 96];
        let driver_before_rc = driver(buffer.as_mut_ptr(), buffer.len() as c_uint);
        let init_rc = init();
        buffer = [0; 96];
        let driver_after_rc = driver(buffer.as_mut_ptr(), buffer.len() as c_uint);
        let driver_after = if driver_after_rc == 0 {
            text(buffer.as_ptr())
        } else {
            Value::Null
        };
        let unknown = text(error_string(-12345));
        let mut strings = BTreeMap::new();
        for code in 0..=LAST_CODE {
            let s = text(error_string(code));
            if s != unknown {
                strings.insert(code.to_string(), s);
            }
        }
        Ok(json!({
            "nvmlSystemGetDriverVersion_before_init": driver_before_rc,
            "nvmlInit_v2": init_rc,
            "nvmlSystemGetDriverVersion_after_init": {"rc": driver_after_rc, "version": driver_after},
            "nvmlErrorString_unknown": unknown,
            "nvmlErrorString": strings,
        }))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, nvml_version] = args.as_slice() {
        if flag == "--exports" {
            println!(
                "{}",
                json!({"cuda": fakegpu::cuda::EXPORTS, "nvml": fakegpu::nvml::exports_for(nvml_version)})
            );
            return ExitCode::SUCCESS;
        }
    }
    let [cuda_path, nvml_path] = args.as_slice() else {
        eprintln!(
            "usage: driver-answers LIBCUDA LIBNVML | driver-answers --exports NVML_DRIVER_VERSION"
        );
        return ExitCode::from(2);
    };
    match (cuda(cuda_path), nvml(nvml_path)) {
        (Ok(c), Ok(n)) => {
            println!("{}", json!({"cuda": c, "nvml": n}));
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("driver-answers: {e}");
            ExitCode::FAILURE
        }
    }
}
