# One image for every Basin service: Ray head, Ray GPU workers, the sweep driver and the dashboard.
# PyPI's torch==2.14.1 wheel (pinned in pyproject.toml) is the CUDA build and carries its CUDA
# libraries, so a plain Python base gives GPU workers a CUDA-enabled PyTorch; the host needs only
# the NVIDIA driver and the NVIDIA Container Toolkit. Override BASE_IMAGE to use another base.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first (cached layer), from pyproject.toml alone.
COPY pyproject.toml README.md ./
COPY trainers/__init__.py trainers/
COPY storage/__init__.py storage/
COPY study/__init__.py study/
COPY dashboards/__init__.py dashboards/
RUN pip install . && pip uninstall -y basin-landscape

COPY trainers trainers
COPY storage storage
COPY study study
COPY dashboards dashboards
COPY examples examples
RUN pip install --no-deps . && basin --help >/dev/null

# Data sets live in a host folder mounted here (see docker-compose.yml).
ENV BASIN_DATA_DIR=/data
EXPOSE 8050 8265 6379
CMD ["basin", "--help"]
