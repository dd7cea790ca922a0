# syntax=docker/dockerfile:1
# Ghaf's GPU inference image: `ghaf serve` with PyTorch and ONNX Runtime on CUDA, non-root,
# read-only root filesystem friendly (writable: the /var/lib/ghaf and /tmp volumes only).
# Needs the NVIDIA container toolkit on the node (the driver comes from the host).
#   docker build -f deploy/docker/inference-gpu.Dockerfile -t ghaf-inference-gpu:0.1.0 .
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS base
# Ubuntu 24.04's Python (3.12); the CUDA base pins the release, so package versions follow
# its security updates rather than exact pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

FROM base AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
WORKDIR /src
COPY . .
RUN sh deploy/docker/install-inference-gpu.sh /opt/ghaf

FROM base
RUN groupadd --gid 10001 ghaf \
    && useradd --no-log-init --uid 10001 --gid ghaf --home-dir /var/lib/ghaf --no-create-home \
        --shell /usr/sbin/nologin ghaf \
    && install -d -o ghaf -g ghaf -m 0700 /var/lib/ghaf
COPY --from=build /opt/ghaf /opt/ghaf
COPY deploy/docker/healthcheck.py /opt/ghaf-healthcheck.py
ENV PATH=/opt/ghaf/bin:$PATH \
    HOME=/var/lib/ghaf \
    GHAF_HOME=/var/lib/ghaf \
    GHAF_LOG_FORMAT=json \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /var/lib/ghaf
VOLUME ["/var/lib/ghaf", "/tmp"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=300s --retries=3 \
    CMD ["/opt/ghaf/bin/python", "/opt/ghaf-healthcheck.py", "8080", "/v2/health/live"]
ENTRYPOINT ["ghaf"]
CMD ["serve", "--help"]
