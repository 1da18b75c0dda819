# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_gpuprobe_global_optspecs
    string join \n format= json output= devices= timeout= size= iterations= min-time= seed= bandwidth-size= memtest= require-gpus= require-memory= require-compute-capability= require-driver= require-speedup= require-efficiency= strict require-checks= h/help V/version
end

function __fish_gpuprobe_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_gpuprobe_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_gpuprobe_using_subcommand
    set -l cmd (__fish_gpuprobe_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l format -d 'Output format' -r -f -a "text\t'Human text (colour on a terminal unless NO_COLOR is set)'
json\t'The versioned JSON report (docs/report.md)'
prometheus\t'Prometheus text exposition format'"
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l size -d 'Matrix size N of the N x N x N matmul' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l iterations -d 'Timed iterations per measurement (default: as many as fill --min-time)' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l min-time -d 'Minimum measured time per measurement, e.g. 200ms, 1s' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l seed -d 'Seed for the input matrices, to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l bandwidth-size -d 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU\'s free memory and of the host\'s available memory; 0 turns the bandwidth check off (watch beside a workload)' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l memtest -d 'Also run one pass of the memory test over SIZE of each GPU\'s free memory (e.g. 4GiB), a FRACTION of it (0.5, 50%) or `all` that is safe (off by default; `gpuprobe memtest` runs it for a duration)' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l json -d 'Shorthand for --format json'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -s V -l version -d 'Print version'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "list" -d 'List the GPUs this process sees, without running anything on them'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "schema" -d 'Print the JSON Schema of the report'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "diagnoses" -d 'Print every diagnosis rule: code, severity, cause, trigger and fix'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "health" -d 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "exec" -d 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "watch" -d 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "bench" -d 'Sweep matrix sizes: every GEMM kernel (and cuBLAS\'s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "burn" -d 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "memtest" -d 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU\'s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`'
complete -c gpuprobe -n "__fish_gpuprobe_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -l format -d 'Output format' -r -f -a "text\t'Human text (colour on a terminal unless NO_COLOR is set)'
json\t'The versioned JSON report (docs/report.md)'
prometheus\t'Prometheus text exposition format'"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -l json -d 'Shorthand for --format json'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand schema" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand diagnoses" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l state -d 'Check the report that `watch --state FILE` keeps instead of touching the GPU: healthy when it is fresh and its verdict is healthy or degraded' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l max-age -d 'How old the state file\'s report may be, e.g. 2m' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l no-context -d 'Create no CUDA context: judge each GPU by its device nodes, NVML\'s health signals (a lost GPU, ECC and row-remap errors) and the diagnoses only, for a GPU whose workload cannot spare a context\'s device memory (hundreds of MiB). Without it, health makes a context and runs a tiny verified launch per GPU'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand health" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l size -d 'Matrix size N of the N x N x N matmul' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l iterations -d 'Timed iterations per measurement (default: as many as fill --min-time)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l min-time -d 'Minimum measured time per measurement, e.g. 200ms, 1s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l seed -d 'Seed for the input matrices, to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l bandwidth-size -d 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU\'s free memory and of the host\'s available memory; 0 turns the bandwidth check off (watch beside a workload)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l warn-only -d 'Start CMD even when the check fails (the report still goes to stderr)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand exec" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l interval -d 'Time between the starts of two probes, e.g. 30s, 5m' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l state -d 'Keep the latest report in FILE (atomically replaced), for `health --state`' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l prometheus -d 'Keep Prometheus metrics in FILE (node_exporter textfile format)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l listen -d 'Serve /metrics (Prometheus) and /healthz over HTTP on ADDR, e.g. 127.0.0.1:9477 or 0.0.0.0:9477 (default: no listener)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l count -d 'Stop after this many probes (default: until SIGTERM or SIGINT)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l unhealthy-after -d 'Call the node unhealthy (/healthz 503, `health --state` exit 1) only after this many consecutive failed probes, so that one failed cycle does not drain a node; each probe\'s own verdict stays in its report. 1: every failed probe. The default, 3, is Docker\'s HEALTHCHECK retries and Kubernetes\' probe failureThreshold' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l size -d 'Matrix size N of the N x N x N matmul' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l iterations -d 'Timed iterations per measurement (default: as many as fill --min-time)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l min-time -d 'Minimum measured time per measurement, e.g. 200ms, 1s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l seed -d 'Seed for the input matrices, to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l bandwidth-size -d 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU\'s free memory and of the host\'s available memory; 0 turns the bandwidth check off (watch beside a workload)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l quiet -d 'Do not write JSON lines to stdout'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand watch" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l sizes -d 'Matrix sizes N to sweep (N x N x N each), comma-separated, e.g. 256,1024; run in ascending order' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l plot -d 'Also draw GFLOP/s against N per kernel, with each GPU\'s FP32 peak, as an SVG to FILE (replaced atomically)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l cublas -d 'The cuBLAS library to measure, e.g. /opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13; nothing else is tried then, and one that does not load fails the run (default: the loader\'s path, then pip wheels\' folders)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l format -d 'Output format' -r -f -a "text\t'Human text (colour on a terminal unless NO_COLOR is set)'
json\t'The versioned JSON report (docs/report.md)'
prometheus\t'Prometheus text exposition format'"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l iterations -d 'Timed iterations per measurement (default: as many as fill --min-time)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l min-time -d 'Minimum measured time per measurement, e.g. 200ms, 1s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l seed -d 'Seed for the input matrices, to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -l json -d 'Shorthand for --format json'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l duration -d 'How long to keep every GPU under load, e.g. 10m, 1h' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l sample-every -d 'Length of one measured interval: its GFLOP/s and an NVML reading' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l verify-every -d 'How often a product is also copied back and compared element by element, naming what differs (and always at the end); every product is compared on the GPU' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l plot -d 'Also draw GFLOP/s, SM clock and temperature over time, per GPU, as an SVG to FILE (replaced atomically)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l memtest -d 'Also run the memory test, interleaved with the products: one of its patterns after each interval, over SIZE of each GPU\'s free memory (left after the burn\'s buffers), a FRACTION of it or `all` that is safe (off by default)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l format -d 'Output format' -r -f -a "text\t'Human text (colour on a terminal unless NO_COLOR is set)'
json\t'The versioned JSON report (docs/report.md)'
prometheus\t'Prometheus text exposition format'"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l size -d 'Matrix size N of the N x N x N matmul' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l iterations -d 'Timed iterations per measurement (default: as many as fill --min-time)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l min-time -d 'Minimum measured time per measurement, e.g. 200ms, 1s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l seed -d 'Seed for the input matrices, to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l bandwidth-size -d 'Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an eighth of the GPU\'s free memory and of the host\'s available memory; 0 turns the bandwidth check off (watch beside a workload)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l json -d 'Shorthand for --format json'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand burn" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l duration -d 'How long to run passes of every pattern (at least one pattern runs)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l size -d 'How much of each GPU\'s free memory to test: a SIZE (4GiB), a FRACTION (0.5, 50%) or `all` that is safe. At least 512 MiB or 5% of the memory always stays free for the driver; beside another compute process at most 1 GiB or 5%, whichever is smaller' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l seed -d 'Seed of the random patterns (and of the matmul\'s inputs), to repeat a run exactly (default: fresh)' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l format -d 'Output format' -r -f -a "text\t'Human text (colour on a terminal unless NO_COLOR is set)'
json\t'The versioned JSON report (docs/report.md)'
prometheus\t'Prometheus text exposition format'"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l output -d 'Also write the JSON report to FILE (a regular file is replaced atomically: temp file + rename; a device or FIFO is written in place)' -r -F
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l devices -d 'GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l timeout -d 'Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a stuck driver call is reported, not waited on' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-gpus -d 'Fail unless at least N GPUs pass' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-memory -d 'Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-compute-capability -d 'Fail unless every GPU has at least this compute capability, e.g. 8.0' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-driver -d 'Fail unless the driver supports at least this CUDA version, e.g. 12.2' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-speedup -d 'Fail unless every GPU\'s matmul is at least X times the CPU\'s' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-efficiency -d 'Fail unless every GPU\'s matmul reaches this percentage of the GPU\'s theoretical FP32 peak, e.g. 40' -r
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l require-checks -d 'Fail unless each named check ran, on every GPU probed (or for the machine), e.g. matmul,verify,bandwidth. A check that did not run (a busy GPU, the deadline, --bandwidth-size 0) otherwise only says why in the report; naming one this command never runs is a usage error' -r -f -a "nvml\t''
cpu_reference\t''
cpu_baseline\t''
context\t''
matmul\t''
verify\t''
tensor_cores\t''
bandwidth\t''
memtest\t''
burn\t''
bench\t''
bench_cpu\t''
cublas\t''
telemetry\t''
events\t''
peer\t''"
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l json -d 'Shorthand for --format json'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -l strict -d 'Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand memtest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand completions" -s h -l help -d 'Print help'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "list" -d 'List the GPUs this process sees, without running anything on them'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "schema" -d 'Print the JSON Schema of the report'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "diagnoses" -d 'Print every diagnosis rule: code, severity, cause, trigger and fix'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "health" -d 'Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny verified launch per GPU, one line of output, exit 0 or 1 only'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "exec" -d 'Verify the GPUs, then replace this process with CMD (for ENTRYPOINT)'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "watch" -d 'Probe every --interval, writing JSON lines, a state file and Prometheus metrics'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "bench" -d 'Sweep matrix sizes: every GEMM kernel (and cuBLAS\'s, when present) on each GPU against the CPU, each result verified; a table, JSON or an SVG plot'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "burn" -d 'Sustained load for node acceptance: the probe, then the matmul back to back on every GPU for --duration, each product compared bit for bit with the verified one, with throughput and NVML (clocks, temperature, power, throttling, ECC) recorded over time'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "memtest" -d 'Memory test: a small verified matmul, then patterns (walking ones and zeros, own address, moving inversions of ones and zeros and of seeded random words) written over the GPU\'s free memory and read back by its kernels for --duration; every word that reads back wrong is reported with its offset and bits'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`'
complete -c gpuprobe -n "__fish_gpuprobe_using_subcommand help; and not __fish_seen_subcommand_from list schema diagnoses health exec watch bench burn memtest completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
