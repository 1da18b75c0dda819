# Summary lines for scripts/gpu-validate, read from gpuprobe's JSON reports
# (field names: docs/report.md, docs/report.schema.json) and from the torch
# helpers' plain output beside them.
#
#   python3 summarize.py SECTION FILE [ARGS...]
#
# Never fails on a report it cannot read: it prints what was missing, so
# one broken step does not hide the others' numbers.
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported, not raised
        return None, f"unreadable report {path} ({type(e).__name__}: {e})"


def lines(path):
    """The non-empty lines of a helper's output file; [] when absent ("-")."""
    if path in ("", "-"):
        return []
    try:
        with open(path) as f:
            return [l.split() for l in f if l.strip()]
    except OSError:
        return []


def fig(x, spec=".1f"):
    """A number, or the word a Figure carries when an input was missing."""
    if isinstance(x, bool) or x is None:
        return str(x).lower() if isinstance(x, bool) else "null"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.3f}"
    return "n/a"


def check(d, name):
    return next((c for c in d.get("checks") or [] if c.get("name") == name), None)


def verdict_line(r, code):
    return f"verdict {r.get('verdict')} exit {code}: {r.get('summary')}"


def devices(path):
    r, err = load(path)
    if err:
        print(err)
        return
    drv, nvml = r.get("driver") or {}, r.get("nvml") or {}
    print(f"gpuprobe list: CUDA {fig(drv.get('cuda_version'))} driver ({fig(drv.get('library_path'))}), "
          f"NVML {fig(nvml.get('status'))} driver {fig(nvml.get('driver_version'))}, "
          f"{fig(drv.get('device_count'))} device(s), verdict {r.get('verdict')}")
    env = r.get("environment") or {}
    print(f"libcuda origin {fig(env.get('cuda_library_origin'))} version {fig(env.get('cuda_library_version'))}, "
          f"kernel module {fig(env.get('kernel_module_version'))}, forward compat {fig(env.get('cuda_forward_compat'))}")
    for d in r.get("devices") or []:
        mem = d.get("memory_total_bytes")
        t = d.get("telemetry") or {}
        print(f"GPU {d.get('index')} {d.get('name')} cc {d.get('compute_capability')} "
              f"{d.get('multiprocessors')} SMs {d.get('clock_mhz')} MHz "
              f"{fig(mem / 2**30 if mem else None)} GiB {d.get('uuid')} {d.get('pci_bus_id')} "
              f"PCIe gen {t.get('pcie_generation')}/{t.get('pcie_generation_max')} "
              f"x{t.get('pcie_width_lanes')}/{t.get('pcie_width_max_lanes')} "
              f"persistence {fig(t.get('persistence_mode'))} compute mode {fig(t.get('compute_mode'))} "
              f"mig {fig(t.get('mig_enabled'))} recovery action {fig(t.get('recovery_action'))}")
    fabric = nvml.get("fabric") or []
    print(f"NVLink fabric: {len(fabric)} GPU(s) on one" + "".join(
        f"; NVML GPU {f.get('index')} {f.get('state')} status {fig(f.get('status'))} "
        f"health mask {fig(f.get('health_mask'))}" for f in fabric))


def sgemm(path, cublas_out, size, code):
    r, err = load(path)
    if err:
        print(f"gpuprobe --size {size}: exit {code}, {err}")
        return
    cublas = {int(w[0]): float(w[1]) for w in lines(cublas_out) if len(w) == 2 and w[0].isdigit()}
    for d in r.get("devices") or []:
        m = d.get("matmul") or {}
        v = m.get("verification") or {}
        p = d.get("peak") or {}
        i = d.get("index")
        if not m:
            c = check(d, "matmul") or {}
            print(f"GPU {i} matmul {c.get('status')}: {c.get('detail')}")
            continue
        print(f"GPU {i} ours {m.get('kernel')} {m.get('m')}x{m.get('n')}x{m.get('k')}: "
              f"{fig(m.get('gpu_gflops'))} GFLOP/s ({m.get('iterations')} products, "
              f"{fig(m.get('gpu_time_ms'), '.3f')} ms each, first launch {fig(m.get('first_launch_ms'), '.3f')} ms) "
              f"exact={fig(v.get('exact'))} mismatches {v.get('mismatches')} max_abs_error {fig(v.get('max_abs_error'), '.2e')}")
        ours = m.get("gpu_gflops")
        theirs = cublas.get(int(size)) if str(size).isdigit() else None
        if theirs is not None:
            print(f"GPU {i} cuBLAS SGEMM (torch, TF32 off) {size}^3: {theirs:.1f} GFLOP/s; "
                  f"ours/cuBLAS {ratio(ours, theirs)} (target >= 0.80)")
        print(f"GPU {i} expected {fig(m.get('expected_gflops'))} GFLOP/s, efficiency {fig(m.get('efficiency'), '.3f')}; "
              f"peak at current clock {fig(p.get('fp32_gflops_at_current_clock'))} "
              f"(clock {p.get('fp32_clock_mhz')} MHz from {p.get('fp32_clock_source')}, "
              f"{p.get('fp32_lanes_per_sm')} lanes/SM); memory {fig(p.get('memory_bandwidth_gbps'))} GB/s")
    print(verdict_line(r, code))


def tensor(path, cublas_out):
    r, err = load(path)
    if err:
        print(err)
        return
    for d in r.get("devices") or []:
        i = d.get("index")
        for t in d.get("tensor_cores") or []:
            v = t.get("verification") or {}
            print(f"GPU {i} tensor {t.get('precision')} {t.get('kernel')} {t.get('m')}x{t.get('n')}x{t.get('k')}: "
                  f"{fig(t.get('gpu_tflops'), '.2f')} TFLOP/s exact={fig(v.get('passed'))}")
        c = check(d, "tensor_cores")
        if c and c.get("status") != "pass":
            print(f"GPU {i} tensor_cores {c.get('status')}: {c.get('detail')}")
    for w in lines(cublas_out):
        if len(w) == 3 and w[0] in ("tf32", "bf16"):
            print(f"cuBLAS (torch) {w[0]} {w[1]}^3: {w[2]} TFLOP/s")


TRANSFERS = [("device_copy", "d2d"), ("stream_kernel", "d2d"), ("host_to_device", "h2d"), ("device_to_host", "d2h")]


def bandwidth(path, torch_out):
    r, err = load(path)
    if err:
        print(err)
        return
    torch = {}
    for w in lines(torch_out):
        if len(w) == 3 and w[0].isdigit():
            torch[(int(w[0]), w[1])] = float(w[2])
    for d in r.get("devices") or []:
        i = d.get("index")
        c = check(d, "bandwidth")
        if c is not None:
            print(f"GPU {i} bandwidth check {c.get('status')} ({fig(c.get('duration_ms'), '.0f')} ms): {c.get('detail')}")
        b = d.get("bandwidth")
        if not b:
            continue
        link = b.get("pcie_link") or {}
        print(f"GPU {i} link gen {link.get('generation')} x{link.get('width')} ({link.get('reading')}), "
              f"memory clock under load {b.get('memory_clock_mhz_under_load')} MHz, "
              f"pinned memory refused {fig(b.get('pinned_memory_refused'))}")
        for key, torch_kind in TRANSFERS:
            t = b.get(key)
            if t is None:
                print(f"GPU {i} {key:<15} not measured")
                continue
            beside = torch.get((i, torch_kind))
            tail = f"; torch {torch_kind} {beside:.1f} GB/s, ours/torch {ratio(t.get('gbps'), beside)}" if beside else ""
            print(f"GPU {i} {key:<15} {fig(t.get('gbps')):>8} GB/s expected {fig(t.get('expected_gbps'))} "
                  f"efficiency {fig(t.get('efficiency'), '.3f')} ({t.get('iterations')} x {t.get('bytes')} B){tail}")


def burn(path, code):
    r, err = load(path)
    if err:
        print(f"burn: exit {code}, {err}")
        return
    print(verdict_line(r, code))
    for d in r.get("devices") or []:
        b = d.get("burn") or {}
        i = d.get("index")
        c = check(d, "burn")
        if c is not None and c.get("status") != "pass":
            print(f"GPU {i} burn check {c.get('status')}: {c.get('detail')}")
        if not b:
            continue
        w = b.get("worst_interval") or {}
        errors = b.get("errors") or []
        print(f"GPU {i} burn {b.get('ended')} {fig((b.get('duration_ms') or 0) / 1e3)} s, "
              f"{b.get('products')} products {b.get('m')}x{b.get('n')}x{b.get('k')}: "
              f"mean {fig(b.get('gflops_mean'))} median {fig(b.get('gflops_median'))} "
              f"best {fig(b.get('gflops_best'))} worst {fig(w.get('gflops'))} GFLOP/s "
              f"at {fig((w.get('at_ms') or 0) / 1e3)} s (worst/best {fig(b.get('worst_over_best'), '.3f')})")
        print(f"GPU {i} burn comparisons {b.get('verifications')} (every product on the GPU: "
              f"{fig(b.get('compared_on_gpu'))}), errors {len(errors) + (b.get('errors_not_listed') or 0)}, "
              f"max {b.get('temperature_max_celsius')} C {b.get('power_max_watts')} W, "
              f"SM clock {b.get('sm_clock_min_mhz')}..{b.get('sm_clock_max_mhz')} MHz, "
              f"ECC +{b.get('ecc_corrected_delta')}/+{b.get('ecc_uncorrected_delta')}")
        for e in errors[:3]:
            print(f"GPU {i} burn error at {fig((e.get('at_ms') or 0) / 1e3)} s {e.get('kind')}: {e.get('detail')}")


def memtest(path, code):
    r, err = load(path)
    if err:
        print(f"memtest: exit {code}, {err}")
        return
    print(verdict_line(r, code))
    for d in r.get("devices") or []:
        m = d.get("memtest") or {}
        i = d.get("index")
        c = check(d, "memtest")
        if c is not None and c.get("status") != "pass":
            print(f"GPU {i} memtest check {c.get('status')}: {c.get('detail')}")
        if not m:
            continue
        print(f"GPU {i} memtest {m.get('bytes_tested')} B in {m.get('chunks')} chunk(s) "
              f"({fig(m.get('fraction_of_free'), '.3f')} of free), {m.get('passes')} pass(es), "
              f"{fig(m.get('gbps'))} GB/s expected {fig(m.get('expected_gbps'))} "
              f"efficiency {fig(m.get('efficiency'), '.3f')}, mismatches {m.get('mismatches')}")


def size(path, n, code):
    r, err = load(path)
    if err:
        print(f"size {n:>5}: exit {code}, {err}")
        return
    cpu = r.get("cpu") or {}
    if not r.get("devices"):
        print(f"size {n:>5}: no GPU; {verdict_line(r, code)}")
    for d in r.get("devices") or []:
        m = d.get("matmul") or {}
        v = m.get("verification") or {}
        s = v.get("f64_sample") or {}
        if not m:
            c = check(d, "matmul") or {}
            print(f"size {n:>5} GPU {d.get('index')} {d.get('status')}: matmul {c.get('status')} {c.get('detail')} "
                  f"verdict {r.get('verdict')} exit {code}")
            continue
        print(f"size {n:>5} GPU {d.get('index')} {d.get('status'):<5} {fig(m.get('gpu_gflops')):>9} GFLOP/s "
              f"cpu {fig(cpu.get('gflops')):>7} GFLOP/s ({cpu.get('threads')} threads) "
              f"exact={fig(v.get('exact'))} mismatches {v.get('mismatches')} max_abs_error {fig(v.get('max_abs_error'), '.1e')} "
              f"f64 sample {fig(s.get('max_abs_error'), '.1e')}/{fig(s.get('tolerance'), '.1e')} "
              f"verdict {r.get('verdict')} exit {code}")


def jit(path, label, code):
    r, err = load(path)
    if err:
        print(f"jit {label:<5}: exit {code}, {err}")
        return
    if not r.get("devices"):
        print(f"jit {label:<5}: no GPU; {verdict_line(r, code)}")
    for d in r.get("devices") or []:
        m = d.get("matmul") or {}
        print(f"jit {label:<5} GPU {d.get('index')} module_load_ms {fig(d.get('module_load_ms'), '.2f')} "
              f"first_launch_ms {fig(m.get('first_launch_ms'), '.3f')} exit {code}")


def visible(path, label, code):
    r, err = load(path)
    if err:
        print(f"CUDA_VISIBLE_DEVICES={label}: exit {code}, {err}")
        return
    devs = [f"{d.get('index')}:{d.get('uuid')}" for d in r.get("devices") or []]
    nvml = (r.get("nvml") or {}).get("device_uuids") or []
    codes = [g.get("code") for g in r.get("diagnoses") or []]
    print(f"CUDA_VISIBLE_DEVICES={label!r}: devices {devs or 'none'}, NVML sees {len(nvml)}, "
          f"verdict {r.get('verdict')} exit {code}, diagnoses {codes or 'none'}")


def bench(path, code):
    r, err = load(path)
    if err:
        print(f"bench: exit {code}, {err}")
        return
    b = r.get("bench") or {}
    if not b:
        print(verdict_line(r, code))
        return
    cb = b.get("cublas") or {}
    print(f"bench sizes {b.get('sizes')}, cuBLAS {cb.get('status')} {cb.get('library_path') or cb.get('error') or ''}".rstrip())
    if cb.get("status") != "loaded":
        print(f"cuBLAS names gpuprobe tried: {cb.get('library_candidates')}")
    for c in b.get("cpu") or []:
        print(f"CPU {c.get('size'):>5} {c.get('status')} {fig(c.get('gflops'))} GFLOP/s "
              f"({c.get('threads')} threads){' ' + c['reason'] if c.get('reason') else ''}")
    for d in r.get("devices") or []:
        i = d.get("index")
        rows = d.get("bench") or []
        by = {}
        for row in rows:
            v = row.get("verification") or {}
            by[(row.get("size"), row.get("kernel"))] = row.get("gpu_gflops")
            why = f" ({row.get('reason')})" if row.get("reason") else ""
            print(f"GPU {i} {row.get('size'):>5} {row.get('kernel'):<6} {row.get('status'):<4} "
                  f"{fig(row.get('gpu_gflops')):>9} GFLOP/s eff {fig(row.get('efficiency'), '.3f')} "
                  f"x{fig(row.get('speedup_vs_cpu'))} vs CPU exact={fig(v.get('exact'))}{why}")
        for n in b.get("sizes") or []:
            fast, cub = by.get((n, "fast")), by.get((n, "cublas"))
            if fast is not None and cub is not None:
                print(f"GPU {i} {n:>5} fast/cublas {ratio(fast, cub)}")
    print(verdict_line(r, code))


SECTIONS = {
    "devices": devices,
    "sgemm": sgemm,
    "tensor": tensor,
    "bandwidth": bandwidth,
    "burn": burn,
    "memtest": memtest,
    "size": size,
    "jit": jit,
    "visible": visible,
    "bench": bench,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in SECTIONS:
        print(f"usage: summarize.py {'|'.join(SECTIONS)} FILE [ARGS...]", file=sys.stderr)
        sys.exit(2)
    try:
        SECTIONS[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # noqa: BLE001 - a summary line, never a failed run
        print(f"{sys.argv[1]}: could not summarise {sys.argv[2]} ({type(e).__name__}: {e})")
