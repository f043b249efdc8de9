# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts
# Shared by the gateway scripts of benches/ (gateway_compare.sh, gateway_idle_memory.sh,
# gateway_upgrade_load.sh): one `sockway echo` backend, `sockway gateway` and Debian's nginx
# set up for WebSocket proxying in front of it, each on free loopback ports. Source it after
# lib.sh, with WORK set to the script's work directory; it defines functions and variables
# only.
#
# Settings read by the functions (the scripts set them before calling):
#   PROXY_THREADS   the gateway's --worker-threads = nginx's worker_processes (default 1)
#   PROXY_TLS       1: both proxies also get a TLS front (the same self-signed certificate,
#                   lib.sh's tls_dir) besides the plain one (default 0)
#   GATEWAY_LIMITS  extra members of the gateway's `limits` object, as JSON text without
#                   braces (e.g. `"maxConnections": 20000`; default none)
#   NGINX_CONNECTIONS nginx's worker_connections (default 4096)
#   BACKEND_BIN     another echo backend, started as `BACKEND_BIN 0 2` (port 0, 2 threads),
#                   for generators that ask for `/` rather than `/ws` (uWebSockets'
#                   load_test): the bench peers' `sockway-echo` answers an upgrade on any
#                   path. Its `GET /` answers 404, which the gateway's probe then accepts.

# lib.sh gives SOCKWAY (the build in CARGO_TARGET_DIR when set), free_port, stop_pid,
# wait_for_line, tls_dir and machine_line.
PROXY_THREADS="${PROXY_THREADS:-1}"
PROXY_TLS="${PROXY_TLS:-0}"
GATEWAY_LIMITS="${GATEWAY_LIMITS:-}"
NGINX_CONNECTIONS="${NGINX_CONNECTIONS:-4096}"
BACKEND_BIN="${BACKEND_BIN:-}"
BACKEND_PID=""
GATEWAY_PID=""
NGINX_PID=""

# Installs Debian's nginx with apt-get when it is not there (its service is not started:
# the scripts run their own instance).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 && return 0
  [[ -x /usr/sbin/nginx ]] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "nginx is missing and apt-get is not available; install nginx by hand" >&2
    return 1
  fi
  local sudo=()
  [[ "$(id -u)" != 0 ]] && sudo=(sudo)
  echo "installing nginx (apt-get)" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
}

nginx_bin() {
  command -v nginx 2>/dev/null || echo /usr/sbin/nginx
}

stop_all() {
  stop_pid "$NGINX_PID"
  stop_pid "$GATEWAY_PID"
  stop_pid "$BACKEND_PID"
  NGINX_PID="" GATEWAY_PID="" BACKEND_PID=""
}

# Starts the `sockway echo` backend; sets BACKEND_PID and BACKEND_PORT.
start_backend() {
  local log="$WORK/backend.log"
  : >"$log"
  if [[ -n "$BACKEND_BIN" ]]; then
    "$BACKEND_BIN" 0 2 >"$log" 2>&1 &
    BACKEND_PID=$!
    wait_for_line "$log" "listening on" "$BACKEND_PID"
    BACKEND_PORT="$(grep -m1 "listening on" "$log" | sed -E 's/.*listening on [^ ]*:([0-9]+).*/\1/')"
    return
  fi
  RUST_LOG=warn,sockway::echo=info "$SOCKWAY" echo --listen 127.0.0.1:0 >"$log" 2>&1 &
  BACKEND_PID=$!
  wait_for_line "$log" "echo server listening" "$BACKEND_PID"
  BACKEND_PORT="$(grep -m1 "echo server listening" "$log" | sed -E 's|.*page=http://127\.0\.0\.1:([0-9]+)/.*|\1|')"
}

# Writes the gateway's configuration to file $1: an Http listener on GATEWAY_PORT (and, with
# PROXY_TLS, an Https one on GATEWAY_TLS_PORT), one pool with the echo, requestTimeout
# 3600 s, relayBufferBytes 16384, an HTTP probe every 10 s, plus GATEWAY_LIMITS.
write_gateway_config() {
  local config="$1" tls listeners rules
  local match=""
  [[ -n "$BACKEND_BIN" ]] && match=', "match": {"statusCodes": ["200-499"]}'
  listeners="{\"name\": \"web\", \"protocol\": \"Http\", \"port\": $GATEWAY_PORT, \"bindAddress\": \"127.0.0.1\"}"
  rules="{\"name\": \"all\", \"ruleType\": \"Basic\", \"httpListener\": \"web\", \"backendAddressPool\": \"echo\", \"backendHttpSettings\": \"plain\"}"
  if ((PROXY_TLS)); then
    tls="$(tls_dir)"
    listeners+=", {\"name\": \"webtls\", \"protocol\": \"Https\", \"port\": $GATEWAY_TLS_PORT, \"bindAddress\": \"127.0.0.1\", \"certificateFile\": \"$tls/cert.pem\", \"keyFile\": \"$tls/key.pem\"}"
    rules+=", {\"name\": \"alltls\", \"ruleType\": \"Basic\", \"httpListener\": \"webtls\", \"backendAddressPool\": \"echo\", \"backendHttpSettings\": \"plain\"}"
  fi
  cat >"$config" <<EOF
{
  "httpListeners": [$listeners],
  "backendAddressPools": [{"name": "echo", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": $BACKEND_PORT}]}],
  "backendHttpSettingsCollection": [{"name": "plain", "port": $BACKEND_PORT, "protocol": "Http",
    "requestTimeout": 3600, "probe": "page"}],
  "probes": [{"name": "page", "path": "/", "interval": 10, "timeout": 5$match}],
  "requestRoutingRules": [$rules],
  "limits": {"relayBufferBytes": 16384${GATEWAY_LIMITS:+, $GATEWAY_LIMITS}}
}
EOF
}

# Starts the gateway (under the wrapper command in $1, if any, e.g. valgrind) on new free
# ports; sets GATEWAY_PID, GATEWAY_PORT (and GATEWAY_TLS_PORT) once its backend is healthy.
start_gateway() {
  local wrapper="${1:-}" log="$WORK/gateway.log" config="$WORK/gateway.json"
  read -r GATEWAY_PORT GATEWAY_TLS_PORT < <(free_ports 2)
  write_gateway_config "$config"
  : >"$log"
  # shellcheck disable=SC2086 # the wrapper is a word list on purpose
  RUST_LOG=warn,sockway_gateway::probe=info \
    $wrapper "${GATEWAY_BIN:-$SOCKWAY}" --worker-threads "$PROXY_THREADS" gateway --config "$config" >"$log" 2>&1 &
  GATEWAY_PID=$!
  wait_for_line "$log" "backend is healthy" "$GATEWAY_PID"
}

# Starts nginx (under the wrapper command in $1, if any: then as one process, without a
# master); sets NGINX_PID, NGINX_WORKER (the process that relays), NGINX_PORT and, with
# PROXY_TLS, NGINX_TLS_PORT (same certificate as the gateway's, TLS 1.2 and 1.3).
start_nginx() {
  local wrapper="${1:-}" nginx_dir="$WORK/nginx" master=on tls_lines=""
  local conf="$nginx_dir/nginx.conf" log="$nginx_dir/error.log"
  [[ -n "$wrapper" ]] && master=off
  read -r NGINX_PORT NGINX_TLS_PORT < <(free_ports 2)
  if ((PROXY_TLS)); then
    local tls
    tls="$(tls_dir)"
    tls_lines="listen 127.0.0.1:$NGINX_TLS_PORT ssl;
        ssl_certificate $tls/cert.pem;
        ssl_certificate_key $tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"
  fi
  rm -rf "$nginx_dir"
  mkdir -p "$nginx_dir/temp"
  # Root-started workers run as nobody: let them use the temp directory.
  chmod 777 "$nginx_dir/temp"
  cat >"$conf" <<EOF
daemon off;
master_process $master;
worker_processes $PROXY_THREADS;
worker_rlimit_nofile $(ulimit -n);
pid $nginx_dir/nginx.pid;
error_log $log warn;
events {
    worker_connections $NGINX_CONNECTIONS;
}
http {
    access_log off;
    client_body_temp_path $nginx_dir/temp/body;
    proxy_temp_path $nginx_dir/temp/proxy;
    fastcgi_temp_path $nginx_dir/temp/fastcgi;
    uwsgi_temp_path $nginx_dir/temp/uwsgi;
    scgi_temp_path $nginx_dir/temp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        $tls_lines
        location / {
            proxy_pass http://127.0.0.1:$BACKEND_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
            proxy_buffer_size 16k;
            proxy_buffers 4 16k;
        }
    }
}
EOF
  : >"$log"
  # shellcheck disable=SC2086 # the wrapper is a word list on purpose
  $wrapper "$(nginx_bin)" -p "$nginx_dir" -c "$conf" -e "$log" >"$WORK/nginx.out" 2>&1 &
  NGINX_PID=$!
  # Ready once it accepts connections and the process that relays is known (the master's
  # one worker; under a wrapper, nginx itself).
  local waited=0
  NGINX_WORKER=""
  until [[ -n "$NGINX_WORKER" ]] &&
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $NGINX_PORT), 1).close()" 2>/dev/null; do
    if ! kill -0 "$NGINX_PID" 2>/dev/null || ((waited > 600)); then
      echo "nginx did not start:" >&2
      cat "$log" "$WORK/nginx.out" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
    if [[ -n "$wrapper" ]]; then
      NGINX_WORKER="$NGINX_PID"
    else
      NGINX_WORKER="$(ps -o pid= --ppid "$NGINX_PID" | head -1 | tr -d ' ')"
    fi
  done
}

# Sets URL (and URL_ARGS, the generator's extra flags) for target $1, and PID_ARGS (the
# process whose CPU is read: the backend for direct, the proxy otherwise; nothing for nginx
# with more than one worker).
target_url() {
  URL_ARGS=()
  PID_ARGS=()
  case "$1" in
    direct) URL="ws://127.0.0.1:$BACKEND_PORT/ws"; PID_ARGS=(--server-pid "$BACKEND_PID") ;;
    gateway) URL="ws://127.0.0.1:$GATEWAY_PORT/ws"; PID_ARGS=(--server-pid "$GATEWAY_PID") ;;
    gateway-uring) URL="ws://127.0.0.1:$URING_PORT/ws"; PID_ARGS=(--server-pid "$URING_PID") ;;
    gateway-tls)
      URL="wss://127.0.0.1:$GATEWAY_TLS_PORT/ws"
      URL_ARGS=(--insecure)
      PID_ARGS=(--server-pid "$GATEWAY_PID")
      ;;
    gateway-uring-tls)
      URL="wss://127.0.0.1:$URING_TLS_PORT/ws"
      URL_ARGS=(--insecure)
      PID_ARGS=(--server-pid "$URING_PID")
      ;;
    nginx | nginx-tls)
      URL="ws://127.0.0.1:$NGINX_PORT/ws"
      if [[ "$1" == nginx-tls ]]; then
        URL="wss://127.0.0.1:$NGINX_TLS_PORT/ws"
        URL_ARGS=(--insecure)
      fi
      ((PROXY_THREADS == 1)) && PID_ARGS=(--server-pid "$NGINX_WORKER")
      ;;
  esac
}

# "sockway x.y, nginx version" for the reports.
proxy_versions() {
  echo "$("$SOCKWAY" --version), nginx $("$(nginx_bin)" -v 2>&1 | sed 's|nginx version: ||')"
}
