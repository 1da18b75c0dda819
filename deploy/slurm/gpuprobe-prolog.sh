#!/bin/sh
# gpuprobe Prolog for Slurm (slurm.conf Prolog): refuses a GPU job on a node
# whose GPUs fail `gpuprobe health`.
#
# Jobs without GPUs pass untouched (slurmd sets SLURM_JOB_GPUS in the
# Prolog's environment only for a job with GPUs allocated). For a GPU job it
# runs the health check beside it: a failing node is drained with
# gpuprobe's reason (so the health check resumes it once healthy) and the
# Prolog exits 1, which makes Slurm requeue the job elsewhere (slurm.conf(5),
# Prolog).
[ -n "${SLURM_JOB_GPUS:-}" ] || exit 0
exec "$(dirname "$0")/gpuprobe-healthcheck.sh"
