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
#
# When the relay's SCP takes TLS only (the prod overlay), the channel must send over
# TLS too. Mirth's DICOM Sender knows one suite, that of the AES profile, so the SCP
# runs with RELAY_SCP_TLS_PROFILE=aes and an RSA certificate, and the channel is
# imported with
#   MIRTH_RELAY_TLS=aes
#   MIRTH_RELAY_TRUSTSTORE=file:///opt/connect/appdata/relay-ca.p12  (as Mirth sees it)
#   MIRTH_RELAY_TRUSTSTORE_PASSWORD=...
# (docs/deployment.md shows how to make the trust store from the relay's CA).
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

# A value as sed's replacement text: its backslashes and the delimiter escaped.
sed_text() {
  printf '%s' "$1" | sed -e 's/[\\|]/\\&/g'
}

channel_id=$(sed -n 's:.*<id>\([0-9a-f-]\{36\}\)</id>.*:\1:p' "$CHANNEL_FILE" | head -n 1)
channel="$CHANNEL_FILE"
case "${MIRTH_RELAY_TLS:-notls}" in
  notls) ;;
  aes)
    : "${MIRTH_RELAY_TRUSTSTORE:?MIRTH_RELAY_TLS=aes needs MIRTH_RELAY_TRUSTSTORE}"
    : "${MIRTH_RELAY_TRUSTSTORE_PASSWORD:?MIRTH_RELAY_TLS=aes needs MIRTH_RELAY_TRUSTSTORE_PASSWORD}"
    case "$MIRTH_RELAY_TRUSTSTORE$MIRTH_RELAY_TRUSTSTORE_PASSWORD" in
      *[\<\>\&]*) echo "MIRTH_RELAY_TRUSTSTORE and its password must not hold < > &" >&2; exit 1 ;;
    esac
    store=$(sed_text "$MIRTH_RELAY_TRUSTSTORE")
    password=$(sed_text "$MIRTH_RELAY_TRUSTSTORE_PASSWORD")
    channel=$(mktemp)
    trap 'rm -f "$channel"' EXIT
    # Only the sender to the relay: the listener facing the modalities is left as it is.
    sed -e '/<destinationConnectors>/,/<\/destinationConnectors>/{' \
        -e 's|<tls>notls</tls>|<tls>aes</tls>|' \
        -e "s|<trustStore></trustStore>|<trustStore>${store}</trustStore>|" \
        -e "s|<trustStorePW></trustStorePW>|<trustStorePW>${password}</trustStorePW>|" \
        -e '}' "$CHANNEL_FILE" > "$channel"
    ;;
  *) echo "MIRTH_RELAY_TLS must be notls or aes" >&2; exit 1 ;;
esac
echo "importing channel ${channel_id} from ${CHANNEL_FILE} (to the relay: ${MIRTH_RELAY_TLS:-notls})"
mirth --request POST --header "Content-Type: application/xml" \
  --data-binary "@${channel}" \
  "${MIRTH_URL}/api/channels?override=true" > /dev/null
mirth --request POST "${MIRTH_URL}/api/channels/${channel_id}/_deploy?returnErrors=true" > /dev/null
echo "channel deployed: DICOM in on port 11104 (AE MIRTH), out to relay-ingest:11112 (AE RELAY)"
