#!/usr/bin/env bash
# Set-up behind `make run` and `make test`: install what is missing, make sure PostGIS runs,
# create role and database, migrate, load the sample province, then serve or test.
#
#   scripts/setup.sh run    # -> serves http://127.0.0.1:8000
#   scripts/setup.sh test   # -> separate test database, then ruff, mypy, lint-imports + the whole pytest suite
#
# GEOIOC_DATABASE_URL points everything at another PostGIS; then no system package is installed
# and no server is started (the test database is GEOIOC_TEST_DATABASE_URL, or the same URL with
# "_test" appended to the database name). Likewise GEOIOC_MQTT_URL for the MQTT broker: given,
# it is used as it is; otherwise the broker on 127.0.0.1:1883 is used when one answers, else
# Debian's mosquitto is installed if missing and started with a configuration of ours under
# .geoioc/mosquitto/ (persistent sessions kept on disk, queues long enough for a worker's restart).
# In run mode the sensor simulator (`geoioc simulate`) publishes the sample's readings beside the
# server, so the center is live on first start; GEOIOC_SIMULATE=0 leaves it out. `make test`
# never starts it.
set -euo pipefail

MODE=${1:-run}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
PG_PORT=5432
DB_PACKAGES_NEEDED=()

say() { printf '\033[1;34m[geoioc]\033[0m %s\n' "$*"; }
die() { printf 'geoioc: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "cannot install $* on this system (not Debian-like): install them, or set GEOIOC_DATABASE_URL to an existing PostGIS"
    as_root true 2>/dev/null ||
        die "need root or passwordless sudo to install $*: install them, or set GEOIOC_DATABASE_URL to an existing PostGIS"
    say "installing $* (apt-get)"
    if [ ! -f "$ROOT/.geoioc/apt-updated" ]; then
        as_root apt-get update -q >/dev/null || die "apt-get update failed"
        mkdir -p "$ROOT/.geoioc" && touch "$ROOT/.geoioc/apt-updated"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >/dev/null || die "apt-get install $* failed"
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# --- Python and the virtual environment -------------------------------------------------
ensure_python() {
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "python3 (3.11 or newer) is required: install it and retry"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "Python 3.11 or newer is required (found $("$py" --version 2>&1)); set PYTHON=/path/to/python3.11"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
            local v; v=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt_install "python$v-venv"
        fi
        say "creating virtual environment .venv"
        "$py" -m venv "$VENV"
    fi
    # Re-install only when the project's dependency list changed: a second `make run` is fast.
    local stamp="$VENV/.geoioc-installed" want
    want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing Python packages into .venv"
        "$VENV/bin/pip" install -q --upgrade pip >/dev/null
        "$VENV/bin/pip" install -q -e "$ROOT[test]" || die "pip install failed (see above)"
        echo "$want" > "$stamp"
    fi
}

# --- PostgreSQL + PostGIS ----------------------------------------------------------------
SUPER_PSQL=()
find_superuser() {
    # Trust on loopback (CI machines), then the postgres OS user over the socket (fresh Debian).
    if psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
        SUPER_PSQL=(psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres)
    elif [ "$(id -u)" = 0 ] && command -v runuser >/dev/null &&
        runuser -u postgres -- psql -p "$PG_PORT" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
        SUPER_PSQL=(runuser -u postgres -- psql -p "$PG_PORT")
    elif command -v sudo >/dev/null && sudo -n -u postgres psql -p "$PG_PORT" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
        SUPER_PSQL=(sudo -n -u postgres psql -p "$PG_PORT")
    else
        die "cannot connect to PostgreSQL on 127.0.0.1:$PG_PORT as superuser 'postgres': set GEOIOC_DATABASE_URL to a PostGIS database you own"
    fi
}
spsql() { PGOPTIONS="-c client_min_messages=warning" "${SUPER_PSQL[@]}" -v ON_ERROR_STOP=1 -qtA "$@"; }

server_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

ensure_postgres() {
    command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 || apt_install postgresql
    if ! server_ready; then
        if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
            apt_install postgresql
        fi
        local ver; ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
        if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
            say "creating PostgreSQL $ver cluster"
            as_root pg_createcluster "$ver" main -p "$PG_PORT" >/dev/null || die "pg_createcluster failed"
        fi
        say "starting PostgreSQL $ver"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start ||
            die "could not start PostgreSQL $ver (pg_ctlcluster $ver main start)"
        for _ in $(seq 1 30); do server_ready && break; sleep 1; done
        server_ready || die "PostgreSQL did not come up on 127.0.0.1:$PG_PORT"
    fi
    find_superuser
    local major; major=$(spsql -d postgres -c 'show server_version_num' | cut -c1-2)
    if [ -z "$(spsql -d postgres -c "select 1 from pg_available_extensions where name = 'postgis'")" ]; then
        apt_install "postgresql-$major-postgis-3"
    fi
}

# --- MQTT broker (Mosquitto) --------------------------------------------------------------
MQTT_PORT=1883
broker_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null; }

ensure_mosquitto() {
    if broker_ready; then
        say "using the MQTT broker on 127.0.0.1:$MQTT_PORT"
        return
    fi
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
    local bin; bin=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
    local dir="$ROOT/.geoioc/mosquitto"
    mkdir -p "$dir/data"
    # Our own broker: loopback only; sessions and queued messages survive a broker restart
    # (persistence); a worker away for a restart finds what arrived meanwhile (the packaged
    # default keeps only 1000 queued messages per session, seconds at the ingest's rate).
    cat > "$dir/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/data/
autosave_interval 60
max_queued_messages 1000000
max_inflight_messages 0
log_dest file $dir/mosquitto.log
pid_file $dir/mosquitto.pid
CONF
    # The packaged broker drops to the user 'mosquitto' when started as root: it must own the folder.
    if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then chown -R mosquitto "$dir"; fi
    say "starting Mosquitto on 127.0.0.1:$MQTT_PORT (.geoioc/mosquitto/)"
    "$bin" -d -c "$dir/mosquitto.conf" || die "could not start mosquitto (see $dir/mosquitto.log)"
    for _ in $(seq 1 20); do broker_ready && break; sleep 0.5; done
    broker_ready || die "Mosquitto did not come up on 127.0.0.1:$MQTT_PORT (see $dir/mosquitto.log)"
}

ensure_gdal_tools() {
    command -v ogrinfo >/dev/null 2>&1 || apt_install gdal-bin
}

# What the tests drive besides the database: Debian's Chromium (Playwright uses it, never a
# downloaded browser), GDAL's command-line tools, and DejaVu fonts (Vietnamese in PDF extracts).
ensure_test_tools() {
    local missing=()
    command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    [ ${#missing[@]} -eq 0 ] && return
    # With GEOIOC_DATABASE_URL nothing is installed: say what the tests need instead.
    [ -z "${GEOIOC_DATABASE_URL_GIVEN:-}" ] ||
        die "the tests need ${missing[*]} (Debian packages): install them, or unset GEOIOC_DATABASE_URL"
    apt_install "${missing[@]}"
}

# create_database NAME: role geoioc owns it; postgis etc. created by the superuser.
create_database() {
    local db=$1
    spsql -d postgres -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc') THEN
            CREATE ROLE geoioc LOGIN PASSWORD 'geoioc';
        END IF;
        -- The application runs as geoioc_app (SET ROLE): no UPDATE/DELETE on the audit log.
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            CREATE ROLE geoioc_app NOLOGIN;
        END IF; END \$\$;
        GRANT geoioc_app TO geoioc;"
    if [ -z "$(spsql -d postgres -c "select 1 from pg_database where datname = '$db'")" ]; then
        say "creating database $db"
        spsql -d postgres -c "CREATE DATABASE $db OWNER geoioc"
    fi
    spsql -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis;
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        CREATE EXTENSION IF NOT EXISTS unaccent;
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        GRANT SELECT, INSERT, DELETE ON spatial_ref_sys TO geoioc;"
}

local_url() { echo "postgresql://geoioc:geoioc@127.0.0.1:$PG_PORT/$1"; }

# with_db_suffix URL SUFFIX: the same server and credentials, database name + suffix.
with_db_suffix() {
    "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit(u._replace(path=u.path.rstrip("/") + sys.argv[2])))
PY
}

# --- main --------------------------------------------------------------------------------
ensure_python
cd "$ROOT"

if [ -n "${GEOIOC_DATABASE_URL:-}" ]; then
    GEOIOC_DATABASE_URL_GIVEN=1
    say "using GEOIOC_DATABASE_URL (nothing is installed or started)"
    if [ "$MODE" = test ]; then
        given=$GEOIOC_DATABASE_URL
        export GEOIOC_DATABASE_URL=${GEOIOC_TEST_DATABASE_URL:-$(with_db_suffix "$given" _test)}
        export GEOIOC_EMPTY_DATABASE_URL=${GEOIOC_EMPTY_DATABASE_URL:-$(with_db_suffix "$given" _empty)}
    fi
else
    ensure_postgres
    ensure_gdal_tools
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_install fonts-dejavu-core
    if [ "$MODE" = test ]; then
        create_database geoioc_test
        create_database geoioc_test_empty
        export GEOIOC_DATABASE_URL=$(local_url geoioc_test)
        export GEOIOC_EMPTY_DATABASE_URL=$(local_url geoioc_test_empty)
    else
        create_database geoioc
        export GEOIOC_DATABASE_URL=$(local_url geoioc)
    fi
fi

if [ -n "${GEOIOC_MQTT_URL:-}" ]; then
    say "using GEOIOC_MQTT_URL (no broker is installed or started)"
else
    ensure_mosquitto
fi

GEOIOC="$VENV/bin/geoioc"
if [ "$MODE" = test ]; then
    ensure_test_tools
    # A fresh schema and sample every run: tests never see data from an older generator, and
    # the downgrade/upgrade round trip runs on a real database first.
    "$GEOIOC" db reset --yes
    "$GEOIOC" sample load
else
    "$GEOIOC" db migrate
    "$GEOIOC" sample load --if-empty
fi

case "$MODE" in
prepare)
    ;;
run)
    # The simulator in the background at a gentle pace: the last six hours back-filled at 200
    # observations a second once the server's ingest worker listens, then one reading of every
    # sample datastream a minute. The server takes this shell's place (exec: Ctrl+C and signals
    # reach it as before); the simulator, its child then, ends within a second of it.
    if [ "${GEOIOC_SIMULATE:-1}" != 0 ]; then
        mkdir -p "$ROOT/.geoioc"
        say "simulating the sample's sensors (log .geoioc/simulate.log; GEOIOC_SIMULATE=0 turns it off)"
        GEOIOC_SIMULATE_WITH_PARENT=1 "$GEOIOC" simulate --start -6h --rate 200 \
            --wait-for-ingest 120 --quiet >"$ROOT/.geoioc/simulate.log" 2>&1 &
    fi
    exec "$GEOIOC" serve
    ;;
test)
    say "ruff"
    "$VENV/bin/ruff" check "$ROOT" || exit 1
    # Both read their configuration from pyproject.toml in the current directory.
    say "mypy"
    (cd "$ROOT" && "$VENV/bin/mypy") || exit 1
    say "lint-imports (package order, no cycles)"
    (cd "$ROOT" && "$VENV/bin/lint-imports") || exit 1
    say "pytest"
    set +e
    "$VENV/bin/pytest"  # extra options: PYTEST_ADDOPTS
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
    exit "$rc"
    ;;
*)
    die "unknown mode $MODE (use run or test)"
    ;;
esac
