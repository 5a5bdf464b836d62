# eowatch container image: the API (`serve`), the monitoring scheduler and workers, Dask
# workers (`dask worker`) and the CWL application packages (cwl/, DockerRequirement
# eowatch:0.1.0) all run this one image.
#   docker build -t eowatch:0.1.0 .
#   docker run -p 8000:8000 eowatch:0.1.0                      # API on :8000
#   docker run eowatch:0.1.0 detect --before ... --after ...   # any eowatch command
ARG PYTHON_IMAGE=python:3.11-slim

# -- web: the web app's browser libraries from npm (web/package-lock.json), not in git ------
FROM node:20-slim AS web
WORKDIR /build
COPY web/package.json web/package-lock.json ./web/
COPY scripts/setup_web.sh ./scripts/
RUN EOWATCH_NO_BROWSER=1 bash scripts/setup_web.sh

# -- build: install eowatch and its extras into a virtual environment ---------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/eowatch
WORKDIR /build
# Dependencies first (a layer that survives source edits), then the package itself.
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=web /build/src/eowatch/web/static/vendor ./src/eowatch/web/static/vendor
# rasterio and pyogrio wheels bundle GDAL: no system GDAL, no compiler.
RUN /opt/eowatch/bin/pip install ".[server,monitor,dask,cloudmask]" \
 && /opt/eowatch/bin/eowatch --version

# -- runtime: the virtual environment, a non-root user, nothing else ----------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="eowatch" \
      org.opencontainers.image.description="Sentinel-1/2 change detection, results catalogue and monitoring" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
# libgomp: OpenMP runtime of LightGBM, which the s2cloudless cloud mask (extra "cloudmask") runs on.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --user-group eowatch \
 && mkdir -p /data/products \
 && chown eowatch:eowatch /data/products
COPY --from=build /opt/eowatch /opt/eowatch
COPY deploy/container/entrypoint.sh /usr/local/bin/eowatch-entrypoint
ENV PATH=/opt/eowatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    EOWATCH_OUTPUT_DIR=/data/products
USER eowatch
WORKDIR /home/eowatch
VOLUME ["/data/products"]
EXPOSE 8000
# python, not curl: the slim image has no curl. Only the API answers; other roles run with
# their own probes (see deploy/k8s) or --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# `eowatch ARGS` by default; a command on PATH (eowatch, dask, python, sh) runs as given,
# which is what CWL runners and `dask worker` containers need.
ENTRYPOINT ["eowatch-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
