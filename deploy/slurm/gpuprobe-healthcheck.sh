#!/bin/sh
# gpuprobe health check for Slurm (slurm.conf HealthCheckProgram).
#
# Runs `gpuprobe health` (exit 0 healthy, 1 unhealthy; nothing else, by
# gpuprobe's contract) and acts on the node through scontrol:
#   - unhealthy: drain the node with gpuprobe's one-line reason, prefixed
#     "gpuprobe: " (unless someone else drained it already: their reason
#     stays);
#   - healthy: resume the node only if its drain reason starts with
#     "gpuprobe: ", i.e. only a drain this script made. A node an
#     administrator drained for another reason stays drained.
# A gpuprobe that cannot run at all (not installed: exit 127) counts as
# unhealthy: a check that cannot run is not a pass.
#
# Settings (environment, or /etc/default/gpuprobe-slurm, which this script
# reads when present):
#   GPUPROBE          the gpuprobe binary (default: gpuprobe on PATH)
#   GPUPROBE_ARGS     extra arguments for `gpuprobe health`, e.g. --require-gpus 8
#   SLURMD_NODENAME   the node (slurmd sets it; default: hostname -s)
# Exit status: gpuprobe's (0 or 1), 1 when it could not run.
set -u
defaults=${GPUPROBE_SLURM_DEFAULTS:-/etc/default/gpuprobe-slurm}
# shellcheck disable=SC1090
[ -r "$defaults" ] && . "$defaults"
GPUPROBE=${GPUPROBE:-gpuprobe}
node=${SLURMD_NODENAME:-$(hostname -s)}
mark="gpuprobe: "

# shellcheck disable=SC2086
line=$("$GPUPROBE" health ${GPUPROBE_ARGS:-} 2>/dev/null)
code=$?
[ -n "$line" ] || line="gpuprobe health could not run (exit $code)"
# One line, no quotes that scontrol would have to parse; Slurm shows the
# reason in sinfo -R, so keep it short.
reason=$(printf '%s' "$mark$line" | tr '\n"' " '" | cut -c1-200)

# The node's state and current reason (%E: "none" when there is none).
state=$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n1)
current=$(sinfo -h -N -n "$node" -o '%E' 2>/dev/null | head -n1)
case $state in
  drain*) drained=yes ;;
  *) drained=no ;;
esac
case $current in
  "$mark"*) ours=yes ;;
  *) ours=no ;;
esac

if [ "$code" -eq 0 ]; then
  if [ "$drained" = yes ] && [ "$ours" = yes ]; then
    scontrol update nodename="$node" state=resume
  fi
  exit 0
fi
if [ "$drained" = no ] || [ "$ours" = yes ]; then
  scontrol update nodename="$node" state=drain reason="$reason"
fi
echo "$reason" >&2
exit 1
