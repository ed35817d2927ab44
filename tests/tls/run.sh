#!/usr/bin/env bash
# TLS the way boards deploy it: Debian's nginx terminates TLS (a self-signed certificate made
# here) and proxies to the example server; a chat over wss:// goes through it. The client is
# Python's `websockets` (Debian: python3-websockets), an implementation independent of ours.
#   bash tests/tls/run.sh        (make tls)       needs: nginx, openssl, python3-websockets
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in nginx openssl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "tls: $tool is missing (apt-get install -y nginx openssl python3-websockets)" >&2; exit 1; }
done
[ -x ./chat ] || make chat >/dev/null

work=$(mktemp -d)
chat_pid="" nginx_pid=""
cleanup() {
    [ -n "$chat_pid" ] && kill "$chat_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# the chat server, on loopback only: nginx is the only way in
./chat -p 0 -b 127.0.0.1 -v -t 127.0.0.1 >"$work/chat.out" 2>"$work/chat.err" &
chat_pid=$!
for _ in $(seq 100); do grep -q '^Listening at' "$work/chat.out" 2>/dev/null && break; sleep 0.05; done
chat_port=$(sed -n 's/^Listening at http:\/\/.*:\([0-9]*\)$/\1/p' "$work/chat.out")
[ -n "$chat_port" ] || { echo "tls: the chat server did not start" >&2; exit 1; }

# a free port, found by binding to port 0
tls_port=$(/usr/bin/python3 -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
# The same configuration as in README.md's deployment section, with test paths.
cat >"$work/nginx.conf" <<CONF
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate     $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        location / {
            proxy_pass http://127.0.0.1:$chat_port;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_read_timeout 1h;
        }
    }
    map \$http_upgrade \$connection_upgrade { default upgrade; "" close; }
}
CONF
nginx -t -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 || { nginx -t -c "$work/nginx.conf" -p "$work"; exit 1; }
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.05; done

status=0
/usr/bin/python3 tests/tls/client.py "$tls_port" "$work/chat.err" || status=1
if [ $status != 0 ]; then
    echo "--- chat stderr"; tail -20 "$work/chat.err"; echo "--- nginx"; tail -20 "$work/nginx.err" || true
fi
exit $status
