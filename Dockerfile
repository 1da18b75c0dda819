# gpuprobe in a Linux GPU image: the portable binary (glibc 2.17 baseline,
# scripts/build-portable), a HEALTHCHECK, and the exec gate as ENTRYPOINT.
#
#   docker build -t my-gpu-image .
#   docker run --gpus all my-gpu-image                    # gate, then CMD
#   docker run --gpus all my-gpu-image python3 train.py   # your workload
#
# No driver goes into the image: the NVIDIA Container Toolkit injects the
# host's libcuda.so.1 and libnvidia-ml.so.1 at `docker run --gpus ...`
# (NVIDIA Container Toolkit docs, "Driver capabilities"); baked-in driver
# libraries break as soon as the host's driver differs.
#
# Build arguments:
#   BASE      the image gpuprobe goes into. The default is NVIDIA's CUDA base
#             image; any glibc-based image works (gpuprobe needs no CUDA
#             toolkit, only the injected driver). CI passes a local one.
#   BUILDER   the image that compiles gpuprobe (Rust and Python 3).
#   PREBUILT  a gpuprobe binary in the build context to use instead of
#             compiling one (CI passes the one it just built and checked).
#
# To add gpuprobe to an image you already have, this is the one way: copy
# the released binary (or this image's /usr/local/bin/gpuprobe) in, and add
# these lines (README, "In containers"):
#   COPY gpuprobe-linux-x86_64 /usr/local/bin/gpuprobe
#   HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 CMD ["gpuprobe", "health"]
#   ENTRYPOINT ["gpuprobe", "exec", "--"]
ARG BASE=nvidia/cuda:12.4.1-base-ubuntu22.04
ARG BUILDER=rust:1-bookworm

FROM ${BUILDER} AS build
ARG PREBUILT=
WORKDIR /src
COPY . .
RUN set -e; mkdir -p /out; \
    if [ -n "$PREBUILT" ]; then cp "$PREBUILT" /out/gpuprobe; \
    else \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; \
      CARGO_TARGET_DIR=/tmp/target scripts/build-portable "$(uname -m)"; \
      cp "dist/gpuprobe-linux-$(uname -m)" /out/gpuprobe; \
    fi

FROM ${BASE}
COPY --from=build /out/gpuprobe /usr/local/bin/gpuprobe
# Not root: gpuprobe needs no privilege, only the device nodes and driver
# libraries the NVIDIA Container Toolkit gives the container (the device
# nodes are read-write for every user: the driver's default
# NVreg_DeviceFileMode is 0666). nobody, by number, so that Kubernetes'
# runAsNonRoot can check it: the kubelet refuses to start a container whose
# image names its user by name and no runAsUser says which (docs/fleet.md,
# "Least privilege"). A workload built FROM this image that needs another
# user sets its own USER.
USER 65534:65534
# Docker: exit 0 healthy, 1 unhealthy (2 is reserved, and `health` never
# uses it). The timeout leaves room for a cold cuInit; `health` keeps its
# own 10 s deadline below it (Docker reference, "HEALTHCHECK").
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
  CMD ["gpuprobe", "health"]
# The gate: probe every GPU, then exec CMD as PID 1; exit 1, 3 or 4 with the
# diagnosis on stderr instead of starting CMD on a broken GPU.
ENTRYPOINT ["gpuprobe", "exec", "--"]
# Replace with the workload. The default keeps the container up as a GPU
# monitor whose latest report HEALTHCHECK-style tools can read.
CMD ["gpuprobe", "watch", "--interval", "5m", "--quiet", "--state", "/tmp/gpuprobe.json"]
