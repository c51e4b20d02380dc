#!/usr/bin/env bash
# Installs the real peers the tests talk to (and the browser the dashboard test drives),
# from Debian's packages, when missing,
# and starts the local PostgreSQL and RabbitMQ when they are down.
set -euo pipefail
need=()
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v storescu >/dev/null || need+=(dcmtk)
command -v gdcmanon >/dev/null || need+=(libgdcm-tools)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)
command -v promtool >/dev/null || need+=(prometheus)  # promtool checks the alert rules
# The sign-in tests run an OpenID provider (npm's oidc-provider) with Node.js, and the
# browser tests check accessibility with axe-core.
command -v npm >/dev/null || need+=(nodejs npm)
# The audit trail test receives DICOM audit messages over syslog TLS (RFC 5425).
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
dpkg -s rsyslog-gnutls >/dev/null 2>&1 || need+=(rsyslog-gnutls)  # its TLS driver
# The image, compose and manifest tests run containers with podman, rootful, and build
# stand-ins for base images from Debian packages (see docs/deployment.md).
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v fuse-overlayfs >/dev/null || need+=(fuse-overlayfs)
command -v debootstrap >/dev/null || need+=(debootstrap)
# Compose services find each other by name: the CNI plugin that answers for them.
[ -x /usr/lib/cni/dnsname ] || need+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packaged Orthanc service from starting on its default ports
  # while it installs; it goes again after, so later packages' services start as usual.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached || true
  for _ in $(seq 60); do up 5672 && break; sleep 1; done
fi
