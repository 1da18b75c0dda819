# The copies gpuprobe's bandwidth check times, through PyTorch (the CUDA
# runtime) on the same 256 MiB buffers, for scripts/gpu-validate to print
# beside gpuprobe's: "GPU kind gbps" lines, kind d2d (counting the bytes
# read and written, as gpuprobe's device_copy and stream_kernel do), h2d and
# d2h (pinned host memory, the bytes once).
#
#   python3 torch_bandwidth.py [BYTES]
import sys

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 256 << 20


def rate(op, moved):
    for _ in range(2):
        op()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        op()
    stop.record()
    torch.cuda.synchronize()
    return moved * 10 / (start.elapsed_time(stop) / 1e3) / 1e9


for dev in range(torch.cuda.device_count()):
    torch.cuda.set_device(dev)
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    h = torch.empty(n, dtype=torch.uint8, pin_memory=True)
    print(f"{dev} d2d {rate(lambda: b.copy_(a), 2 * n):.1f}", flush=True)
    print(f"{dev} h2d {rate(lambda: a.copy_(h, non_blocking=True), n):.1f}", flush=True)
    print(f"{dev} d2h {rate(lambda: h.copy_(a, non_blocking=True), n):.1f}", flush=True)
    del a, b, h
