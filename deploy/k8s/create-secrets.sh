#!/bin/sh
# Creates the Secrets the manifests reference, with fresh random values, in
# one namespace. A Secret that already exists is left as it is, so running it
# again is safe. For production you may create the same Secrets from your
# secret manager instead (External Secrets, Sealed Secrets, Vault...): the
# names and keys are listed in docs/deployment.md ("Secrets").
#
#   deploy/k8s/create-secrets.sh NAMESPACE
#
# It prints the admin API token once: store it, only its hash is kept.
set -eu

ns="${1:?usage: $0 NAMESPACE}"
kubectl get namespace "$ns" > /dev/null 2>&1 || kubectl create namespace "$ns"

rand() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

exists() { kubectl -n "$ns" get secret "$1" > /dev/null 2>&1; }

create() {
  name="$1"; shift
  if exists "$name"; then
    echo "secret $name exists; kept"
  else
    kubectl -n "$ns" create secret generic "$name" "$@" > /dev/null
    echo "secret $name created"
  fi
}

pg_password=$(rand)
mq_password=$(rand)
orthanc_password=$(rand)
token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
token_hash=$(printf '%s' "$token" | python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
vault_key=$(python3 -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')

# Each Secret reaches only the pods that use it (see k8s/base/config.yaml).
if exists relay-secrets; then
  echo "secret relay-secrets exists; kept (with postgres-, rabbitmq-, orthanc- and relay-sender-credentials)"
else
  create postgres-credentials \
    --from-literal=POSTGRES_USER=relay \
    --from-literal=POSTGRES_PASSWORD="$pg_password"
  create rabbitmq-credentials \
    --from-literal=RABBITMQ_DEFAULT_USER=relay \
    --from-literal=RABBITMQ_DEFAULT_PASS="$mq_password"
  # The same two accounts for the prod overlay's operator-run clusters: the
  # RabbitmqCluster's default user, and the CloudNativePG database owner.
  create rabbitmq-default-user \
    --from-literal=username=relay \
    --from-literal=password="$mq_password" \
    --from-literal=default_user.conf="$(printf 'default_user = relay\ndefault_pass = %s\n' "$mq_password")" \
    --from-literal=host=rabbitmq \
    --from-literal=port=5672 \
    --from-literal=provider=rabbitmq \
    --from-literal=type=rabbitmq
  create postgres-owner --type=kubernetes.io/basic-auth \
    --from-literal=username=relay \
    --from-literal=password="$pg_password"
  create orthanc-credentials \
    --from-literal=ORTHANC__REGISTERED_USERS="{\"relay\": \"$orthanc_password\"}"
  create relay-sender-credentials \
    --from-literal=RELAY_ORTHANC_PASSWORD="$orthanc_password"
  create relay-secrets \
    --from-literal=RELAY_DATABASE_URL="postgresql+psycopg://relay:$pg_password@postgres:5432/relay" \
    --from-literal=RELAY_AMQP_URL="amqp://relay:$mq_password@rabbitmq:5672/"
fi

create relay-deid-secret --from-literal=RELAY_DEID_SECRET="$(rand)$(rand)"
create relay-vault-keys --from-literal=RELAY_IDENTIFIER_KEYS="k1:$vault_key"
if exists relay-api-tokens; then
  echo "secret relay-api-tokens exists; kept"
else
  create relay-api-tokens --from-literal=RELAY_API_TOKENS="admin:admin:$token_hash"
  echo "admin API token (shown once, store it): $token"
fi

# The key that signs each delivered series' manifest: the private half for the
# sender, the public half for the api (which serves it to whoever checks one).
if exists relay-signing-key; then
  echo "secret relay-signing-key exists; kept (with relay-signing-public-key)"
elif command -v openssl > /dev/null; then
  dir=$(mktemp -d)
  openssl genpkey -algorithm ed25519 -out "$dir/signing.pem" 2> /dev/null
  openssl pkey -in "$dir/signing.pem" -pubout -out "$dir/signing.pub.pem" 2> /dev/null
  create relay-signing-key --from-literal=RELAY_SIGNING_KEY="$(cat "$dir/signing.pem")"
  create relay-signing-public-key --from-literal=RELAY_SIGNING_KEY="$(cat "$dir/signing.pub.pem")"
  rm -rf "$dir"
else
  echo "openssl not found: create relay-signing-key and relay-signing-public-key yourself"
fi

# The SCP's TLS certificate (prod overlay). A self-signed one to start with:
# replace it with one your modalities trust (kubectl create secret tls).
if exists relay-scp-tls; then
  echo "secret relay-scp-tls exists; kept"
elif command -v openssl > /dev/null; then
  dir=$(mktemp -d)
  openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj "/CN=relay-ingest" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2> /dev/null
  kubectl -n "$ns" create secret tls relay-scp-tls --cert="$dir/tls.crt" --key="$dir/tls.key" > /dev/null
  rm -rf "$dir"
  echo "secret relay-scp-tls created (self-signed: replace it with your site's certificate)"
else
  echo "openssl not found: create relay-scp-tls yourself (kubectl create secret tls)"
fi

create mirth-credentials \
  --from-literal=DATABASE_USERNAME=mirth \
  --from-literal=DATABASE_PASSWORD="$(rand)" \
  --from-literal=KEYSTORE_STOREPASS="$(rand)" \
  --from-literal=KEYSTORE_KEYPASS="$(rand)"
