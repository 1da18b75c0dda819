
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'gpuprobe' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'gpuprobe'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'gpuprobe' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Matrix size N of the N x N x N matmul')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'Timed iterations per measurement (default: as many as fill --min-time)')
            [CompletionResult]::new('--min-time', '--min-time', [CompletionResultType]::ParameterName, 'Minimum measured time per measurement, e.g. 200ms, 1s')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the input matrices, to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--bandwidth-size', '--bandwidth-size', [CompletionResultType]::ParameterName, 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)')
            [CompletionResult]::new('--memtest', '--memtest', [CompletionResultType]::ParameterName, 'Also run one pass of the memory test over SIZE of each GPU''s free memory (e.g. 4GiB), a FRACTION of it (0.5, 50%) or `all` that is safe (off by default; `gpuprobe memtest` runs it for a duration)')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Shorthand for --format json')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the GPUs this process sees, without running anything on them')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the report')
            [CompletionResult]::new('diagnoses', 'diagnoses', [CompletionResultType]::ParameterValue, 'Print every diagnosis rule: code, severity, cause, trigger and fix')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Sweep matrix sizes: every GEMM kernel (and cuBLAS''s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot')
            [CompletionResult]::new('burn', 'burn', [CompletionResultType]::ParameterValue, 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time')
            [CompletionResult]::new('memtest', 'memtest', [CompletionResultType]::ParameterValue, 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU''s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'gpuprobe;list' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Shorthand for --format json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'gpuprobe;schema' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;diagnoses' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;health' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Check the report that `watch --state FILE` keeps instead of touching the GPU: healthy when it is fresh and its verdict is healthy or degraded')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'How old the state file''s report may be, e.g. 2m')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--no-context', '--no-context', [CompletionResultType]::ParameterName, 'Create no CUDA context: judge each GPU by its device nodes, NVML''s health signals (a lost GPU, ECC and row-remap errors) and the diagnoses only, for a GPU whose workload cannot spare a context''s device memory (hundreds of MiB). Without it, health makes a context and runs a tiny verified launch per GPU')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;exec' {
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Matrix size N of the N x N x N matmul')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'Timed iterations per measurement (default: as many as fill --min-time)')
            [CompletionResult]::new('--min-time', '--min-time', [CompletionResultType]::ParameterName, 'Minimum measured time per measurement, e.g. 200ms, 1s')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the input matrices, to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--bandwidth-size', '--bandwidth-size', [CompletionResultType]::ParameterName, 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--warn-only', '--warn-only', [CompletionResultType]::ParameterName, 'Start CMD even when the check fails (the report still goes to stderr)')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;watch' {
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between the starts of two probes, e.g. 30s, 5m')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep the latest report in FILE (atomically replaced), for `health --state`')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Keep Prometheus metrics in FILE (node_exporter textfile format)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Serve /metrics (Prometheus) and /healthz over HTTP on ADDR, e.g. 127.0.0.1:9477 or 0.0.0.0:9477 (default: no listener)')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Stop after this many probes (default: until SIGTERM or SIGINT)')
            [CompletionResult]::new('--unhealthy-after', '--unhealthy-after', [CompletionResultType]::ParameterName, 'Call the node unhealthy (/healthz 503, `health --state` exit 1) only after this many consecutive failed probes, so that one failed cycle does not drain a node; each probe''s own verdict stays in its report. 1: every failed probe. The default, 3, is Docker''s HEALTHCHECK retries and Kubernetes'' probe failureThreshold')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Matrix size N of the N x N x N matmul')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'Timed iterations per measurement (default: as many as fill --min-time)')
            [CompletionResult]::new('--min-time', '--min-time', [CompletionResultType]::ParameterName, 'Minimum measured time per measurement, e.g. 200ms, 1s')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the input matrices, to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--bandwidth-size', '--bandwidth-size', [CompletionResultType]::ParameterName, 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Do not write JSON lines to stdout')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;bench' {
            [CompletionResult]::new('--sizes', '--sizes', [CompletionResultType]::ParameterName, 'Matrix sizes N to sweep (N x N x N each), comma-separated, e.g. 256,1024; run in ascending order')
            [CompletionResult]::new('--plot', '--plot', [CompletionResultType]::ParameterName, 'Also draw GFLOP/s against N per kernel, with each GPU''s FP32 peak, as an SVG to FILE (replaced atomically)')
            [CompletionResult]::new('--cublas', '--cublas', [CompletionResultType]::ParameterName, 'The cuBLAS library to measure, e.g. /opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13; nothing else is tried then, and one that does not load fails the run (default: the loader''s path, then pip wheels'' folders)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'Timed iterations per measurement (default: as many as fill --min-time)')
            [CompletionResult]::new('--min-time', '--min-time', [CompletionResultType]::ParameterName, 'Minimum measured time per measurement, e.g. 200ms, 1s')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the input matrices, to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Shorthand for --format json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'gpuprobe;burn' {
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to keep every GPU under load, e.g. 10m, 1h')
            [CompletionResult]::new('--sample-every', '--sample-every', [CompletionResultType]::ParameterName, 'Length of one measured interval: its GFLOP/s and an NVML reading')
            [CompletionResult]::new('--verify-every', '--verify-every', [CompletionResultType]::ParameterName, 'How often a product is also copied back and compared element by element, naming what differs (and always at the end); every product is compared on the GPU')
            [CompletionResult]::new('--plot', '--plot', [CompletionResultType]::ParameterName, 'Also draw GFLOP/s, SM clock and temperature over time, per GPU, as an SVG to FILE (replaced atomically)')
            [CompletionResult]::new('--memtest', '--memtest', [CompletionResultType]::ParameterName, 'Also run the memory test, interleaved with the products: one of its patterns after each interval, over SIZE of each GPU''s free memory (left after the burn''s buffers), a FRACTION of it or `all` that is safe (off by default)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Matrix size N of the N x N x N matmul')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'Timed iterations per measurement (default: as many as fill --min-time)')
            [CompletionResult]::new('--min-time', '--min-time', [CompletionResultType]::ParameterName, 'Minimum measured time per measurement, e.g. 200ms, 1s')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the input matrices, to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--bandwidth-size', '--bandwidth-size', [CompletionResultType]::ParameterName, 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU''s free memory and of the host''s available memory; 0 turns the bandwidth check off (watch beside a workload)')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Shorthand for --format json')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'gpuprobe;memtest' {
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to run passes of every pattern (at least one pattern runs)')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'How much of each GPU''s free memory to test: a SIZE (4GiB), a FRACTION (0.5, 50%) or `all` that is safe. At least 512 MiB or 5% of the memory always stays free for the driver; beside another compute process at most 1 GiB or 5%, whichever is smaller')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the random patterns (and of the matmul''s inputs), to repeat a run exactly (default: fresh)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)')
            [CompletionResult]::new('--devices', '--devices', [CompletionResultType]::ParameterName, 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on')
            [CompletionResult]::new('--require-gpus', '--require-gpus', [CompletionResultType]::ParameterName, 'Fail unless at least N GPUs pass')
            [CompletionResult]::new('--require-memory', '--require-memory', [CompletionResultType]::ParameterName, 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB')
            [CompletionResult]::new('--require-compute-capability', '--require-compute-capability', [CompletionResultType]::ParameterName, 'Fail unless every GPU has at least this compute capability, e.g. 8.0')
            [CompletionResult]::new('--require-driver', '--require-driver', [CompletionResultType]::ParameterName, 'Fail unless the driver supports at least this CUDA version, e.g. 12.2')
            [CompletionResult]::new('--require-speedup', '--require-speedup', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul is at least X times the CPU''s')
            [CompletionResult]::new('--require-efficiency', '--require-efficiency', [CompletionResultType]::ParameterName, 'Fail unless every GPU''s matmul reaches this percentage of the GPU''s theoretical FP32 peak, e.g. 40')
            [CompletionResult]::new('--require-checks', '--require-checks', [CompletionResultType]::ParameterName, 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Shorthand for --format json')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'gpuprobe;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'gpuprobe;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the GPUs this process sees, without running anything on them')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the report')
            [CompletionResult]::new('diagnoses', 'diagnoses', [CompletionResultType]::ParameterValue, 'Print every diagnosis rule: code, severity, cause, trigger and fix')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Sweep matrix sizes: every GEMM kernel (and cuBLAS''s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot')
            [CompletionResult]::new('burn', 'burn', [CompletionResultType]::ParameterValue, 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time')
            [CompletionResult]::new('memtest', 'memtest', [CompletionResultType]::ParameterValue, 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU''s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'gpuprobe;help;list' {
            break
        }
        'gpuprobe;help;schema' {
            break
        }
        'gpuprobe;help;diagnoses' {
            break
        }
        'gpuprobe;help;health' {
            break
        }
        'gpuprobe;help;exec' {
            break
        }
        'gpuprobe;help;watch' {
            break
        }
        'gpuprobe;help;bench' {
            break
        }
        'gpuprobe;help;burn' {
            break
        }
        'gpuprobe;help;memtest' {
            break
        }
        'gpuprobe;help;completions' {
            break
        }
        'gpuprobe;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
