#!/usr/bin/env bash
# The quick start: from a fresh Debian machine to a certificate, with no internet CA involved.
#   scripts/demo.sh
# Runs scripts/setup.sh (Debian packages, .venv), starts a throwaway test CA (ca_stub) on loopback
# with its data in a temporary directory, obtains a certificate for demo.example.test with the
# standalone authenticator, shows it (openssl x509, `letsencrypt certificates`), checks its chain
# against the CA's root with openssl, and stops the CA (by pid). Everything it makes lives in the
# temporary directory and is removed at the end (DEMO_KEEP=1 keeps it). Idempotent; exits
# non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

PY=.venv/bin/python
NAME=${DEMO_NAME:-demo.example.test}
EMAIL=admin@example.test
WORK=$(mktemp -d "${TMPDIR:-/tmp}/letsencrypt-demo.XXXXXX")
CA_PID=
NGINX_PID=

cleanup() {
    local rc=$?
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [ -n "$CA_PID" ] && kill -0 "$CA_PID" 2>/dev/null; then
        kill "$CA_PID" 2>/dev/null || true
        wait "$CA_PID" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ] && [ -e "$WORK/ca_stub.log" ]; then
        echo "demo: FAILED (exit $rc); the end of ca_stub's log:" >&2
        tail -n 20 "$WORK/ca_stub.log" >&2 || true
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "demo: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo; echo "==> $*"; }
show() { echo "+ $*"; "$@"; }

# Four free loopback ports: the ACME API, the management API, and where the CA validates http-01
# and the TLS-based challenges.
read -r API_PORT MGMT_PORT HTTP_PORT TLS_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for sock in socks:
    sock.bind(("127.0.0.1", 0))
print(*(sock.getsockname()[1] for sock in socks))
EOF
)

step "starting a throwaway CA: ca_stub on https://127.0.0.1:$API_PORT (every name resolves to 127.0.0.1)"
echo "+ .venv/bin/ca-stub serve --data-dir $WORK/ca --listen 127.0.0.1:$API_PORT" \
     "--management 127.0.0.1:$MGMT_PORT --http-port $HTTP_PORT --tls-port $TLS_PORT --resolve-all 127.0.0.1 &"
.venv/bin/ca-stub serve --data-dir "$WORK/ca" --listen "127.0.0.1:$API_PORT" \
    --management "127.0.0.1:$MGMT_PORT" --http-port "$HTTP_PORT" --tls-port "$TLS_PORT" \
    --resolve-all 127.0.0.1 >"$WORK/ca_stub.log" 2>&1 </dev/null &
CA_PID=$!

DIRECTORY=https://127.0.0.1:$API_PORT/directory
BUNDLE=$WORK/ca/api-root.pem   # trust anchor of the CA's HTTPS API, made by its first start
# The first start runs the key ceremony (a few seconds); wait until the directory answers.
"$PY" - "$DIRECTORY" "$BUNDLE" "$CA_PID" <<'EOF'
import os, sys, time
import requests
url, bundle, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("demo: ca_stub exited during start-up")
    if os.path.exists(bundle):
        try:
            if requests.get(url, verify=bundle, timeout=2).status_code == 200:
                sys.exit(0)
        except requests.RequestException:
            pass
    time.sleep(0.1)
sys.exit(f"demo: ca_stub did not answer {url} within 60 s")
EOF
echo "ca_stub is up (pid $CA_PID); its directory: $DIRECTORY"

COMMON=(--server "$DIRECTORY" --server-ca-bundle "$BUNDLE"
        --config-dir "$WORK/config" --work-dir "$WORK/work" --logs-dir "$WORK/logs")

step "obtaining a certificate for $NAME with the standalone authenticator (http-01 on 127.0.0.1:$HTTP_PORT)"
show .venv/bin/letsencrypt certonly --standalone -d "$NAME" \
    --http-01-port "$HTTP_PORT" --http-01-address 127.0.0.1 \
    -n --agree-tos -m "$EMAIL" "${COMMON[@]}"

LIVE=$WORK/config/live/$NAME
step "the certificate: $LIVE/cert.pem"
show openssl x509 -in "$LIVE/cert.pem" -noout -subject -issuer -dates -ext subjectAltName

step "what letsencrypt knows about it"
show .venv/bin/letsencrypt certificates "${COMMON[@]}"

step "verifying the chain against the CA's root (management API /roots/0)"
"$PY" -c 'import sys, requests; sys.stdout.write(requests.get(sys.argv[1], timeout=10).text)' \
    "http://127.0.0.1:$MGMT_PORT/roots/0" >"$WORK/root.pem"
show openssl verify -CAfile "$WORK/root.pem" -untrusted "$LIVE/chain.pem" "$LIVE/cert.pem"

# --- part two: a throwaway nginx gets a certificate and serves HTTPS, HTTP redirected to it ---------
SITE=www.$NAME
NG=$WORK/nginx
mkdir -p "$NG/conf.d"
cat >"$NG/nginx.conf" <<NGINX_CONF
pid $NG/nginx.pid;
error_log $NG/error.log;
events { worker_connections 64; }
http {
    access_log off;
    default_type text/plain;
    include conf.d/*.conf;
}
NGINX_CONF
cat >"$NG/conf.d/site.conf" <<SITE_CONF
# the site as its owner wrote it: plain HTTP on the port where the CA validates
server {
    listen 127.0.0.1:$HTTP_PORT;
    server_name $SITE;
    location / {
        return 200 "hello from nginx\n";
    }
}
SITE_CONF

step "starting a throwaway nginx serving $SITE on http://127.0.0.1:$HTTP_PORT"
show nginx -t -q -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log"
nginx -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" -g 'daemon off;' >"$NG/nginx.out" 2>&1 </dev/null &
NGINX_PID=$!
"$PY" - "$HTTP_PORT" "$NGINX_PID" <<'WAIT_NGINX'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except ProcessLookupError:
        sys.exit("demo: nginx exited during start-up")
    except OSError:
        time.sleep(0.05)
sys.exit("demo: nginx did not listen")
WAIT_NGINX

step "letsencrypt --nginx: prove control through nginx, install, force HTTPS on 127.0.0.1:$TLS_PORT"
show .venv/bin/letsencrypt --nginx -d "$SITE" --redirect \
    --nginx-server-root "$NG" --http-01-port "$HTTP_PORT" --http-01-address 127.0.0.1 --https-port "$TLS_PORT" \
    -n --agree-tos -m "$EMAIL" "${COMMON[@]}"

step "what nginx serves now"
show curl -sS -o /dev/null -w "http://$SITE:$HTTP_PORT/ -> %{http_code} %{redirect_url}\n" \
    --resolve "$SITE:$HTTP_PORT:127.0.0.1" "http://$SITE:$HTTP_PORT/"
show curl -sS --cacert "$WORK/root.pem" --resolve "$SITE:$TLS_PORT:127.0.0.1" "https://$SITE:$TLS_PORT/"
show curl -sS -L --cacert "$WORK/root.pem" --resolve "$SITE:$HTTP_PORT:127.0.0.1" \
    --resolve "$SITE:$TLS_PORT:127.0.0.1" "http://$SITE:$HTTP_PORT/"
echo "the site file now (letsencrypt changed only what it must):"
cat "$NG/conf.d/site.conf"

echo
echo "demo: done - certificates for $NAME and $SITE from a local test CA, verified up to its root;"
echo "      nginx serves $SITE over HTTPS and redirects HTTP to it."
