#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1, starting them when installed but stopped. Without a
# PostgreSQL server here the tests use the embedded one (config.database), so that is not a failure.
set -u
fail=0

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ls /etc/postgresql >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null; then
        echo "Starting PostgreSQL..."
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        echo "No PostgreSQL on 127.0.0.1:5432: the tests use the embedded one (var/postgres/)." >&2
        echo "  TEST_DATABASE_URL names another server whose user may CREATE DATABASE." >&2
    fi
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if command -v redis-server >/dev/null; then
        echo "Starting Redis..."
        mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
        for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.5; done
    fi
    if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        echo "Redis is not reachable on 127.0.0.1:6379 and is not installed here." >&2
        echo "  Debian/Ubuntu: apt-get install redis-server, or set TEST_CELERY_BROKER_URL." >&2
        fail=1
    fi
fi
exit $fail
