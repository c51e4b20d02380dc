#!/usr/bin/env bash
# Builds a stand-in for an image this machine cannot pull (no container registry is
# reachable, Debian's is): a Debian bookworm root from debootstrap, imported into
# podman under the name the Dockerfile's FROM asks for. It carries this machine's CA
# bundle and pip configuration, so pip inside a build reaches PyPI as the host does.
#
#   tests/support/build-standin-base.sh python:3.11.11-slim-bookworm
#
# Nothing is done when the tag exists already.
set -euo pipefail
tag=${1:?usage: build-standin-base.sh IMAGE-NAME [EXTRA-DEBIAN-PACKAGES]}
extra=${2:-}
podman=(podman --runtime runc --cgroup-manager cgroupfs)
if "${podman[@]}" image exists "$tag"; then
  exit 0
fi
root=$(mktemp -d /var/tmp/standin-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
include=python3,python3-venv,python-is-python3,ca-certificates${extra:+,$extra}
debootstrap --variant=minbase --include="$include" bookworm "$root" http://deb.debian.org/debian >/dev/null
cat > "$root/etc/apt/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
# What Debian's slim images carry, so that sizes and package installs compare: no
# documentation, manuals or translations, and no service started by a package install.
cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
SLIM
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/locale/"*
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
# The host's trust store and pip settings, as the build's pip needs them.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
if [ -f "$HOME/.config/pip/pip.conf" ]; then
  mkdir -p "$root/root/.config/pip"
  cp "$HOME/.config/pip/pip.conf" "$root/root/.config/pip/pip.conf"
fi
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
changes=(--change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8')
while IFS='=' read -r name value; do
  changes+=(--change "ENV $name=$value")
done < <(env | grep -E '^(PIP_[A-Z_]+|PIP_CERT|REQUESTS_CA_BUNDLE|SSL_CERT_FILE)=' || true)
tar -C "$root" -c . | "${podman[@]}" import "${changes[@]}" - "$tag" >/dev/null
