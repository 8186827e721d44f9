#!/usr/bin/env bash
# One-shot provisioning for docker-compose.yml (the `provision` service); idempotent, so it runs on every
# `docker-compose up`. It
#   1. mints an admin token (short-lived) and the gateway's token with the Silo's `token` subcommand,
#   2. registers the owner and the simulator's devices through the Silo's REST API (a 409 *_exists from an
#      earlier run counts as done),
#   3. writes the edge broker's users file (device id : PBKDF2 hash of the device password), its ACL file
#      and the gateway token into the shared volume, each file replaced atomically.
# Secrets come from the environment (deploy/.env); nothing secret is printed.
set -euo pipefail

: "${Auth__SigningKey:?Auth__SigningKey (CLOUDEDGE_SIGNING_KEY) is required}"
: "${CLOUDEDGE_DEVICE_PASSWORD:?CLOUDEDGE_DEVICE_PASSWORD is required}"
silo_url=${CLOUDEDGE_SILO_URL:?CLOUDEDGE_SILO_URL is required}
silo_url=${silo_url%/}
silo_dll=${CLOUDEDGE_SILO_DLL:-/app/silo/CloudEdge.Silo.dll}
broker_host_dll=${CLOUDEDGE_BROKER_HOST_DLL:-/app/broker-host/CloudEdge.Mqtt.BrokerHost.dll}
out=${CLOUDEDGE_EDGE_CONFIG:-/etc/cloudedge/edge}
gateway=${CLOUDEDGE_GATEWAY_ID:-gw-1}
owner=${CLOUDEDGE_OWNER:-operator}
devices=${CLOUDEDGE_DEVICES:-50}
prefix=${CLOUDEDGE_DEVICE_PREFIX:-sim-}

say() { printf '[provision] %s\n' "$*"; }

if ! [[ "$devices" =~ ^[0-9]+$ ]] || (( devices < 1 || devices > 9999 )); then
  echo "[provision] CLOUDEDGE_DEVICES must be 1..9999 (the simulator numbers devices with 4 digits), got '$devices'" >&2
  exit 2
fi

# The Silo is healthy before this runs (depends_on), but a restart of the Silo meanwhile is survivable.
for attempt in $(seq 1 60); do
  curl -fs -o /dev/null --max-time 5 "$silo_url/health/ready" && break
  (( attempt == 60 )) && { echo "[provision] $silo_url/health/ready did not answer within 60 s" >&2; exit 1; }
  sleep 1
done

token() { dotnet "$silo_dll" token --sub "$1" --role "$2" --lifetime "$3"; }
admin_token=$(token provision admin 00:15:00)
gateway_token=$(token "$gateway" gateway "${CLOUDEDGE_GATEWAY_TOKEN_LIFETIME:-720:00:00}")

# POST a registration; 2xx or 409 (already registered) is success, anything else stops provisioning.
# 429 (rate limit) and 503 (Silo busy or stopping) are retried with the same Idempotency-Key.
register() { # path body key
  local status attempt response
  response=$(mktemp)
  for attempt in $(seq 1 20); do
    status=$(curl -sS -o "$response" -w '%{http_code}' --max-time 30 -X POST "$silo_url/api/v1$1" \
      -H "Authorization: Bearer $admin_token" -H "Content-Type: application/json" \
      -H "Idempotency-Key: $3" -d "$2" || true)
    case "$status" in
      2??|409) rm -f "$response"; return 0 ;;
      429|503|000) sleep 3 ;;
      *) break ;;
    esac
  done
  echo "[provision] POST $1 answered $status: $(head -c 500 "$response")" >&2
  rm -f "$response"
  return 1
}

# A stable Idempotency-Key per entity (a UUID-shaped hash of its id), so a retried request is replayed, not repeated.
key_for() { local h; h=$(printf '%s' "$1" | sha256sum | cut -c1-32); echo "${h:0:8}-${h:8:4}-${h:12:4}-${h:16:4}-${h:20:12}"; }

say "registering owner '$owner' and $devices devices (${prefix}0001...) on gateway $gateway at $silo_url"
register /users "{\"userId\":\"$owner\",\"email\":\"$owner@example.com\",\"displayName\":\"Operator\"}" "$(key_for "user:$owner")"
kinds=(temperature humidity pressure vibration)   # the simulator assigns kinds in this order
for i in $(seq 1 "$devices"); do
  id=$(printf '%s%04d' "$prefix" "$i")
  register /devices "{\"deviceId\":\"$id\",\"ownerId\":\"$owner\",\"gatewayId\":\"$gateway\",\"kind\":\"${kinds[$(( (i - 1) % 4 ))]}\",\"model\":\"simulated\"}" \
    "$(key_for "device:$id")"
done

umask 077
write() { # file: content from stdin, replaced atomically
  cat > "$out/.$1.tmp" && mv -f "$out/.$1.tmp" "$out/$1"
}
hash=$(printf '%s' "$CLOUDEDGE_DEVICE_PASSWORD" | dotnet "$broker_host_dll" hash-password -)
for i in $(seq 1 "$devices"); do printf '%s%04d:%s\n' "$prefix" "$i" "$hash"; done | write users.txt
# A device may publish only under its own topic tree.
printf 'publish * devices/{clientid}/#\n' | write acl.txt
printf '%s\n' "$gateway_token" | write gateway.jwt
say "wrote $out/users.txt ($devices devices), $out/acl.txt and $out/gateway.jwt"
