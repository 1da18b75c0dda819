_gpuprobe() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="gpuprobe"
                ;;
            gpuprobe,bench)
                cmd="gpuprobe__subcmd__bench"
                ;;
            gpuprobe,burn)
                cmd="gpuprobe__subcmd__burn"
                ;;
            gpuprobe,completions)
                cmd="gpuprobe__subcmd__completions"
                ;;
            gpuprobe,diagnoses)
                cmd="gpuprobe__subcmd__diagnoses"
                ;;
            gpuprobe,exec)
                cmd="gpuprobe__subcmd__exec"
                ;;
            gpuprobe,health)
                cmd="gpuprobe__subcmd__health"
                ;;
            gpuprobe,help)
                cmd="gpuprobe__subcmd__help"
                ;;
            gpuprobe,list)
                cmd="gpuprobe__subcmd__list"
                ;;
            gpuprobe,memtest)
                cmd="gpuprobe__subcmd__memtest"
                ;;
            gpuprobe,schema)
                cmd="gpuprobe__subcmd__schema"
                ;;
            gpuprobe,watch)
                cmd="gpuprobe__subcmd__watch"
                ;;
            gpuprobe__subcmd__help,bench)
                cmd="gpuprobe__subcmd__help__subcmd__bench"
                ;;
            gpuprobe__subcmd__help,burn)
                cmd="gpuprobe__subcmd__help__subcmd__burn"
                ;;
            gpuprobe__subcmd__help,completions)
                cmd="gpuprobe__subcmd__help__subcmd__completions"
                ;;
            gpuprobe__subcmd__help,diagnoses)
                cmd="gpuprobe__subcmd__help__subcmd__diagnoses"
                ;;
            gpuprobe__subcmd__help,exec)
                cmd="gpuprobe__subcmd__help__subcmd__exec"
                ;;
            gpuprobe__subcmd__help,health)
                cmd="gpuprobe__subcmd__help__subcmd__health"
                ;;
            gpuprobe__subcmd__help,help)
                cmd="gpuprobe__subcmd__help__subcmd__help"
                ;;
            gpuprobe__subcmd__help,list)
                cmd="gpuprobe__subcmd__help__subcmd__list"
                ;;
            gpuprobe__subcmd__help,memtest)
                cmd="gpuprobe__subcmd__help__subcmd__memtest"
                ;;
            gpuprobe__subcmd__help,schema)
                cmd="gpuprobe__subcmd__help__subcmd__schema"
                ;;
            gpuprobe__subcmd__help,watch)
                cmd="gpuprobe__subcmd__help__subcmd__watch"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        gpuprobe)
            opts="-h -V --format --json --output --devices --timeout --size --iterations --min-time --seed --bandwidth-size --memtest --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help --version list schema diagnoses health exec watch bench burn memtest completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -W "text json prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --iterations)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bandwidth-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memtest)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__bench)
            opts="-h --sizes --plot --cublas --format --json --output --devices --timeout --iterations --min-time --seed --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --sizes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --plot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cublas)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "text json prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --iterations)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__burn)
            opts="-h --duration --sample-every --verify-every --plot --memtest --format --json --output --devices --timeout --size --iterations --min-time --seed --bandwidth-size --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --duration)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sample-every)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --verify-every)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --plot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memtest)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "text json prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --iterations)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bandwidth-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__completions)
            opts="-h --help bash zsh fish elvish powershell"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__diagnoses)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__exec)
            opts="-h --warn-only --output --devices --timeout --size --iterations --min-time --seed --bandwidth-size --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --iterations)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bandwidth-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__health)
            opts="-h --state --max-age --no-context --devices --timeout --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-age)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help)
            opts="list schema diagnoses health exec watch bench burn memtest completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__bench)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__burn)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__completions)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__diagnoses)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__exec)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__health)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__memtest)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__schema)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__help__subcmd__watch)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__list)
            opts="-h --format --json --output --devices --timeout --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -W "text json prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__memtest)
            opts="-h --duration --size --seed --format --json --output --devices --timeout --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --duration)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "text json prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__schema)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gpuprobe__subcmd__watch)
            opts="-h --interval --state --prometheus --listen --quiet --count --unhealthy-after --devices --timeout --size --iterations --min-time --seed --bandwidth-size --require-gpus --require-memory --require-compute-capability --require-driver --require-speedup --require-efficiency --strict --require-checks --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prometheus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --listen)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --unhealthy-after)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --devices)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --iterations)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bandwidth-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-memory)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-compute-capability)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-driver)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-speedup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-efficiency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --require-checks)
                    COMPREPLY=($(compgen -W "nvml cpu_reference cpu_baseline context matmul verify tensor_cores bandwidth memtest burn bench bench_cpu cublas telemetry events peer" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _gpuprobe -o nosort -o bashdefault -o default gpuprobe
else
    complete -F _gpuprobe -o bashdefault -o default gpuprobe
fi
