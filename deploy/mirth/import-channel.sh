#!/bin/sh
# Imports (or replaces) the relay channel in Mirth Connect and deploys it,
# through Mirth's REST API. Used by docker compose's mirth-channel service, and
# by hand for Kubernetes after `kubectl port-forward svc/mirth 8443:8443`:
#
#   MIRTH_URL=https://127.0.0.1:8443 MIRTH_USER=admin MIRTH_PASSWORD=... \
#     deploy/mirth/import-channel.sh
#
# Mirth's certificate is self-signed unless you gave it one: set
# MIRTH_CACERT=path/to/ca.pem to verify it; without it the check is skipped.
set -eu

MIRTH_URL="${MIRTH_URL:-https://127.0.0.1:8443}"
MIRTH_USER="${MIRTH_USER:-admin}"
MIRTH_PASSWORD="${MIRTH_PASSWORD:?set MIRTH_PASSWORD}"
CHANNEL_FILE="${CHANNEL_FILE:-$(dirname "$0")/relay-dicom-forward.xml}"

if [ -n "${MIRTH_CACERT:-}" ]; then
  tls="--cacert ${MIRTH_CACERT}"
else
  tls="--insecure"
fi

mirth() {
  # shellcheck disable=SC2086
  curl --silent --show-error --fail $tls \
    --user "${MIRTH_USER}:${MIRTH_PASSWORD}" \
    --header "X-Requested-With: OpenAPI" "$@"
}

echo "waiting for Mirth at ${MIRTH_URL}"
tries=0
until mirth --output /dev/null "${MIRTH_URL}/api/server/version"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Mirth did not answer after 5 minutes" >&2
    exit 1
  fi
  sleep 5
done

channel_id=$(sed -n 's:.*<id>\([0-9a-f-]\{36\}\)</id>.*:\1:p' "$CHANNEL_FILE" | head -n 1)
echo "importing channel ${channel_id} from ${CHANNEL_FILE}"
mirth --request POST --header "Content-Type: application/xml" \
  --data-binary "@${CHANNEL_FILE}" \
  "${MIRTH_URL}/api/channels?override=true" > /dev/null
mirth --request POST "${MIRTH_URL}/api/channels/${channel_id}/_deploy?returnErrors=true" > /dev/null
echo "channel deployed: DICOM in on port 11104 (AE MIRTH), out to relay-ingest:11112 (AE RELAY)"
