"""Moving the storage server: preflight decisions, WAL positions, Redis replies, the step record,
and the command lines (no password on any of them)."""

from __future__ import annotations

import json

import pytest

from codeb_infra.commands import replication
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.migrate import exit_code
from codeb_infra.domain.migrate_storage import (
    PostgresFacts,
    Record,
    Step,
    TargetFacts,
    candidate_major,
    caught_up,
    lsn,
    preflight,
    redis_in_sync,
    redis_role,
    redis_version,
    resume_from,
)

SOURCE = PostgresFacts.parse("150014|replica|10|52428800|0/3000148|f")
REDIS = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=c4b52b6f3c2ebd2a"
GOOD_TARGET = TargetFacts(reachable=True, postgres_candidate="15.14-0+deb12u1", free_bytes=10 * 2**30)


def checks(**overrides: object) -> dict[str, tuple[bool, str]]:
    arguments: dict[str, object] = {
        "source": SOURCE,
        "source_redis": REDIS,
        "target": GOOD_TARGET,
        "target_redis": REDIS,
        "hba_rows": 1,
        "wanted_major": 15,
        **overrides,
    }
    return {c.name: (c.ok, c.detail) for c in preflight(**arguments)}  # type: ignore[arg-type]


def test_facts_parse() -> None:
    assert (SOURCE.major, SOURCE.wal_level, SOURCE.max_wal_senders, SOURCE.data_bytes) == (15, "replica", 10, 52428800)
    assert not SOURCE.in_recovery
    with pytest.raises(CodebError, match="unexpected PostgreSQL settings"):
        PostgresFacts.parse("150014|replica")


def test_a_good_target_passes_every_check() -> None:
    found = checks()
    assert all(ok for ok, _ in found.values()), found
    assert set(found) == {
        "target reachable",
        "PostgreSQL major version",
        "wal_level",
        "max_wal_senders",
        "pg_hba allows replication from the target",
        "free disk on the target",
        "Redis FAILOVER on the source",
        "Redis FAILOVER on the target",
    }


@pytest.mark.parametrize(
    ("overrides", "failing", "said"),
    [
        ({"target": GOOD_TARGET.model_copy(update={"postgres_candidate": "16.4-1"})}, "PostgreSQL major version", "16"),
        (
            {"target": GOOD_TARGET.model_copy(update={"postgres_candidate": "(none)"})},
            "PostgreSQL major version",
            "none",
        ),
        (
            {"target": GOOD_TARGET.model_copy(update={"free_bytes": 60 * 2**20})},
            "free disk on the target",
            "60 MiB free",
        ),
        ({"source": SOURCE.model_copy(update={"wal_level": "minimal"})}, "wal_level", "minimal"),
        ({"source": SOURCE.model_copy(update={"max_wal_senders": 0})}, "max_wal_senders", "0"),
        ({"hba_rows": 0}, "pg_hba allows replication from the target", "no rule"),
        ({"target_redis": "Redis server v=6.0.16 sha=0"}, "Redis FAILOVER on the target", "6.0.16"),
        ({"source_redis": "garbage"}, "Redis FAILOVER on the source", "cannot read"),
    ],
)
def test_each_bad_fact_fails_its_own_check(overrides: dict[str, object], failing: str, said: str) -> None:
    found = checks(**overrides)
    assert [name for name, (ok, _) in found.items() if not ok] == [failing]
    assert said in found[failing][1]


def test_an_unreachable_target_is_the_only_check() -> None:
    result = preflight(
        source=SOURCE,
        source_redis=REDIS,
        target=TargetFacts(reachable=False, reason="timed out"),
        target_redis="",
        hba_rows=1,
        wanted_major=15,
    )
    assert [(c.name, c.ok, c.detail) for c in result] == [("target reachable", False, "timed out")]
    assert exit_code(result) == 1


def test_disk_margin_is_relative_to_the_data() -> None:
    big = SOURCE.model_copy(update={"data_bytes": 4 * 2**30})
    assert not checks(source=big, target=GOOD_TARGET.model_copy(update={"free_bytes": 5 * 2**30}))[
        "free disk on the target"
    ][0]
    assert checks(source=big, target=GOOD_TARGET.model_copy(update={"free_bytes": 7 * 2**30}))[
        "free disk on the target"
    ][0]


def test_wal_positions() -> None:
    assert lsn("0/0") == 0
    assert lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert caught_up("0/3000148", "0/3000148")
    assert caught_up("0/3000148", "0/3000200")
    assert not caught_up("1/0", "0/FFFFFFFF")
    with pytest.raises(CodebError, match="not a WAL position"):
        lsn("nope")


def test_versions() -> None:
    assert redis_version(REDIS) == (7, 0, 15)
    assert redis_version("v=6.2") == (6, 2, 0)
    assert redis_version("v=7.0.15-1~deb12u10") == (7, 0, 15)
    assert candidate_major("15.14-0+deb12u1") == 15
    assert candidate_major("(none)") is None


def test_redis_replies() -> None:
    synced = (
        "# Replication\r\nrole:slave\r\nmaster_host:10.77.0.3\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
    )
    assert redis_in_sync(synced)
    assert not redis_in_sync(synced.replace("link_status:up", "link_status:down"))
    assert not redis_in_sync(synced.replace("in_progress:0", "in_progress:1"))
    assert not redis_in_sync("role:master\r\n")
    assert redis_role(synced) == "slave" and redis_role("role:master\r\n") == "master"


def test_record_steps_and_grace() -> None:
    record = resume_from(None, source="storage", source_address="10.77.0.3", target_address="10.77.0.5", now=100.0)
    assert record.step == Step.STARTED and record.grace_until == 0
    fenced = record.done(Step.FENCED, 200.0)
    assert fenced.done(Step.STANDBY, 300.0).step == Step.FENCED  # a step never goes back
    done = fenced.done(Step.DONE, 1000.0)
    assert done.grace_until == 1000.0 + 48 * 3600
    again = Record.parse(done.text())
    assert again == done
    assert json.loads(done.text())["step"] == int(Step.DONE)
    assert resume_from(again, source="storage", source_address="10.77.0.3", target_address="10.77.0.5", now=5.0) == done
    with pytest.raises(CodebError, match="record is of storage -> 10.77.0.5, not other -> 10.77.0.5"):
        resume_from(again, source="other", source_address="10.77.0.9", target_address="10.77.0.5", now=5.0)
    assert Record.parse("  ") is None
    with pytest.raises(CodebError, match="unreadable"):
        Record.parse("{not json")


def test_commands_keep_passwords_in_files() -> None:
    lines = [
        replication.passfile("10.77.0.3"),
        replication.base_backup(
            source="10.77.0.3", version=15, data_dir="/var/lib/postgresql/15/main", unit="postgresql@15-main.service"
        ),
        replication.redis_follow("10.77.0.3"),
        replication.redis_failover("10.77.0.5"),
        replication.fence(on=True),
        replication.promote(version=15, data_dir="/var/lib/postgresql/15/main"),
    ]
    texts = [line.get_raw_value() for line in lines]
    base = texts[1]
    assert "PGPASSFILE=/var/lib/postgresql/.codeb-replication.pgpass" in base
    assert "passfile=/var/lib/postgresql/.codeb-replication.pgpass" in base and "password=" not in base
    assert "-X stream" in base and "rsync" not in base
    assert "cat /etc/codeb/secrets/postgres-replication.password" in texts[0] and "chmod 600" in texts[0]
    # The Redis password reaches redis-cli on stdin (printf is a builtin) and REDISCLI_AUTH, never argv.
    assert "CONFIG SET masterauth %s" in texts[2] and "REDISCLI_AUTH=" in texts[2]
    assert "FAILOVER TO %s 6379 TIMEOUT %d" in texts[3] and "FORCE" not in texts[3]
    assert "default_transaction_read_only = on" in texts[4] and "pg_terminate_backend" in texts[4]
    assert "pg_promote" in texts[5]
    with pytest.raises(CodebError):
        replication.base_backup(source="10.77.0.3; rm -rf /", version=15, data_dir="/d", unit="u")


def test_pg_hba_lets_the_target_replicate_by_password_only() -> None:
    from codeb_infra.templates import render

    text = render("pg_hba.conf.j2", networks=["10.77.0.0/24"], replication_from=["10.77.0.5"])
    assert "host    replication  codeb_replication  10.77.0.5/32  scram-sha-256" in text
    assert "host    replication" not in render("pg_hba.conf.j2", networks=["10.77.0.0/24"])
