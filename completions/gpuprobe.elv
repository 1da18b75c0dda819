
use builtin;
use str;

set edit:completion:arg-completer[gpuprobe] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'gpuprobe'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'gpuprobe'= {
            cand --format 'Output format'
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --size 'Matrix size N of the N x N x N matmul'
            cand --iterations 'Timed iterations per measurement (default: as many as fill --min-time)'
            cand --min-time 'Minimum measured time per measurement, e.g. 200ms, 1s'
            cand --seed 'Seed for the input matrices, to repeat a run exactly (default: fresh)'
            cand --bandwidth-size 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)'
            cand --memtest 'Also run one pass of the memory test over SIZE of each GPU''s free memory (e.g. 4GiB), a FRACTION of it (0.5, 50%) or `all` that is safe (off by default; `gpuprobe memtest` runs it for a duration)'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --json 'Shorthand for --format json'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the GPUs this process sees, without running anything on them'
            cand schema 'Print the JSON Schema of the report'
            cand diagnoses 'Print every diagnosis rule: code, severity, cause, trigger and fix'
            cand health 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only'
            cand exec 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)'
            cand watch 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics'
            cand bench 'Sweep matrix sizes: every GEMM kernel (and cuBLAS''s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot'
            cand burn 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time'
            cand memtest 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU''s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'gpuprobe;list'= {
            cand --format 'Output format'
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --json 'Shorthand for --format json'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'gpuprobe;schema'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;diagnoses'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;health'= {
            cand --state 'Check the report that `watch --state FILE` keeps instead of touching the GPU: healthy when it is fresh and its verdict is healthy or degraded'
            cand --max-age 'How old the state file''s report may be, e.g. 2m'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --no-context 'Create no CUDA context: judge each GPU by its device nodes, NVML''s health signals (a lost GPU, ECC and row-remap errors) and the diagnoses only, for a GPU whose workload cannot spare a context''s device memory (hundreds of MiB). Without it, health makes a context and runs a tiny verified launch per GPU'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;exec'= {
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --size 'Matrix size N of the N x N x N matmul'
            cand --iterations 'Timed iterations per measurement (default: as many as fill --min-time)'
            cand --min-time 'Minimum measured time per measurement, e.g. 200ms, 1s'
            cand --seed 'Seed for the input matrices, to repeat a run exactly (default: fresh)'
            cand --bandwidth-size 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --warn-only 'Start CMD even when the check fails (the report still goes to stderr)'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;watch'= {
            cand --interval 'Time between the starts of two probes, e.g. 30s, 5m'
            cand --state 'Keep the latest report in FILE (atomically replaced), for `health --state`'
            cand --prometheus 'Keep Prometheus metrics in FILE (node_exporter textfile format)'
            cand --listen 'Serve /metrics (Prometheus) and /healthz over HTTP on ADDR, e.g. 127.0.0.1:9477 or 0.0.0.0:9477 (default: no listener)'
            cand --count 'Stop after this many probes (default: until SIGTERM or SIGINT)'
            cand --unhealthy-after 'Call the node unhealthy (/healthz 503, `health --state` exit 1) only after this many consecutive failed probes, so that one failed cycle does not drain a node; each probe''s own verdict stays in its report. 1: every failed probe. The default, 3, is Docker''s HEALTHCHECK retries and Kubernetes'' probe failureThreshold'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --size 'Matrix size N of the N x N x N matmul'
            cand --iterations 'Timed iterations per measurement (default: as many as fill --min-time)'
            cand --min-time 'Minimum measured time per measurement, e.g. 200ms, 1s'
            cand --seed 'Seed for the input matrices, to repeat a run exactly (default: fresh)'
            cand --bandwidth-size 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --quiet 'Do not write JSON lines to stdout'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;bench'= {
            cand --sizes 'Matrix sizes N to sweep (N x N x N each), comma-separated, e.g. 256,1024; run in ascending order'
            cand --plot 'Also draw GFLOP/s against N per kernel, with each GPU''s FP32 peak, as an SVG to FILE (replaced atomically)'
            cand --cublas 'The cuBLAS library to measure, e.g. /opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13; nothing else is tried then, and one that does not load fails the run (default: the loader''s path, then pip wheels'' folders)'
            cand --format 'Output format'
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --iterations 'Timed iterations per measurement (default: as many as fill --min-time)'
            cand --min-time 'Minimum measured time per measurement, e.g. 200ms, 1s'
            cand --seed 'Seed for the input matrices, to repeat a run exactly (default: fresh)'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --json 'Shorthand for --format json'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'gpuprobe;burn'= {
            cand --duration 'How long to keep every GPU under load, e.g. 10m, 1h'
            cand --sample-every 'Length of one measured interval: its GFLOP/s and an NVML reading'
            cand --verify-every 'How often a product is also copied back and compared element by element, naming what differs (and always at the end); every product is compared on the GPU'
            cand --plot 'Also draw GFLOP/s, SM clock and temperature over time, per GPU, as an SVG to FILE (replaced atomically)'
            cand --memtest 'Also run the memory test, interleaved with the products: one of its patterns after each interval, over SIZE of each GPU''s free memory (left after the burn''s buffers), a FRACTION of it or `all` that is safe (off by default)'
            cand --format 'Output format'
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --size 'Matrix size N of the N x N x N matmul'
            cand --iterations 'Timed iterations per measurement (default: as many as fill --min-time)'
            cand --min-time 'Minimum measured time per measurement, e.g. 200ms, 1s'
            cand --seed 'Seed for the input matrices, to repeat a run exactly (default: fresh)'
            cand --bandwidth-size 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --json 'Shorthand for --format json'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'gpuprobe;memtest'= {
            cand --duration 'How long to run passes of every pattern (at least one pattern runs)'
            cand --size 'How much of each GPU''s free memory to test: a SIZE (4GiB), a FRACTION (0.5, 50%) or `all` that is safe. At least 512 MiB or 5% of the memory always stays free for the driver; beside another compute process at most 1 GiB or 5%, whichever is smaller'
            cand --seed 'Seed of the random patterns (and of the matmul''s inputs), to repeat a run exactly (default: fresh)'
            cand --format 'Output format'
            cand --output 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)'
            cand --devices 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`'
            cand --timeout 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on'
            cand --require-gpus 'Fail unless at least N GPUs pass'
            cand --require-memory 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB'
            cand --require-compute-capability 'Fail unless every GPU has at least this compute capability, e.g. 8.0'
            cand --require-driver 'Fail unless the driver supports at least this CUDA version, e.g. 12.2'
            cand --require-speedup 'Fail unless every GPU''s matmul is at least X times the CPU''s'
            cand --require-efficiency 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40'
            cand --require-checks 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error'
            cand --json 'Shorthand for --format json'
            cand --strict 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'gpuprobe;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'gpuprobe;help'= {
            cand list 'List the GPUs this process sees, without running anything on them'
            cand schema 'Print the JSON Schema of the report'
            cand diagnoses 'Print every diagnosis rule: code, severity, cause, trigger and fix'
            cand health 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only'
            cand exec 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)'
            cand watch 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics'
            cand bench 'Sweep matrix sizes: every GEMM kernel (and cuBLAS''s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot'
            cand burn 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time'
            cand memtest 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU''s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'gpuprobe;help;list'= {
        }
        &'gpuprobe;help;schema'= {
        }
        &'gpuprobe;help;diagnoses'= {
        }
        &'gpuprobe;help;health'= {
        }
        &'gpuprobe;help;exec'= {
        }
        &'gpuprobe;help;watch'= {
        }
        &'gpuprobe;help;bench'= {
        }
        &'gpuprobe;help;burn'= {
        }
        &'gpuprobe;help;memtest'= {
        }
        &'gpuprobe;help;completions'= {
        }
        &'gpuprobe;help;help'= {
        }
    ]
    $completions[$command]
}
