# syntax=docker/dockerfile:1
# One image for every colonyfaas component; the first argument picks the component:
#   docker run IMAGE server start --host 0.0.0.0 --port 50080 --db postgresql://…
#   docker run IMAGE gateway start --host 0.0.0.0 --port 8000
#   docker run IMAGE executor start --type faas-executor
#   docker run IMAGE deploy /functions/convert.py
# The base is pinned to an exact Python patch release and Debian release; bump both here
# (both stages) on purpose, never by a floating tag.

FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler only for dependencies without a wheel for the target platform (e.g. on arm64);
# it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sdk ./sdk
COPY colonies_server ./colonies_server
COPY deployer ./deployer
COPY faas_executor ./faas_executor
COPY gateway ./gateway
RUN /opt/venv/bin/pip install "/src[all]"

FROM python:3.11.13-slim-bookworm AS runtime
# tini is PID 1: it forwards SIGTERM to `faas` (the executor's graceful drain depends on it)
# and reaps orphaned grandchildren of sandboxed user code, which Python as PID 1 would not.
# libseccomp2 backs the executor's seccomp sandbox layer (pyseccomp loads it at runtime).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libseccomp2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 faas \
 && useradd --system --uid 10001 --gid faas --home-dir /home/faas --create-home \
      --shell /usr/sbin/nologin faas
COPY --from=build /opt/venv /opt/venv
# One-shot colony/user setup used by the Compose `setup` service and the Kubernetes Job.
COPY deploy/setup_colony.py /opt/colonyfaas/setup_colony.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric so that Kubernetes' runAsNonRoot can verify it without resolving a name.
USER 10001:10001
WORKDIR /home/faas
# server, gateway
EXPOSE 50080 8000
ENTRYPOINT ["tini", "--", "faas"]
CMD ["--help"]
