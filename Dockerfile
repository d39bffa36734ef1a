# syntax=docker/dockerfile:1.7
# Two stages: uv installs the locked dependencies into a virtualenv in the build stage; the
# final stage is Python 3.11 slim with that virtualenv and the code, no compiler, no uv, and
# runs as an unprivileged user.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first (cached while only the code changes), exactly as locked.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY coffeeshop ./coffeeshop
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
RUN groupadd --system coffeeshop && useradd --system --gid coffeeshop --home /app coffeeshop \
    && mkdir -p /app /tmp/metrics && chown coffeeshop:coffeeshop /app /tmp/metrics
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER coffeeshop
EXPOSE 8000
# The standard library only: the image has no curl, and `requests` is not a dependency.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health', timeout=2).status == 200 else 1)"]
CMD ["sh", "-c", "exec coffeeshop serve --host 0.0.0.0 --port ${PORT} --workers ${WEB_WORKERS:-2}"]
