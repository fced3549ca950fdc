#!/usr/bin/env bash
# Installs the servers the test suite starts by itself, when they are missing: PostgreSQL (tests/servers.py
# runs initdb and pg_ctl into a temporary directory on a free loopback port; nothing is started here).
# Idempotent: returns at once when initdb is on PATH or in /usr/lib/postgresql/*/bin. On a fresh Debian
# machine it installs Debian's `postgresql` package with apt-get (needs root, or sudo), without creating or
# starting the package's own cluster.
set -euo pipefail

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_initdb; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_servers: PostgreSQL (initdb) is missing and there is no apt-get to install it;" \
         "install the PostgreSQL server, or set SMSC_TEST_POSTGRES_URL to a server of yours" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "ensure_servers: PostgreSQL (initdb) is missing; run as root (or with sudo) to install it:" \
             "apt-get install postgresql" >&2
        exit 1
    fi
fi

echo "ensure_servers: installing PostgreSQL (Debian package postgresql) for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests make their own throw-away cluster: the package's default one would only take port 5432 and disk.
"${SUDO[@]}" mkdir -p /etc/postgresql-common
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    echo "create_main_cluster = false" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
log=$(mktemp)
wait_lock=(-o DPkg::Lock::Timeout=300)  # another apt-get (e.g. a machine's first-boot upgrade) may hold it
if ! { "${SUDO[@]}" apt-get "${wait_lock[@]}" update -qq &&
       "${SUDO[@]}" apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "ensure_servers: apt-get could not install postgresql" >&2
    exit 1
fi
rm -f "$log"

if ! have_initdb; then
    echo "ensure_servers: postgresql is installed but no initdb was found in /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
echo "ensure_servers: PostgreSQL $(ls /usr/lib/postgresql | sort -n | tail -1) installed" >&2
