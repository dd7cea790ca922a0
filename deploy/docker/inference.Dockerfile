# syntax=docker/dockerfile:1
# Ghaf's CPU inference image: `ghaf serve` with ONNX Runtime, non-root, read-only root
# filesystem friendly (writable: the /var/lib/ghaf and /tmp volumes only).
#   docker build -f deploy/docker/inference.Dockerfile -t ghaf-inference:0.1.0 .
# Offline, from a wheelhouse under build/ (docs/deploy.md):
#   --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/build/wheelhouse
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
WORKDIR /src
COPY . .
RUN sh deploy/docker/install-inference.sh /opt/ghaf

FROM ${PYTHON_IMAGE}
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
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/ghaf
VOLUME ["/var/lib/ghaf", "/tmp"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/opt/ghaf/bin/python", "/opt/ghaf-healthcheck.py", "8080", "/v2/health/live"]
ENTRYPOINT ["ghaf"]
CMD ["serve", "--help"]
