#!/usr/bin/env bash
# The main job: the whole platform on this machine. A private PostgreSQL (or CLOUDEDGE_POSTGRES=<connection string>),
# a Silo on Orleans with its state, reminders, membership and streams in it (REST API, live dashboard, OpenAPI UI), an edge
# agent (embedded MQTT broker, ONNX anomaly model, durable outbox, uplink to the Silo) and the sensor
# simulator with a few hundred sensors and some anomalies. Prints the URLs and an admin token; Ctrl-C
# stops everything cleanly. State lives in $CLOUDEDGE_HOME (default artifacts/platform) and survives
# restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

home=${CLOUDEDGE_HOME:-$root/artifacts/platform}
silo_url=${CLOUDEDGE_SILO_URL:-http://127.0.0.1:5080}
mqtt_port=${CLOUDEDGE_MQTT_PORT:-1883}
devices=${CLOUDEDGE_DEVICES:-200}
rate=${CLOUDEDGE_RATE:-1}                 # readings per second per device
anomaly_rate=${CLOUDEDGE_ANOMALY_RATE:-0.002}
window=${CLOUDEDGE_WINDOW:-00:00:10}
gateway=gw-1
owner=operator

say() { printf '\033[1;36m==>\033[0m %s\n' "$*"; }

say "Installing dependencies and building (Release)"
tools/install-deps.sh
dotnet build CloudEdge.sln -c Release -nologo -v quiet -clp:ErrorsOnly
bin() { echo "$root/$1/bin/Release/net10.0/$2.dll"; }
silo_dll=$(bin Silo CloudEdge.Silo)
edge_dll=$(bin EdgeAgent CloudEdge.EdgeAgent)
sim_dll=$(bin DeviceSdk/Simulator CloudEdge.Simulator)
broker_dll=$(bin Mqtt/BrokerHost CloudEdge.Mqtt.BrokerHost)

mkdir -p "$home"/{silo,edge,logs,postgres}
# Secrets are made once per home and never leave it.
[ -s "$home/signing.key" ] || { umask 077; echo "base64:$(openssl rand -base64 48 | tr -d '\n')" > "$home/signing.key"; }
[ -s "$home/device.secret" ] || { umask 077; openssl rand -hex 16 > "$home/device.secret"; }
export Auth__SigningKey; Auth__SigningKey=$(cat "$home/signing.key")
device_secret=$(cat "$home/device.secret")

pids=()
stopping=0
own_postgres=0
stop_all() {
  (( stopping )) && return; stopping=1
  trap '' INT TERM
  say "Stopping (simulator, edge agent, Silo, then PostgreSQL)"
  # Newest first: sensors stop publishing, the agent flushes its journal, the Silo deactivates grains.
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    local pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null && echo "  process $pid did not stop within 30 s: killed" >&2
  done
  # Last: the Silo wrote its grains' state on the way down.
  (( own_postgres )) && tools/postgres.sh stop "$home/postgres" >/dev/null 2>&1 || true
  say "Stopped. Logs: $home/logs; state: $home"
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

wait_http() { # url seconds
  for _ in $(seq 1 "$2"); do curl -fs -o /dev/null "$1" && return 0; sleep 1; done
  echo "timed out waiting for $1; see $home/logs" >&2; return 1
}

if [ -n "${CLOUDEDGE_POSTGRES:-}" ]; then
  say "Using the PostgreSQL of CLOUDEDGE_POSTGRES"
  postgres=$CLOUDEDGE_POSTGRES
else
  say "Starting the private PostgreSQL (data: $home/postgres)"
  own_postgres=1
  tools/postgres.sh start "$home/postgres" >"$home/logs/postgres.log"
  postgres="$(tools/postgres.sh status "$home/postgres" | sed -n 's/^postgres.sh: running: //p');Password=$(cat "$home/postgres/password")"
fi
# The connection string (with its password) reaches the Silo through the environment, never a command line.
export Silo__Postgres="$postgres"
dotnet "$silo_dll" migrate >"$home/logs/migrate.log" 2>&1 || { echo "schema migration failed; see $home/logs/migrate.log" >&2; exit 1; }

say "Starting the Silo on $silo_url (data: $home/silo)"
RateLimiting__PermitLimit=100000 dotnet "$silo_dll" --urls "$silo_url" --Silo:DataDirectory "$home/silo" \
  >"$home/logs/silo.log" 2>&1 &
pids+=($!)
wait_http "$silo_url/health/ready" 90

token() { dotnet "$silo_dll" token --sub "$1" --role "$2" --lifetime "${3:-12:00:00}"; }
admin_token=$(token admin admin)
gateway_token=$(token "$gateway" gateway 720:00:00)

api() { # method path body
  curl -fsS --max-time 30 -o /dev/null -X "$1" "$silo_url/api/v1$2" -H "Authorization: Bearer $admin_token" \
    -H "Content-Type: application/json" -H "Idempotency-Key: platform-$1-$2" ${3:+-d "$3"} 2>/dev/null || true
}

say "Registering user '$owner', gateway $gateway and $devices devices (idempotent)"
api POST /users "{\"userId\":\"$owner\",\"email\":\"operator@example.com\",\"displayName\":\"Operator\"}"
kinds=(temperature humidity pressure vibration)   # the simulator assigns kinds in this order
registrations=()
for i in $(seq 1 "$devices"); do
  id=$(printf 'sim-%04d' "$i")
  api POST /devices "{\"deviceId\":\"$id\",\"ownerId\":\"$owner\",\"gatewayId\":\"$gateway\",\"kind\":\"${kinds[$(( (i-1) % 4 ))]}\",\"model\":\"simulated\"}" &
  registrations+=($!)
  if (( ${#registrations[@]} == 20 )); then wait "${registrations[@]}"; registrations=(); fi
done
(( ${#registrations[@]} == 0 )) || wait "${registrations[@]}"

say "Provisioning device credentials for the edge broker"
hash=$(printf '%s' "$device_secret" | dotnet "$broker_dll" hash-password -)
: > "$home/edge/users.txt"
for i in $(seq 1 "$devices"); do printf 'sim-%04d:%s\n' "$i" "$hash" >> "$home/edge/users.txt"; done
# A device may publish only under its own topic tree.
printf 'publish * devices/{clientid}/#\n' > "$home/edge/acl.txt"
chmod 600 "$home/edge/users.txt"

say "Starting the edge agent $gateway (MQTT on 127.0.0.1:$mqtt_port, data: $home/edge)"
dotnet "$edge_dll" \
  --EdgeAgent:GatewayId "$gateway" --EdgeAgent:DataDirectory "$home/edge" \
  --EdgeAgent:ModelDirectory "$root/models/anomaly/v1" --EdgeAgent:WindowLength "$window" \
  --EdgeAgent:Broker:ListenAddress 127.0.0.1 --EdgeAgent:Broker:TcpPort "$mqtt_port" \
  --EdgeAgent:Broker:UsersFile "$home/edge/users.txt" --EdgeAgent:Broker:AclFile "$home/edge/acl.txt" \
  --EdgeAgent:Uplink:SiloUrl "$silo_url" --EdgeAgent:Uplink:Token "$gateway_token" \
  >"$home/logs/edge-agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 1; done

cat <<TXT

  CloudEdge is running.
    Dashboard       $silo_url/dashboard/#token=$admin_token
    REST API        $silo_url/api/v1      (OpenAPI UI: $silo_url/docs)
    Admin token     $admin_token
    Try             curl -H "Authorization: Bearer \$TOKEN" $silo_url/api/v1/devices/sim-0001
    MQTT (edge)     127.0.0.1:$mqtt_port  (devices sim-0001..$(printf 'sim-%04d' "$devices"), password in $home/device.secret)
    Logs            $home/logs
  Press Ctrl-C to stop.

TXT

say "Starting the simulator: $devices sensors, $rate reading/s each, anomaly rate $anomaly_rate"
dotnet "$sim_dll" --host 127.0.0.1 --port "$mqtt_port" --devices "$devices" --rate "$rate" \
  --anomaly-rate "$anomaly_rate" --qos 1 --username '{deviceId}' --password-file "$home/device.secret" \
  --summary-file "$home/logs/simulator-summary.json" &
pids+=($!)
# Wait for the simulator; Ctrl-C lands in the INT trap, which stops everything.
while kill -0 "${pids[-1]}" 2>/dev/null; do sleep 1; done
