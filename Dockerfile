# bidsmask BIDS App image.
#
#   docker build -t bidsmask/bidsmask:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp \
#     -v /data/bids:/data:ro -v /data/out:/out -v /scratch/work:/work \
#     bidsmask/bidsmask:0.1.0 /data /out participant --work-dir /work
#
# Stage 1 builds the bidsmask wheel and the wheels of its dependencies, and installs them without
# a network index into the virtual environment /opt/bidsmask; stage 2 copies that environment
# (not the wheels), pre-fetches the TemplateFlow files into /opt/templateflow and runs as an
# unprivileged user.
#
# Docker with multi-stage builds (17.05 or later) builds it with BuildKit or with the legacy
# builder (Debian 12's docker.io 20.10 included): no instruction needs BuildKit (no RUN --mount,
# no heredoc) and no "# syntax=" line makes the build fetch a frontend image from Docker Hub
# (tests/test_docker.py checks both; CI builds it both ways).

# Must equal bidsmask/_version.py (tests/test_docker.py checks it; pip install fails otherwise).
ARG VERSION=0.1.0

FROM python:3.12.8-slim-bookworm AS builder

ARG VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bidsmask/ ./bidsmask/
RUN python -m pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/bidsmask \
    && /opt/bidsmask/bin/python -m pip install --no-index --find-links /wheels "bidsmask==${VERSION}"

FROM python:3.12.8-slim-bookworm AS runtime

ARG VERSION
ARG BUILD_DATE=unknown
ARG VCS_REF=unknown

LABEL org.opencontainers.image.title="bidsmask" \
      org.opencontainers.image.description="BIDS App: brain masks, confound-cleaned region and voxel time series and connectivity matrices from fMRIPrep derivatives." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/bidsmask/bidsmask" \
      org.opencontainers.image.url="https://github.com/bidsmask/bidsmask" \
      org.opencontainers.image.documentation="https://github.com/bidsmask/bidsmask#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="The bidsmask developers" \
      org.opencontainers.image.authors="The bidsmask developers" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12.8-slim-bookworm"

# Everything a run writes goes to OUTPUT_DIR, --work-dir or /tmp: the image itself can be
# mounted read-only (docker run --read-only --tmpfs /tmp, or Singularity/Apptainer).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/bidsmask \
    PATH=/opt/bidsmask/bin:$PATH \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config

# Only the installed environment comes from the builder: no layer keeps the wheels.
COPY --from=builder /opt/bidsmask /opt/bidsmask

# The TemplateFlow files bidsmask can use, fetched at build time: compute nodes need no network.
# Masks, grey-matter maps and the default atlas come with every run of the command; other atlases
# are read from a bind-mounted TEMPLATEFLOW_HOME (see the README).
RUN bidsmask-fetch-templates --atlas Schaefer2018:100Parcels7Networks \
        Schaefer2018:200Parcels7Networks Schaefer2018:400Parcels17Networks \
        DiFuMo:64dimensions DiFuMo:128dimensions HOSPA:th25 HOCPA:th25 \
    && chmod -R a+rX "${TEMPLATEFLOW_HOME}"

# The version, readable without starting the app: `docker run --entrypoint cat IMAGE /version`.
RUN bidsmask --version \
    && python -c "import bidsmask; print(bidsmask.__version__)" > /version

# A HOME that any UID can use (Docker --user, Singularity/Apptainer run as the calling user).
RUN useradd --no-log-init --create-home --home-dir /home/bidsmask --uid 1000 --shell /bin/bash bidsmask \
    && chmod 777 /home/bidsmask

USER 1000:1000
WORKDIR /home/bidsmask

ENTRYPOINT ["bidsmask"]
CMD ["--help"]
