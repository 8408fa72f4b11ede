# Throwaway PostgreSQL and Redis on free loopback ports, for scripts/test and scripts/bench (sourced, not run).
#   start_throwaway_servers WORK DATABASE [postgres -c settings…]   sets pg_port, redis_port, pg_bin, as_postgres
#   stop_throwaway_servers WORK                                     stops what the first one started under WORK
#   wait_ready URL                                                   waits (up to 60 s) until URL answers 200
# WORK is handed to the postgres user when run as root (initdb refuses root).

# Polls every 10 ms (scripts/bench times starts with it); a request that hangs is given up after 2 s.
wait_ready() {
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
        sleep 0.01
    done
    echo "$1 never became ready" >&2
    return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

pg_bin=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)")
as_postgres=()
if [ "$(id -u)" -eq 0 ]; then as_postgres=(runuser -u postgres --); fi

start_throwaway_servers() {
    local work=$1 database=$2
    shift 2
    local settings="-k $work -c listen_addresses=127.0.0.1 -c max_connections=300"
    for setting in "$@"; do settings+=" -c $setting"; done
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
    pg_port=$(free_port)
    redis_port=$(free_port)
    "${as_postgres[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust --no-sync >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log" >&2; return 1; }
    "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "$settings -p $pg_port" start \
        >/dev/null || { cat "$work/pg.log" >&2; return 1; }
    "${as_postgres[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$database"
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
        --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log" --enable-debug-command local
    for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "Redis did not start" >&2
    return 1
}

stop_throwaway_servers() {
    local work=$1
    if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null || true; fi
    if [ -f "$work/pg/postmaster.pid" ]; then
        "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
}
