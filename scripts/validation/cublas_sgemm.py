# cuBLAS FP32 SGEMM throughput (TF32 off) at the sizes gpuprobe measures, the
# yardstick for gpuprobe's own kernel: prints "size gflops" lines.
import sys, torch
torch.backends.cuda.matmul.allow_tf32 = False
for n in map(int, sys.argv[1:] or ["2048", "4096"]):
    a = torch.rand(n, n, device="cuda"); b = torch.rand(n, n, device="cuda")
    for _ in range(3): a @ b
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    iters = 20
    start.record()
    for _ in range(iters): a @ b
    stop.record(); torch.cuda.synchronize()
    ms = start.elapsed_time(stop) / iters
    print(f"{n} {2 * n**3 / ms / 1e6:.1f}")
