# cuBLAS FP32 SGEMM throughput (TF32 off) at the sizes gpuprobe measures, the
# yardstick for gpuprobe's own kernel: prints "size gflops" lines.
#
#   python3 cublas_sgemm.py [N ...] [--tensor N]
#
# --tensor N adds cuBLAS's tensor-core matmuls at N^3 (gpuprobe's
# tensor_cores check caps at 1024): "tf32 N tflops" and "bf16 N tflops".
import sys

import torch


def rate(n, dtype, iters=20):
    a = torch.rand(n, n, device="cuda", dtype=dtype)
    b = torch.rand(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        a @ b
    stop.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(stop) / iters
    return 2 * n**3 / ms / 1e6  # GFLOP/s


args = sys.argv[1:]
tensor = None
if "--tensor" in args:
    at = args.index("--tensor")
    tensor = int(args[at + 1])
    del args[at : at + 2]
torch.backends.cuda.matmul.allow_tf32 = False
for n in map(int, args or ["2048", "4096"]):
    print(f"{n} {rate(n, torch.float32):.1f}", flush=True)
if tensor:
    for name, dtype, tf32 in [("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        print(f"{name} {tensor} {rate(tensor, dtype, 50) / 1e3:.2f}", flush=True)
