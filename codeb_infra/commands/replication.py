"""Command lines of moving the storage server by replication: preflight reads, PostgreSQL's
base backup, standby, write fence and promotion, and Redis's REPLICAOF and FAILOVER.

Passwords stay in root-only files on the servers: pg_basebackup and the standby read the
replication password from a 0600 passfile (PGPASSFILE / `passfile=`); redis-cli gets the admin
password from REDISCLI_AUTH set inside the remote shell, and `CONFIG SET masterauth` goes to
redis-cli on its standard input (printf is a shell builtin: no process carries it in argv)."""

from __future__ import annotations

from pyinfra.api import StringCommand

from codeb_infra.commands import Part, command, quoted, safe
from codeb_infra.commands.postgres import _as_postgres
from codeb_infra.config.roles import REDIS_PASSWORD, ip_address
from codeb_infra.domain.data import MASTER_ENVS_DIR

REPLICATION_ROLE = "codeb_replication"
REPLICATION_PASSWORD = "/etc/codeb/secrets/postgres-replication.password"
PASSFILE = "/var/lib/postgresql/.codeb-replication.pgpass"
REPLICA_CONF = "codeb-replica.conf"
FENCE_SETTING = "default_transaction_read_only"
# What a standby is called on the source (pg_stat_replication.application_name).
STANDBY_NAME = "codeb_target"


def _redis(*words: str) -> StringCommand:
    """redis-cli on loopback as the default user (password from its root-only file, never argv)."""
    return command(
        'REDISCLI_AUTH="$(cat',
        quoted(REDIS_PASSWORD),
        ')"',
        "redis-cli",
        "--no-auth-warning",
        *(quoted(word) for word in words),
    )


def postgres_facts() -> StringCommand:
    """`server_version_num|wal_level|max_wal_senders|data size bytes|current WAL LSN|in recovery`."""
    return _as_postgres(
        "SELECT current_setting('server_version_num'), current_setting('wal_level'), "
        "current_setting('max_wal_senders'), (SELECT sum(pg_database_size(oid)) FROM pg_database), "
        "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END, "
        "pg_is_in_recovery()"
    )


def hba_allows_replication(address: str) -> StringCommand:
    """Rows of the source's live pg_hba rules that let a replication connection in from `address`
    (`1` per row; none when it is refused)."""
    return _as_postgres(
        "SELECT 1 FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND type = 'host' "
        f"AND (address = 'all' OR inet '{ip_address(address)}' <<= (address || '/' || "
        "coalesce(masklen(netmask::inet), 32))::inet)"
    )


def installable_postgres_major(version: int) -> StringCommand:
    """The candidate version of postgresql-VERSION from apt (empty when none is offered)."""
    return command(
        "apt-cache",
        "policy",
        quoted(f"postgresql-{int(version)}"),
        "2>/dev/null",
        "|",
        "awk",
        quoted("/Candidate:/ {print $2}"),
    )


def free_disk(path: str = "/var/lib") -> StringCommand:
    """Free bytes on the filesystem holding `path`."""
    return command("df", "--output=avail", "-B1", quoted(path), "|", "tail", "-n1")


def redis_version() -> StringCommand:
    return command("redis-server", "--version")


def redis_info(section: str = "replication") -> StringCommand:
    return _redis("INFO", safe(section))


def redis_candidate() -> StringCommand:
    """The redis-server version apt would install (on a target not bootstrapped yet)."""
    return command(
        "apt-cache",
        "policy",
        "redis-server",
        "2>/dev/null",
        "|",
        "awk",
        quoted("/Candidate:/ {print $2}"),
        "|",
        "sed",
        quoted("s/^[0-9]*://"),
    )


SECRETS_TAR = "/root/.codeb-secrets.tar"


def secrets_archive() -> StringCommand:
    """A root-only tar of what the storage role keeps on the server alone: /etc/codeb/secrets
    (passwords, project users, master envs)."""
    return command("umask", "077", "&&", "tar", "-C", "/", "-cf", SECRETS_TAR, "etc/codeb/secrets")


def remove_secrets_archive() -> StringCommand:
    return command("rm", "-f", SECRETS_TAR)


def unpack_secrets() -> StringCommand:
    return command("umask", "077", "&&", "tar", "-C", "/", "-xpf", SECRETS_TAR, "&&", "rm", "-f", SECRETS_TAR)


def list_master_envs() -> StringCommand:
    return command("ls", "-1", quoted(MASTER_ENVS_DIR), "2>/dev/null", "||", "true")


def passfile(source: str) -> StringCommand:
    """The postgres user's 0600 passfile for the replication role on `source`, from the root-only
    password file (the password goes through the remote shell, never onto a command line)."""
    line = f"{ip_address(source)}:5432:*:{REPLICATION_ROLE}:"
    return command(
        "umask",
        "077",
        "&&",
        "{",
        "printf",
        quoted("%s"),
        quoted(line),
        "&&",
        "cat",
        quoted(REPLICATION_PASSWORD),
        "&&",
        "echo",
        ";",
        "}",
        ">",
        quoted(PASSFILE),
        "&&",
        "chown",
        "postgres:postgres",
        quoted(PASSFILE),
        "&&",
        "chmod",
        "600",
        quoted(PASSFILE),
    )


def base_backup(*, source: str, version: int, data_dir: str, unit: str) -> StringCommand:
    """Stop the target's own (empty) cluster, replace its data directory by a base backup of the
    source streamed over the mesh, and start it as a standby of the source."""
    conninfo = (
        f"host={ip_address(source)} port=5432 user={REPLICATION_ROLE} passfile={PASSFILE} "
        f"application_name={STANDBY_NAME}"
    )
    conf = f"/etc/postgresql/{int(version)}/main/conf.d/{REPLICA_CONF}"
    # A base backup left running by a controller that died mid-way is ended first: two must never
    # write into one data directory.
    return command(
        "{",
        "pkill",
        "-x",
        "pg_basebackup",
        ";",
        "while",
        "pgrep",
        "-x",
        "pg_basebackup",
        ">/dev/null",
        ";",
        "do",
        "sleep",
        "0.2",
        ";",
        "done",
        ";",
        "}",
        "&&",
        "systemctl",
        "stop",
        quoted(unit),
        "&&",
        "rm",
        "-rf",
        quoted(data_dir),
        "&&",
        "runuser",
        "-u",
        "postgres",
        "--",
        "env",
        f"PGPASSFILE={PASSFILE}",
        f"/usr/lib/postgresql/{int(version)}/bin/pg_basebackup",
        "-h",
        quoted(ip_address(source)),
        "-U",
        REPLICATION_ROLE,
        "-D",
        quoted(data_dir),
        "-X",
        "stream",
        "-c",
        "fast",
        "-w",
        "&&",
        "runuser",
        "-u",
        "postgres",
        "--",
        "touch",
        quoted(f"{data_dir}/standby.signal"),
        "&&",
        "printf",
        quoted("# Written by codeb migrate storage: this server follows the source.\\nprimary_conninfo = '%s'\\n"),
        quoted(conninfo),
        ">",
        quoted(conf),
        "&&",
        "chown",
        "postgres:postgres",
        quoted(conf),
        "&&",
        "systemctl",
        "start",
        quoted(unit),
    )


def standby_state() -> StringCommand:
    """On the target: `in recovery|replayed LSN|received LSN`."""
    return _as_postgres(
        "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn(), '0/0'), "
        "coalesce(pg_last_wal_receive_lsn(), '0/0')"
    )


def source_lag() -> StringCommand:
    """On the source: `flushed LSN|bytes the standby's replay lags behind` (empty lag: no standby)."""
    return _as_postgres(
        "SELECT pg_current_wal_flush_lsn(), (SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), replay_lsn)::bigint "
        f"FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}')"
    )


def fence(*, on: bool) -> StringCommand:
    """The write fence on the source: every new transaction read-only (ALTER SYSTEM + reload), and
    the sessions that began before it ended so none keeps writing. Off undoes it."""
    if not on:
        return _as_postgres(f"ALTER SYSTEM RESET {FENCE_SETTING}; SELECT pg_reload_conf()")
    return command(
        _as_postgres(f"ALTER SYSTEM SET {FENCE_SETTING} = on"),
        "&&",
        _as_postgres("SELECT pg_reload_conf()"),
        ">/dev/null",
        "&&",
        _as_postgres(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()"
        ),
    )


def promote(*, version: int, data_dir: str) -> StringCommand:
    """Promote the standby (waits until it accepts writes), then drop its follow-the-source file."""
    return command(
        _as_postgres("SELECT pg_promote(true, 30)"),
        "&&",
        "rm",
        "-f",
        quoted(f"/etc/postgresql/{int(version)}/main/conf.d/{REPLICA_CONF}"),
        quoted(PASSFILE),
    )


def _redis_with_masterauth(*then: Part) -> StringCommand:
    """redis-cli reading `CONFIG SET masterauth` (the password from its root-only file, so never on
    a command line) and then ``then`` (more printf parts) from stdin."""
    return command(
        "{",
        "printf",
        quoted("CONFIG SET masterauth %s\\n"),
        '"$(cat',
        quoted(REDIS_PASSWORD),
        ')"',
        ";",
        "printf",
        *then,
        ";",
        "}",
        "|",
        _redis(),
    )


def redis_follow(source: str) -> StringCommand:
    """On the target: authenticate to the source as the default user (same password: the secrets
    were copied) and replicate it."""
    return _redis_with_masterauth(quoted("REPLICAOF %s 6379\\n"), quoted(ip_address(source)))


def redis_failover(target: str, timeout_ms: int = 5000) -> StringCommand:
    """On the source: hand the primary role to the target (no FORCE: Redis aborts rather than
    lose writes, the source becomes the target's replica). masterauth first, for following it."""
    return _redis_with_masterauth(
        quoted("FAILOVER TO %s 6379 TIMEOUT %d\\n"), quoted(ip_address(target)), quoted(str(int(timeout_ms)))
    )


def record_read(path: str) -> StringCommand:
    return command("cat", quoted(path), "2>/dev/null", "||", "true")


def record_write(path: str, text: str) -> StringCommand:
    """Write the step record (JSON without secrets) atomically."""
    directory = path.rsplit("/", 1)[0]
    return command(
        "mkdir",
        "-p",
        quoted(directory),
        "&&",
        "printf",
        quoted("%s\\n"),
        quoted(text),
        ">",
        quoted(f"{path}.new"),
        "&&",
        "mv",
        quoted(f"{path}.new"),
        quoted(path),
    )
