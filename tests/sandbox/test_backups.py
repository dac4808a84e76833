"""Backups that prove themselves, on the sandbox's storage and backup servers: WAL archived as it is
written, base backups, dumps and Redis snapshots shipped by their jobs, restore drills, a
point-in-time restore, and what survives a SIGKILL of PostgreSQL and of Redis, or an unreachable
backup server."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from codeb_infra.sandbox import SandboxInfo
from codeb_infra.sandbox.engine import connect
from codeb_infra.sandbox.model import container_name
from tests.sandbox.conftest import Bootstrapped
from tests.sandbox.data_support import must, redis_admin, sql, storage_status, wait_for
from tests.sandbox.test_e2e import codeb, ok, pyinfra
from tests.support.sandbox_ssh import ssh

pytestmark = pytest.mark.sandbox

PROJECT = "vault"
SEGMENT = 16 * 1024 * 1024
WAL_NAME = re.compile(r"^[0-9A-F]{24}$")


@pytest.fixture(scope="module")
def backed_up(bootstrapped: Bootstrapped) -> SandboxInfo:
    info = bootstrapped.info
    ok(codeb(info, "provision", PROJECT))
    sql(
        info,
        PROJECT,
        "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());"
        "INSERT INTO orders SELECT g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;"
        # exactly 1000 on a reused sandbox too: rows other runs added go
        "DELETE FROM orders WHERE id > 1000;",
    )
    redis_admin(info, "SET", f"{PROJECT}:seed", "1")
    started = time.monotonic()
    out = ok(codeb(info, "backup", "now"))
    print(f"\nbase backup + dumps + Redis snapshot: {time.monotonic() - started:.1f}s\n{out}")
    return info


def _background(info: SandboxInfo, unit: str, script: str) -> None:
    """A bounded writer loop on the storage server, as a transient unit (it ends by itself)."""
    must(ssh(info, "storage", f"cat > /tmp/{unit}.sh", stdin=script))
    must(
        ssh(
            info,
            "storage",
            f"systemctl stop {unit} 2>/dev/null; systemd-run --quiet --collect --unit {unit} "
            f"--property=RuntimeMaxSec=600 bash /tmp/{unit}.sh",
        )
    )


def _start_after_kill(info: SandboxInfo, unit: str) -> None:
    """Start a unit whose processes were SIGKILLed. On a cgroup-v1 host the sandbox's systemd gets
    no notice that the unit's cgroup emptied and waits out TimeoutStopSec (1 h for PostgreSQL);
    re-executing systemd makes it look again. Servers on cgroup v2 do not need this."""
    state = ssh(info, "storage", f"systemctl is-active {unit}").stdout.strip()
    if state == "deactivating":
        must(ssh(info, "storage", "systemctl daemon-reexec"))
    must(ssh(info, "storage", f"systemctl reset-failed {unit} 2>/dev/null; systemctl start {unit}"), f"start {unit}")


def _pitr(info: SandboxInfo, *args: str) -> dict:
    return json.loads(ok(codeb(info, "backup", "restore-pitr", *args)))


def _scratch_sql(info: SandboxInfo, restored: dict, statement: str) -> str:
    command = (
        f"runuser -u codeb-backup -- psql -X -q -tA -h {restored['socket_dir']} -p {restored['port']} "
        f"-U postgres -d {restored['database']}"
    )
    return must(ssh(info, "backup", command, stdin=statement)).strip()


@contextmanager
def restored(info: SandboxInfo, *args: str) -> Iterator[dict]:
    found = _pitr(info, *args)
    try:
        yield found
    finally:
        ok(codeb(info, "backup", "restore-pitr", "--drop", found["name"]))


def _archived(info: SandboxInfo) -> list[str]:
    names = must(ssh(info, "backup", "ls /srv/backup/wal")).split()
    return sorted(n for n in names if WAL_NAME.match(n))


def _segment_number(name: str) -> int:
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def test_status_is_green_after_backups_and_a_drill(backed_up: SandboxInfo) -> None:
    info = backed_up
    verified = codeb(info, "backup", "verify", "--json")
    assert verified.returncode == 0, verified.stdout[-4000:]
    record = json.loads(verified.stdout[verified.stdout.index("{") :])
    assert record["ok"] and record["databases"][PROJECT]["canary_ok"]
    assert record["databases"][PROJECT]["tables"]["public.orders"] == 1000
    assert (
        record["dumps"][PROJECT]["canary_ok"]
        and record["redis"]["rdb"]["canary_ok"]
        and record["redis"]["aof"]["canary_ok"]
    )
    print(
        f"\nrestore drill: recovery point {record['recovery_point_seconds']}s, recovery time {record['recovery_time_seconds']}s"
    )
    status = codeb(info, "backup", "status")
    print(status.stdout)
    assert status.returncode == 0, status.stdout
    assert "FAIL" not in status.stdout and "dump vault" in status.stdout and "restore drill" in status.stdout
    history = must(ssh(info, "backup", "tail -n 1 /srv/backup/drills/history.jsonl"))
    assert json.loads(history)["ok"] is True


def test_the_drill_deploy_script_records_a_passed_drill(backed_up: SandboxInfo) -> None:
    before = int(must(ssh(backed_up, "backup", "wc -l < /srv/backup/drills/history.jsonl")).strip() or 0)
    ok(pyinfra(backed_up, "restore_drill"))
    lines = must(ssh(backed_up, "backup", "cat /srv/backup/drills/history.jsonl")).strip().splitlines()
    assert len(lines) == before + 1 and json.loads(lines[-1])["ok"] is True


def test_timers_are_scheduled(backed_up: SandboxInfo) -> None:
    storage = must(
        ssh(
            backed_up,
            "storage",
            "systemctl is-enabled codeb-pg-basebackup.timer codeb-pg-dump.timer codeb-redis-snapshot.timer",
        )
    )
    backup = must(ssh(backed_up, "backup", "systemctl is-enabled codeb-backup-prune.timer codeb-restore-drill.timer"))
    assert storage.split() == ["enabled"] * 3 and backup.split() == ["enabled"] * 2
    calendar = must(ssh(backed_up, "storage", "systemctl show -p TimersCalendar codeb-pg-dump.timer"))
    assert "03:00:00" in calendar


def test_point_in_time_restore_stops_at_the_given_time(backed_up: SandboxInfo) -> None:
    info = backed_up
    sql(
        info,
        PROJECT,
        "CREATE TABLE IF NOT EXISTS events (name text PRIMARY KEY, at timestamptz DEFAULT clock_timestamp());"
        "DELETE FROM events; INSERT INTO events (name) VALUES ('before');",
    )
    time.sleep(2)
    target = datetime.now(UTC)
    time.sleep(2)
    # The segment that holds 'after', named before the switch: after it, pg_current_wal_lsn() is in
    # the next segment as soon as anything else writes, which would wait for another segment.
    wanted = sql(
        info, PROJECT, "INSERT INTO events (name) VALUES ('after'); SELECT pg_walfile_name(pg_current_wal_insert_lsn())"
    )
    sql(info, "postgres", "SELECT pg_switch_wal();")
    wait_for(
        "the segment holding 'after' to be archived", lambda: any(n >= wanted for n in _archived(info)), timeout=90
    )
    with restored(info, PROJECT, "--to", target.isoformat()) as found:
        names = _scratch_sql(info, found, "SELECT string_agg(name, ',' ORDER BY name) FROM events")
        assert names == "before"
        assert _scratch_sql(info, found, "SELECT count(*) FROM orders") == "1000"
    live = sql(info, PROJECT, "SELECT string_agg(name, ',' ORDER BY name) FROM events")
    assert live == "after,before", "the live database is untouched"


def test_postgres_killed_mid_stream_loses_nothing_archived(backed_up: SandboxInfo) -> None:
    info = backed_up
    sql(info, PROJECT, "DROP TABLE IF EXISTS stream; CREATE TABLE stream (i int PRIMARY KEY, at timestamptz NOT NULL);")
    # Each committed row is printed with the WAL insert position right after its commit: a row
    # whose position lies within the archived WAL has its commit record there.
    writer = (
        '(for i in $(seq 1 20000); do echo "INSERT INTO stream VALUES ($i, clock_timestamp()) RETURNING i; '
        "SELECT 'lsn ' || pg_current_wal_insert_lsn();\"; "
        "sleep 0.01; done) | runuser -u postgres -- psql -X -q -tA -d vault > /tmp/acked.txt 2>/dev/null\n"
    )
    _background(info, "codeb-test-pg-writer", writer)
    time.sleep(25)  # a few archive_timeout periods (10 s in the sandbox)
    killed = must(
        ssh(info, "storage", "date -u +%s.%N; pkill -KILL -x postgres; sleep 1; pgrep -x postgres || echo gone")
    ).split()
    assert killed[-1] == "gone"
    printed = must(ssh(info, "storage", "cat /tmp/acked.txt")).split("\n")
    acked = [int(line) for line in printed if line.isdigit()]
    assert acked and acked == list(range(1, len(acked) + 1))
    after_commit = {
        int(row): _lsn(lsn.split()[1])
        for row, lsn in itertools.pairwise(printed)
        if row.isdigit() and lsn.startswith("lsn ")
    }
    try:
        last = _archived(info)[-1]
        segment_end = (_segment_number(last) + 1) * SEGMENT
        with restored(info, PROJECT, "--to", "latest") as found:
            rows = _scratch_sql(info, found, "SELECT i || ' ' || extract(epoch FROM at) FROM stream ORDER BY i").split(
                "\n"
            )
        recovered = [(int(i), float(at)) for i, at in (r.split() for r in rows if r)]
    finally:
        _start_after_kill(info, "postgresql@15-main.service")
    wait_for(
        "PostgreSQL back", lambda: ssh(info, "storage", "runuser -u postgres -- psql -tA -c 'SELECT 1'").returncode == 0
    )
    assert int(sql(info, PROJECT, "SELECT count(*) FROM stream")) >= len(acked), (
        "crash recovery on the server keeps every acked row"
    )
    required = [i for i, lsn in after_commit.items() if lsn <= segment_end]
    assert required, "some committed rows lay in archived WAL"
    numbers = [i for i, _ in recovered]
    assert numbers == list(range(1, len(numbers) + 1)), "recovered rows are a prefix with no gaps"
    assert set(required) <= set(numbers), f"{len(set(required) - set(numbers))} archived rows missing"
    at_risk = float(killed[0]) - recovered[-1][1]
    print(
        f"\nSIGKILL of PostgreSQL: {len(acked)} rows acknowledged, {len(numbers)} recovered from the backup server alone "
        f"({len(required)} lay in archived WAL); {len(acked) - len(numbers)} rows, {at_risk:.1f}s of commits, were at risk "
        f"(archive_timeout 10s)"
    )
    assert at_risk <= 10 + 5, "at most one archive_timeout (plus shipping) of commits is at risk"


def test_redis_killed_keeps_what_was_written_a_second_before(backed_up: SandboxInfo) -> None:
    info = backed_up
    run = f"vault:kill:{int(time.time())}"  # keys of this run only
    writer = (
        f'(for i in $(seq 1 20000); do echo "SET {run}:$i $(date +%s.%N)"; sleep 0.005; done) | '
        'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning > /tmp/redis-acked.txt 2>&1\n'
    )
    _background(info, "codeb-test-redis-writer", writer)
    time.sleep(6)
    # redis-cli would reconnect to the restarted server and go on writing: stop it with the server.
    killed_at = float(
        must(ssh(info, "storage", "pkill -KILL -x redis-cli; date -u +%s.%N; pkill -KILL -x redis-server")).split()[0]
    )
    time.sleep(1)
    _start_after_kill(info, "redis-server.service")
    wait_for(
        "Redis back",
        lambda: (
            ssh(
                info,
                "storage",
                'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning PING',
            ).stdout.strip()
            == "PONG"
        ),
    )
    acked = int(must(ssh(info, "storage", "grep -c '^OK$' /tmp/redis-acked.txt")).strip())
    dump = must(
        ssh(
            info,
            "storage",
            'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning '
            f"--scan --pattern '{run}:*' | wc -l",
        )
    )
    survivors = int(dump)
    values = [
        float(v)
        for v in redis_admin(
            info,
            "EVAL",
            '\'local o={} for _,k in ipairs(redis.call("KEYS", ARGV[1])) do o[#o+1]=redis.call("GET", k) end return o\'',
            "0",
            f"'{run}:*'",
        ).split()
    ]
    print(
        f"\nSIGKILL of Redis: {acked} writes acknowledged, {survivors} keys after restart (AOF, fsync every second); "
        f"newest surviving write {killed_at - max(values):.2f}s before the kill"
    )
    assert survivors > 0 and killed_at - max(values) <= 1.0 + 0.5
    # Keys are numbered in write order: the survivors are every key up to the newest one, so every
    # write older than that (a second or less before the kill) survived; in fact every acknowledged
    # write did, since Redis writes the AOF before it answers (only a machine crash could lose the
    # last second that was not yet fsynced). So this passes with `appendfsync no` too: the page
    # cache outlives the process. test_redis_fsyncs_its_aof_every_second checks the fsyncs.
    numbers = sorted(int(k.rsplit(":", 1)[1]) for k in redis_admin(info, "KEYS", f"'{run}:*'").split())
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= acked


def _backup_sshd(action: str) -> None:
    with connect(echo=lambda _: None) as engine:
        container = engine.client.containers.get(container_name("backup"))
        code, output = container.exec_run(["systemctl", action, "ssh.socket", "ssh.service"])
        assert code == 0 or action == "stop", output


def test_unreachable_archive_fails_loudly_and_loses_no_wal(backed_up: SandboxInfo) -> None:
    info = backed_up
    failed_before = int(storage_status(info)["archiver"]["failed_count"] or 0)
    table = f"offline_{int(time.time())}"  # this run's own: the sandbox may be reused
    sql(info, PROJECT, f"CREATE TABLE {table} (id int PRIMARY KEY)")
    _backup_sshd("stop")
    try:
        for n in range(3):
            sql(info, PROJECT, f"INSERT INTO {table} (id) VALUES ({n}); SELECT pg_switch_wal();")
        wait_for(
            "archive failures",
            lambda: int(storage_status(info)["archiver"]["failed_count"] or 0) > failed_before,
            timeout=90,
        )
        status = codeb(info, "backup", "status")
        print(
            f"\n`codeb backup status` with the backup server unreachable (exit {status.returncode}):\n{status.stdout}"
        )
        assert status.returncode == 1, status.stdout
        failed = {
            line[6:34].strip() for line in status.stdout.splitlines() if line.startswith("FAIL  ")
        }  # name: 28 wide
        assert {"WAL archiving", "backup server"} <= failed, status.stdout
        pending = storage_status(info)["ready"]["count"]
        assert pending >= 2, "segments wait on the storage server"
    finally:
        _backup_sshd("start")
    wait_for("the archive to catch up", lambda: storage_status(info)["ready"]["count"] == 0, timeout=180)
    names = _archived(info)
    numbers = [_segment_number(n) for n in names]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "no gap in the archived WAL"
    with restored(info, PROJECT, "--to", "latest") as found:
        assert _scratch_sql(info, found, f"SELECT count(*) FROM {table}") == "3"


def _files_in(info: SandboxInfo, directory: str) -> dict[str, int]:
    """The backup server's files in a directory, name to size."""
    listed = must(ssh(info, "backup", f"find {directory} -type f -printf '%f %s\\n'")).split()
    return dict(zip(listed[::2], map(int, listed[1::2]), strict=True))


def _on_backup_as_engine(script: str) -> None:
    """A script run in the backup server by the engine with every capability (the server itself may
    not mount), in the server's own mount namespace."""
    with connect(echo=lambda _: None) as engine:
        container = engine.client.containers.get(container_name("backup"))
        code, output = container.exec_run(["sh", "-c", script], privileged=True)
        assert code == 0, output.decode(errors="replace")[-2000:]


def test_a_full_backup_disk_fails_archiving_loudly_keeps_no_partial_segment_and_catches_up(
    backed_up: SandboxInfo,
) -> None:
    """The WAL area moved onto a 24 MiB tmpfs (room for one segment) and filled to the last byte;
    afterwards its segments join the real area again."""
    info, wal, stash = backed_up, "/srv/backup/wal", "/srv/backup/.wal-full-test"
    table = f"diskfull_{int(time.time())}"  # this run's own: the sandbox may be reused
    sql(info, PROJECT, f"CREATE TABLE {table} (id int PRIMARY KEY)")
    wait_for("the archive to be idle", lambda: storage_status(info)["ready"]["count"] == 0, timeout=180)
    failed_before = int(storage_status(info)["archiver"]["failed_count"] or 0)
    pg_log = "/var/log/postgresql/postgresql-15-main.log"
    logged_before = int(must(ssh(info, "storage", f"wc -l < {pg_log}")))
    _on_backup_as_engine(
        f"set -e; owner=$(stat -c %u:%g {wal}); mode=$(stat -c %a {wal}); "
        f"mount -t tmpfs -o size=24m,mode=$mode codeb-test-full {wal}; chown $owner {wal}; "
        f"dd if=/dev/zero of={wal}/.filler bs=64k 2>/dev/null || true; test $(df --output=avail {wal} | tail -1) -eq 0"
    )
    try:
        for n in range(2):
            sql(info, PROJECT, f"INSERT INTO {table} (id) VALUES ({n}); SELECT pg_switch_wal();")
        wait_for(
            "archive failures",
            lambda: int(storage_status(info)["archiver"]["failed_count"] or 0) > failed_before,
            timeout=90,
        )
        status = codeb(info, "backup", "status")
        print(f"\n`codeb backup status` with the backup disk full (exit {status.returncode}):\n{status.stdout}")
        assert status.returncode == 1 and re.search(r"^FAIL +WAL archiving", status.stdout, re.M), status.stdout
        # PostgreSQL's log names the cause in the backup server's one line, no traceback.
        said = must(ssh(info, "storage", f"tail -n +{logged_before + 1} {pg_log}"))
        assert "not stored: No space left on device on the backup server" in said, said[-3000:]
        assert "Traceback" not in said and "OSError" not in said, said[-3000:]
        sizes = _files_in(info, wal)
        partial = {name: size for name, size in sizes.items() if WAL_NAME.match(name) and size != SEGMENT}
        assert partial == {}, f"a partial segment was accepted: {partial}"
        # PostgreSQL keeps retrying, so a put may be receiving right now; what one leaves must be gone
        # once it has failed.
        receiving = {name for name in sizes if name.startswith(".tmp-")}
        wait_for("failed puts to remove their files", lambda: not receiving & set(_files_in(info, wal)), timeout=30)
        _on_backup_as_engine(f"rm {wal}/.filler; mount -o remount,size=512m {wal}")
        wait_for("the archive to catch up", lambda: storage_status(info)["ready"]["count"] == 0, timeout=180)
    finally:
        _on_backup_as_engine(
            f"set -e; rm -f {wal}/.filler; mkdir -p {stash}; cp -a {wal}/. {stash}/; umount {wal}; "
            f"cp -an {stash}/. {wal}/; rm -rf {stash}"
        )
    names = _archived(info)
    numbers = [_segment_number(n) for n in names]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "no gap in the archived WAL"
    with restored(info, PROJECT, "--to", "latest") as found:
        assert _scratch_sql(info, found, f"SELECT count(*) FROM {table}") == "2"


SCRATCH_SCRIPT = r"""
set -e
pg=/usr/lib/postgresql/15/bin
d=$(mktemp -d /tmp/codeb-test-evidence.XXXXXX); chown codeb-backup "$d"
as() { runuser -u codeb-backup -- "$@"; }
cleanup() {
    as $pg/pg_ctl -D "$d/pg" -m immediate stop >/dev/null 2>&1 || true
    [ -f "$d/redis.pid" ] && kill "$(cat "$d/redis.pid")" 2>/dev/null || true
    [ -f "$d/aof/redis.pid" ] && kill "$(cat "$d/aof/redis.pid")" 2>/dev/null || true
    sleep 0.5; rm -rf "$d"
}
trap cleanup EXIT
dump=$(ls -t /srv/backup/dumps/vault/*.dump | head -1)
rdb=$(ls -t /srv/backup/redis/*.rdb | head -1)
as $pg/initdb -D "$d/pg" -U postgres --auth=trust >/dev/null
as $pg/pg_ctl -D "$d/pg" -o "-c listen_addresses='' -c unix_socket_directories=$d -p 55432" -w start >/dev/null
as $pg/createdb -h "$d" -p 55432 -U postgres vault
as $pg/pg_restore -h "$d" -p 55432 -U postgres -d vault --no-owner --no-acl "$dump"
echo "dump $(as $pg/psql -X -tA -h "$d" -p 55432 -U postgres -d vault -c "SELECT string_agg(id::text || '=' || note, ',' ORDER BY id) FROM evidence_RUN")"
cp "$rdb" "$d/dump.rdb"; chown codeb-backup "$d/dump.rdb"
as redis-server --port 0 --unixsocket "$d/redis.sock" --dir "$d" --dbfilename dump.rdb --appendonly no --save '' \
    --daemonize yes --pidfile "$d/redis.pid" >/dev/null
for i in $(seq 50); do as redis-cli -s "$d/redis.sock" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
echo "rdb $(as redis-cli -s "$d/redis.sock" --raw EVAL "local o={} for i=1,20 do o[#o+1]=tostring(redis.call('GET','vault:evidence:RUN:'..i)) end return table.concat(o,',')" 0)"
mkdir "$d/aof"; tar -xf /srv/backup/redis/aof-latest.tar -C "$d/aof"; chown -R codeb-backup "$d/aof"
as redis-server --port 0 --unixsocket "$d/aof/redis.sock" --dir "$d/aof" --appendonly yes --appenddirname appendonlydir \
    --save '' --daemonize yes --pidfile "$d/aof/redis.pid" >/dev/null
for i in $(seq 50); do as redis-cli -s "$d/aof/redis.sock" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
echo "aof $(as redis-cli -s "$d/aof/redis.sock" --raw EVAL "local o={} for i=1,20 do o[#o+1]=tostring(redis.call('GET','vault:evidence:RUN:'..i)) end return table.concat(o,',')" 0)"
"""


def test_dumps_and_redis_files_restore_with_the_stock_tools(backed_up: SandboxInfo) -> None:
    """Independent of the drill's own report: the newest dump through pg_restore into a PostgreSQL
    this test starts, the newest RDB and the AOF copy into redis-servers it starts, each compared
    with what this test wrote just before the backup."""
    info, run = backed_up, f"{int(time.time())}"
    rows = {n: f"note-{run}-{n}" for n in range(1, 21)}
    sql(
        info,
        PROJECT,
        f"CREATE TABLE evidence_{run} (id int PRIMARY KEY, note text NOT NULL);"
        + "".join(f"INSERT INTO evidence_{run} VALUES ({n}, '{note}');" for n, note in rows.items()),
    )
    for n in rows:
        redis_admin(info, "SET", f"{PROJECT}:evidence:{run}:{n}", f"value-{run}-{n}")
    ok(codeb(info, "backup", "now", "dump", "redis"))
    shown = dict(
        line.split(" ", 1)
        for line in must(
            ssh(info, "backup", "bash -s", stdin=SCRATCH_SCRIPT.replace("RUN", run), timeout=300)
        ).splitlines()
        if " " in line
    )
    assert shown["dump"] == ",".join(f"{n}={note}" for n, note in rows.items())
    assert shown["rdb"] == ",".join(f"value-{run}-{n}" for n in rows)
    assert shown["aof"] == ",".join(f"value-{run}-{n}" for n in rows)


def test_redis_fsyncs_its_aof_every_second(backed_up: SandboxInfo) -> None:
    """A SIGKILL of Redis (the test above) loses nothing even with `appendfsync no`: the kernel's
    page cache outlives the process, and the sandbox's servers share this machine's kernel, so no
    kill of a process or container can show what a power cut loses. What `everysec` adds is an
    fdatasync of the AOF about once a second while writes come in: counted here with strace on
    the running server (0 with `no`, one per write with `always`)."""
    info = backed_up
    must(
        ssh(
            info,
            "storage",
            "command -v strace >/dev/null || { apt-get update -qq && "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }",
            timeout=600,
        )
    )
    writer = (
        f'(for i in $(seq 1 2000); do echo "SET {PROJECT}:fsync:$i $i"; sleep 0.002; done) | '
        'REDISCLI_AUTH="$(cat /etc/codeb/secrets/redis.password)" redis-cli --no-auth-warning >/dev/null\n'
    )
    _background(info, "codeb-test-redis-fsync-writer", writer)
    traced = ssh(
        info,
        "storage",
        "timeout -s INT 4 strace -f -qq -e trace=fsync,fdatasync -p $(pidof redis-server) 2>&1; true",
        timeout=60,
    )
    syncs = [line for line in traced.stdout.splitlines() if "fdatasync(" in line or "fsync(" in line]
    print(f"\nRedis AOF: {len(syncs)} fsync calls in 4 s of writes (appendfsync everysec)")
    assert 2 <= len(syncs) <= 8, traced.stdout[-2000:]
