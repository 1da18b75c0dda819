/* A stand-in bcryptprimitives.dll for running Rust .exe files under wine.
 *
 * Rust's standard library (1.78 and newer) gets random bytes on Windows from
 * ProcessPrng in bcryptprimitives.dll (the rust-lang/rust Windows random
 * source); Debian's wine 8.0 has no such export, so a Rust .exe fails to
 * start there. This DLL, placed beside the .exe, exports ProcessPrng on top
 * of RtlGenRandom (advapi32's SystemFunction036), which wine implements.
 * Test-only: it never ships with gpuprobe and a real Windows has its own.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed it in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
