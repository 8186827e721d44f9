#!/usr/bin/env bash
# A private PostgreSQL instance for the platform, under one directory:
#   tools/postgres.sh start  DIR   create it once (initdb), start it, create database "cloudedge"
#   tools/postgres.sh status DIR   print the connection string (never the password); exit 0 when running
#   tools/postgres.sh stop   DIR   stop it (fast shutdown)
# Debian's binaries (/usr/lib/postgresql/<newest>/bin, or CLOUDEDGE_PG_BIN) run as the "postgres" system
# user when this runs as root, because initdb and the server refuse root. It listens on 127.0.0.1 only, on
# CLOUDEDGE_PG_PORT or else a free port (kept across restarts while free). The role "cloudedge" has a
# generated password in DIR/password (mode 600); it goes to PostgreSQL through files and PGPASSWORD, never
# through a command line. All three commands are idempotent.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
command=$1
case "$command" in start|stop|status) ;; *) usage ;; esac

bin=${CLOUDEDGE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "postgres.sh: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (run tools/install-deps.sh) and CLOUDEDGE_PG_BIN is not set" >&2
  exit 1
fi

mkdir -p "$2"
dir=$(cd "$2" && pwd)
password_file=$dir/password
port_file=$dir/port
home_file=$dir/server-home
role=cloudedge
database=cloudedge

as_root=false; [ "$(id -u)" -eq 0 ] && as_root=true

# Where the server's own files (data, socket, log) live: DIR itself, unless DIR sits below a directory the
# postgres system user cannot traverse (root's home, a mktemp -d folder). Then they live in a directory of
# that user, named after DIR, and DIR records where. Decided once, at the first start.
if [ -s "$home_file" ]; then
  server_home=$(cat "$home_file")
elif ! $as_root || runuser -u postgres -- test -x "$dir"; then
  server_home=$dir
else
  server_home=/var/lib/postgresql/cloudedge/$(printf '%s' "$dir" | sha256sum | cut -c1-16)
fi
data=$server_home/data
sockets=$server_home/sock
log=$server_home/postgres.log
# Runs a server tool as the user PostgreSQL accepts: "postgres" when we are root, else ourselves.
as_server_user() {
  if $as_root; then runuser -u postgres -- "$@"; else "$@"; fi
}
give_to_server_user() {
  if $as_root; then chown postgres: "$@"; fi
}

running() {
  [ -f "$data/PG_VERSION" ] && as_server_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

current_port() { cat "$port_file" 2>/dev/null || echo ""; }

print_status() {
  echo "postgres.sh: running: Host=127.0.0.1;Port=$(current_port);Username=$role;Database=$database"
  echo "postgres.sh: password file: $password_file"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
# The server binds with SO_REUSEADDR, so a port still in TIME_WAIT after our own stop is free for it.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

case "$command" in
status)
  if running; then print_status; exit 0; fi
  echo "postgres.sh: not running ($dir)"
  exit 3
  ;;
stop)
  if running; then
    as_server_user "$bin/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null
    echo "postgres.sh: stopped ($dir)"
  else
    echo "postgres.sh: not running ($dir)"
  fi
  exit 0
  ;;
esac

# start
if running; then print_status; exit 0; fi

if [ "$server_home" != "$dir" ]; then
  install -d -m 700 "$server_home"
  give_to_server_user "$server_home"
  [ -s "$home_file" ] || echo "postgres.sh: the postgres system user cannot reach $dir; its server files live in $server_home"
fi
echo "$server_home" > "$home_file"

if [ ! -f "$data/PG_VERSION" ]; then
  rm -rf "$data"
  if [ ! -s "$password_file" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24), end="")' > "$password_file")
  fi
  chmod 600 "$password_file"
  # initdb reads the password from a file the server user owns; the copy is removed right after.
  install -d -m 700 "$data"
  give_to_server_user "$data"
  initdb_password=$(mktemp "$server_home/.initdb.XXXXXX")
  trap 'rm -f "$initdb_password"' EXIT
  cat "$password_file" > "$initdb_password"
  give_to_server_user "$initdb_password"
  (cd "$server_home" && as_server_user "$bin/initdb" -D "$data" -U "$role" --pwfile "$initdb_password" \
    --auth scram-sha-256 --encoding UTF8 --no-locale --no-instructions >/dev/null)
  rm -f "$initdb_password"
  echo "postgres.sh: created a new instance in $data"
fi

install -d -m 700 "$sockets"
give_to_server_user "$sockets"

port=${CLOUDEDGE_PG_PORT:-}
if [ -z "$port" ]; then
  port=$(current_port)
  if [ -z "$port" ] || ! port_is_free "$port"; then port=$(free_port); fi
fi
echo "$port" > "$port_file"

# postgresql.auto.conf is read last, so these settings win over initdb's defaults.
cat > "$data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockets'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
CONF
give_to_server_user "$data/postgresql.auto.conf"
touch "$log"; give_to_server_user "$log"

if ! (cd "$server_home" && as_server_user "$bin/pg_ctl" -D "$data" -l "$log" -w -t 120 start >/dev/null); then
  echo "postgres.sh: PostgreSQL did not start; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi

export PGPASSWORD
PGPASSWORD=$(cat "$password_file")
exists=$("$bin/psql" -h 127.0.0.1 -p "$port" -U "$role" -d postgres -tAX -v ON_ERROR_STOP=1 \
  -c "SELECT 1 FROM pg_database WHERE datname = '$database'")
if [ "$exists" != "1" ]; then
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$role" "$database"
fi
unset PGPASSWORD
print_status
