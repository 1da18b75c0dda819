//! Error names and texts as NVIDIA's own libraries give them, each with the
//! first driver that knows it, so the fake answers cuGetErrorName,
//! cuGetErrorString and nvmlErrorString as the driver it stands for would.
//! Read from libcuda and libnvidia-ml 470.256.02 (CUDA 11.4), 535.261.03
//! (CUDA 12.2), 550.163.01 (CUDA 12.4) and 555.58.02 (CUDA 12.5); the
//! real-driver test (tests/real_driver.rs) compares every code with those
//! libraries, so an entry here cannot drift from them. A code first seen in
//! 535 may be older than 12.2 (no driver between 470 and 535 is sampled):
//! the test keeps it right for the four drivers it compares.
use std::ffi::CStr;

/// (code, first CUDA version knowing it as cuDriverGetVersion reports it,
/// cuGetErrorName, cuGetErrorString). `ABSENT_FROM` lists the exceptions.
pub const CUDA: &[(i32, i32, &CStr, &CStr)] = &[
    (0, 11040, c"CUDA_SUCCESS", c"no error"),
    (1, 11040, c"CUDA_ERROR_INVALID_VALUE", c"invalid argument"),
    (2, 11040, c"CUDA_ERROR_OUT_OF_MEMORY", c"out of memory"),
    (3, 11040, c"CUDA_ERROR_NOT_INITIALIZED", c"initialization error"),
    (4, 11040, c"CUDA_ERROR_DEINITIALIZED", c"driver shutting down"),
    (5, 11040, c"CUDA_ERROR_PROFILER_DISABLED", c"profiler disabled while using external profiling tool"),
    (6, 11040, c"CUDA_ERROR_PROFILER_NOT_INITIALIZED", c"profiler not initialized: call cudaProfilerInitialize()"),
    (7, 11040, c"CUDA_ERROR_PROFILER_ALREADY_STARTED", c"profiler already started"),
    (8, 11040, c"CUDA_ERROR_PROFILER_ALREADY_STOPPED", c"profiler already stopped"),
    (34, 11040, c"CUDA_ERROR_STUB_LIBRARY", c"CUDA driver is a stub library"),
    (46, 12020, c"CUDA_ERROR_DEVICE_UNAVAILABLE", c"CUDA-capable device(s) is/are busy or unavailable"),
    (100, 11040, c"CUDA_ERROR_NO_DEVICE", c"no CUDA-capable device is detected"),
    (101, 11040, c"CUDA_ERROR_INVALID_DEVICE", c"invalid device ordinal"),
    (102, 11040, c"CUDA_ERROR_DEVICE_NOT_LICENSED", c"device doesn't have valid Grid license"),
    (200, 11040, c"CUDA_ERROR_INVALID_IMAGE", c"device kernel image is invalid"),
    (201, 11040, c"CUDA_ERROR_INVALID_CONTEXT", c"invalid device context"),
    (202, 11040, c"CUDA_ERROR_CONTEXT_ALREADY_CURRENT", c"context already current"),
    (205, 11040, c"CUDA_ERROR_MAP_FAILED", c"mapping of buffer object failed"),
    (206, 11040, c"CUDA_ERROR_UNMAP_FAILED", c"unmapping of buffer object failed"),
    (207, 11040, c"CUDA_ERROR_ARRAY_IS_MAPPED", c"array is mapped"),
    (208, 11040, c"CUDA_ERROR_ALREADY_MAPPED", c"resource already mapped"),
    (209, 11040, c"CUDA_ERROR_NO_BINARY_FOR_GPU", c"no kernel image is available for execution on the device"),
    (210, 11040, c"CUDA_ERROR_ALREADY_ACQUIRED", c"resource already acquired"),
    (211, 11040, c"CUDA_ERROR_NOT_MAPPED", c"resource not mapped"),
    (212, 11040, c"CUDA_ERROR_NOT_MAPPED_AS_ARRAY", c"resource not mapped as array"),
    (213, 11040, c"CUDA_ERROR_NOT_MAPPED_AS_POINTER", c"resource not mapped as pointer"),
    (214, 11040, c"CUDA_ERROR_ECC_UNCORRECTABLE", c"uncorrectable ECC error encountered"),
    (215, 11040, c"CUDA_ERROR_UNSUPPORTED_LIMIT", c"limit is not supported on this architecture"),
    (216, 11040, c"CUDA_ERROR_CONTEXT_ALREADY_IN_USE", c"exclusive-thread device already in use by a different thread"),
    (217, 11040, c"CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", c"peer access is not supported between these two devices"),
    (218, 11040, c"CUDA_ERROR_INVALID_PTX", c"a PTX JIT compilation failed"),
    (219, 11040, c"CUDA_ERROR_INVALID_GRAPHICS_CONTEXT", c"invalid OpenGL or DirectX context"),
    (220, 11040, c"CUDA_ERROR_NVLINK_UNCORRECTABLE", c"uncorrectable NVLink error detected during the execution"),
    (221, 11040, c"CUDA_ERROR_JIT_COMPILER_NOT_FOUND", c"PTX JIT compiler library not found"),
    (222, 11040, c"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", c"the provided PTX was compiled with an unsupported toolchain."),
    (223, 11040, c"CUDA_ERROR_JIT_COMPILATION_DISABLED", c"PTX JIT compilation was disabled"),
    (224, 11040, c"CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY", c"the provided execution affinity is not supported"),
    (225, 12020, c"CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC", c"the provided PTX contains unsupported call to cudaDeviceSynchronize"),
    (300, 11040, c"CUDA_ERROR_INVALID_SOURCE", c"device kernel image is invalid"),
    (301, 11040, c"CUDA_ERROR_FILE_NOT_FOUND", c"file not found"),
    (302, 11040, c"CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND", c"shared object symbol not found"),
    (303, 11040, c"CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", c"shared object initialization failed"),
    (304, 11040, c"CUDA_ERROR_OPERATING_SYSTEM", c"OS call failed or operation not supported on this OS"),
    (400, 11040, c"CUDA_ERROR_INVALID_HANDLE", c"invalid resource handle"),
    (401, 11040, c"CUDA_ERROR_ILLEGAL_STATE", c"the operation cannot be performed in the present state"),
    (402, 12040, c"CUDA_ERROR_LOSSY_QUERY", c"attempted introspection would be semantically lossy"),
    (500, 11040, c"CUDA_ERROR_NOT_FOUND", c"named symbol not found"),
    (600, 11040, c"CUDA_ERROR_NOT_READY", c"device not ready"),
    (700, 11040, c"CUDA_ERROR_ILLEGAL_ADDRESS", c"an illegal memory access was encountered"),
    (701, 11040, c"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", c"too many resources requested for launch"),
    (702, 11040, c"CUDA_ERROR_LAUNCH_TIMEOUT", c"the launch timed out and was terminated"),
    (703, 11040, c"CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING", c"launch uses incompatible texturing mode"),
    (704, 11040, c"CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED", c"peer access is already enabled"),
    (705, 11040, c"CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", c"peer access has not been enabled"),
    (708, 11040, c"CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE", c"cannot set while device is active in this process"),
    (709, 11040, c"CUDA_ERROR_CONTEXT_IS_DESTROYED", c"context is destroyed"),
    (710, 11040, c"CUDA_ERROR_ASSERT", c"device-side assert triggered"),
    (711, 11040, c"CUDA_ERROR_TOO_MANY_PEERS", c"peer mapping resources exhausted"),
    (712, 11040, c"CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", c"part or all of the requested memory range is already mapped"),
    (713, 11040, c"CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", c"pointer does not correspond to a registered memory region"),
    (714, 11040, c"CUDA_ERROR_HARDWARE_STACK_ERROR", c"hardware stack error"),
    (715, 11040, c"CUDA_ERROR_ILLEGAL_INSTRUCTION", c"an illegal instruction was encountered"),
    (716, 11040, c"CUDA_ERROR_MISALIGNED_ADDRESS", c"misaligned address"),
    (717, 11040, c"CUDA_ERROR_INVALID_ADDRESS_SPACE", c"operation not supported on global/shared address space"),
    (718, 11040, c"CUDA_ERROR_INVALID_PC", c"invalid program counter"),
    (719, 11040, c"CUDA_ERROR_LAUNCH_FAILED", c"unspecified launch failure"),
    (720, 11040, c"CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", c"too many blocks in cooperative launch"),
    (800, 11040, c"CUDA_ERROR_NOT_PERMITTED", c"operation not permitted"),
    (801, 11040, c"CUDA_ERROR_NOT_SUPPORTED", c"operation not supported"),
    (802, 11040, c"CUDA_ERROR_SYSTEM_NOT_READY", c"system not yet initialized"),
    (803, 11040, c"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", c"system has unsupported display driver / cuda driver combination"),
    (804, 11040, c"CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", c"forward compatibility was attempted on non supported HW"),
    (805, 11040, c"CUDA_ERROR_MPS_CONNECTION_FAILED", c"MPS client failed to connect to the MPS control daemon or the MPS server"),
    (806, 11040, c"CUDA_ERROR_MPS_RPC_FAILURE", c"the remote procedural call between the MPS server and the MPS client failed"),
    (807, 11040, c"CUDA_ERROR_MPS_SERVER_NOT_READY", c"MPS server is not ready to accept new MPS client requests"),
    (808, 11040, c"CUDA_ERROR_MPS_MAX_CLIENTS_REACHED", c"the hardware resources required to create MPS client have been exhausted"),
    (809, 11040, c"CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED", c"the hardware resources required to support device connections have been exhausted"),
    (810, 12020, c"CUDA_ERROR_MPS_CLIENT_TERMINATED", c"the MPS client has been terminated by the server"),
    (811, 12020, c"CUDA_ERROR_CDP_NOT_SUPPORTED", c"is using CUDA Dynamic Parallelism, but the current configuration, like MPS, does not support it"),
    (812, 12020, c"CUDA_ERROR_CDP_VERSION_MISMATCH", c"unsupported interaction between different versions of CUDA Dynamic Parallelism"),
    (900, 11040, c"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", c"operation not permitted when stream is capturing"),
    (901, 11040, c"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", c"operation failed due to a previous error during capture"),
    (902, 11040, c"CUDA_ERROR_STREAM_CAPTURE_MERGE", c"operation would result in a merge of separate capture sequences"),
    (903, 11040, c"CUDA_ERROR_STREAM_CAPTURE_UNMATCHED", c"capture was not ended in the same stream as it began"),
    (904, 11040, c"CUDA_ERROR_STREAM_CAPTURE_UNJOINED", c"capturing stream has unjoined work"),
    (905, 11040, c"CUDA_ERROR_STREAM_CAPTURE_ISOLATION", c"dependency created on uncaptured work in another stream"),
    (906, 11040, c"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", c"operation would make the legacy stream depend on a capturing blocking stream"),
    (907, 11040, c"CUDA_ERROR_CAPTURED_EVENT", c"operation not permitted on an event last recorded in a capturing stream"),
    (908, 11040, c"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", c"attempt to terminate a thread-local capture sequence from another thread"),
    (909, 11040, c"CUDA_ERROR_TIMEOUT", c"wait operation timed out"),
    (910, 11040, c"CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE", c"the graph update was not performed because it included changes which violated constraints specific to instantiated graph update"),
    (911, 11040, c"CUDA_ERROR_EXTERNAL_DEVICE", c"an async error has occured in external entity outside of CUDA"),
    (912, 12020, c"CUDA_ERROR_INVALID_CLUSTER_SIZE", c"a kernel launch error has occurred due to cluster misconfiguration"),
    (913, 12040, c"CUDA_ERROR_FUNCTION_NOT_LOADED", c"the function handle is not loaded when calling an API that requires a loaded function"),
    (914, 12040, c"CUDA_ERROR_INVALID_RESOURCE_TYPE", c"one or more resources passed in are not valid resource types for the operation"),
    (915, 12040, c"CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION", c"one or more resources are insufficient or non-applicable for the operation"),
    (916, 12040, c"CUDA_ERROR_KEY_ROTATION", c"an error happened during the key rotation sequence"),
    (999, 11040, c"CUDA_ERROR_UNKNOWN", c"unknown error"),
];

/// Codes a later driver lacks although an earlier one knows them, with the
/// CUDA version of that later driver: point releases of an older branch
/// get codes a newer branch's first releases never had. NVIDIA's 550.163.01
/// (CUDA 12.4, 2025) names 916 (CUDA_ERROR_KEY_ROTATION); 555.58.02 (CUDA
/// 12.5, June 2024) does not (tests/real_driver.rs, with both libraries).
pub const ABSENT_FROM: &[(i32, i32)] = &[(916, 12050)];

/// Whether the driver of CUDA version `driver_version` names `code`.
#[must_use]
pub fn cuda_knows(code: i32, since: i32, driver_version: i32) -> bool {
    since <= driver_version && !ABSENT_FROM.contains(&(code, driver_version))
}

/// (code, first driver branch knowing it, nvmlErrorString); any other code
/// is "Unknown Error", as the real library says.
pub const NVML: &[(i32, u32, &CStr)] = &[
    (0, 470, c"Success"),
    (1, 470, c"Uninitialized"),
    (2, 470, c"Invalid Argument"),
    (3, 470, c"Not Supported"),
    (4, 470, c"Insufficient Permissions"),
    (5, 470, c"Already Initialized"),
    (6, 470, c"Not Found"),
    (7, 470, c"Insufficient Size"),
    (8, 470, c"Insufficient External Power"),
    (9, 470, c"Driver Not Loaded"),
    (10, 470, c"Timeout"),
    (11, 470, c"Interrupt Request Issue"),
    (12, 470, c"NVML Shared Library Not Found"),
    (13, 470, c"Function Not Found"),
    (14, 470, c"Corrupted infoROM"),
    (15, 470, c"GPU is lost"),
    (16, 470, c"GPU requires reset"),
    (17, 470, c"GPU access blocked by the operating system"),
    (18, 470, c"Driver/library version mismatch"),
    (19, 470, c"In use by another client"),
    (20, 470, c"Insufficient Memory"),
    (21, 535, c"No data"),
    (22, 535, c"vGPU ECC not supported"),
    (23, 470, c"Insufficient Resources"),
    (24, 470, c"Invalid Frequency"),
    (25, 535, c"Argument version mismatch"),
    (26, 535, c"Requested functionality has been deprecated"),
    (27, 535, c"System is not in ready state"),
    (28, 550, c"No supported GPUs were found"),
    (
        29,
        550,
        c"Resource not in correct state to perform requested operation",
    ),
];

/// nvmlErrorString's answer for a code it does not know.
pub const NVML_UNKNOWN: &CStr = c"Unknown Error";
