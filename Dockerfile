# One image for every relay service: the container's argument picks the
# service (`ingest`, `deid`, `sender`, `api`, or `db upgrade` for migrations).
#
#   docker build -t dicom-relay:0.1.0 .
#   docker run --rm dicom-relay:0.1.0 --help

# ---- build: a virtualenv holding the dependencies, then the project ----------
FROM python:3.11.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/relay
ENV PATH=/opt/relay/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only
# when the dependency list changes, not on every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

# Then the code. README.md* copies the readme the package metadata names,
# when there is one.
COPY README.md* ./
COPY shared ./shared
COPY services ./services
# The packages' own test suites, the installer, the symbol tables of the wheels'
# extension modules and botocore's models of every AWS service but S3 and the
# credential chain's (STS, SSO) are needed by no one at run time: dead weight. The libraries
# auditwheel vendors (`*.libs/`) are left whole: patchelf rewrote them, and strip
# would break their layout.
RUN pip install --no-cache-dir --no-deps . \
 && relay --help > /dev/null \
 && python -m pip uninstall --yes --quiet setuptools wheel pip \
 && find /opt/relay/lib -type d -name tests -prune -exec rm -rf {} + \
 && apt-get update && apt-get install -y --no-install-recommends binutils \
 && find /opt/relay -name '*.so*' -type f -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} + \
 && find /opt/relay/lib/python3.11/site-packages/botocore/data -mindepth 1 -maxdepth 1 \
        -type d -not -name s3 -not -name sts -not -name sso -not -name sso-oidc \
        -exec rm -rf {} + \
 && python -c "import boto3; [boto3.client(name, region_name='eu-west-1') for name in ('s3', 'sts', 'sso', 'sso-oidc')]"

# ---- runtime: the virtualenv and an unprivileged user, nothing else ----------
FROM python:3.11.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="dicom-relay" \
      org.opencontainers.image.description="Receives DICOM series, de-identifies them and passes them on to research storage." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/relay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAY_DATA_DIR=/var/lib/relay \
    RELAY_API_HOST=0.0.0.0 \
    RELAY_API_PORT=8000 \
    RELAY_METRICS_PORT=9100 \
    RELAY_SCP_PORT=11112

# Tesseract and its English data: the OCR gate (RELAY_PIXEL_OCR, on by default) reads
# burned-in text with them; deid refuses to start without. The pixel codecs are wheels
# in the virtualenv and need nothing from the system.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm /usr/share/tesseract-ocr/5/tessdata/osd.traineddata
# (osd: orientation detection, which the gate's sparse-text mode never runs.)

# UID/GID 10001: above the range host users get, and what the Kubernetes
# manifests set as runAsUser.
RUN groupadd --system --gid 10001 relay \
 && useradd --system --uid 10001 --gid relay --home-dir /var/lib/relay \
        --no-create-home --shell /usr/sbin/nologin relay \
 && mkdir -p /var/lib/relay \
 && chown relay:relay /var/lib/relay

COPY --from=build /opt/relay /opt/relay
# Fails the build, not the first start, when a tool or codec deid needs is missing.
RUN relay config check > /dev/null

USER 10001:10001
WORKDIR /var/lib/relay

# api, worker metrics/probes, DICOM SCP (ingest)
EXPOSE 8000 9100 11112

# slim has no curl: the CLI asks the service's own /healthz. This default
# fits the api; compose and Kubernetes give the workers --url on the metrics port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["relay", "healthcheck"]

ENTRYPOINT ["relay"]
CMD ["api"]
