#!/usr/bin/env bash
# Installs what the project needs on a Debian machine (as root) and builds .venv. Idempotent:
# a second run only checks that everything is there.
#   scripts/setup.sh           system packages + .venv with the project and its test tools
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    python3 python3-venv python3-dev gcc pkg-config
    openssl ca-certificates curl
    libaugeas0 augeas-lenses libaugeas-dev
    pebble lego
    nginx apache2
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]}; run this script as root (or install them)." >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The distribution's nginx/apache2 services must not grab ports 80/443 on install: tests start
    # their own servers. policy-rc.d 101 tells invoke-rc.d not to start services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    rm -f .venv/.installed-*; touch "$stamp"
fi
# certbot from PyPI in a virtualenv of its own (not in .venv: it must not see or pin our packages),
# for tests/integration/test_ca_stub_interop.py, which runs .venv-certbot/bin/certbot against ca_stub,
# and benchmarks/nginx_parse.py and apache_vhosts.py, which run certbot's nginx and apache parsers against ours.
CERTBOT_SPEC='certbot>=4,<6'
CERTBOT_NGINX_SPEC='certbot-nginx>=4,<6'
CERTBOT_APACHE_SPEC='certbot-apache>=4,<6'  # needs python-augeas, hence libaugeas0 above
if [ ! -x .venv-certbot/bin/python ]; then
    "$PY" -m venv .venv-certbot
fi
certbot_stamp=.venv-certbot/.installed-$(printf '%s %s %s' "$CERTBOT_SPEC" "$CERTBOT_NGINX_SPEC" "$CERTBOT_APACHE_SPEC" | sha256sum | cut -c1-16)
if [ ! -e "$certbot_stamp" ]; then
    .venv-certbot/bin/python -m pip install -q --upgrade pip
    .venv-certbot/bin/python -m pip install -q "$CERTBOT_SPEC" "$CERTBOT_NGINX_SPEC" "$CERTBOT_APACHE_SPEC"
    rm -f .venv-certbot/.installed-*; touch "$certbot_stamp"
fi
echo "setup: ready (.venv/bin/python, $(.venv/bin/python --version); $(.venv-certbot/bin/certbot --version 2>&1))"
