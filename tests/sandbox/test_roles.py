"""The storage, streaming and backup roles for real: bootstrapped twice on the sandbox's servers,
then checked from the outside (psql, redis-cli, curl, ssh, ss, the engine's port list)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import time

import pytest

from codeb_infra.config.roles import (
    BACKUP_AREAS,
    BACKUP_KEY_NAME,
    CENTRIFUGO_SECRETS,
    POSTGRES_ADMIN_PASSWORD,
    REDIS_PASSWORD,
)
from codeb_infra.sandbox.engine import connect
from codeb_infra.sandbox.servers import find_containers
from codeb_infra.sandbox.standin import STANDIN_IMAGE
from tests.sandbox.conftest import Bootstrapped, must
from tests.support.net import free_loopback_port
from tests.support.sandbox_ssh import SSH_OPTIONS, ssh

pytestmark = pytest.mark.sandbox

ROLE_HOSTS = ("storage", "streaming", "backup")


@pytest.fixture(scope="module")
def roles(bootstrapped: Bootstrapped) -> Bootstrapped:
    # Clients on the app server, as the apps there will connect.
    must(
        ssh(
            bootstrapped.info,
            "app",
            "command -v psql >/dev/null && command -v redis-cli >/dev/null || "
            "{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "postgresql-client redis-tools >/dev/null; }",
            timeout=600,
        )
    )
    return bootstrapped


def changed_hosts(output: str) -> set[str]:
    return set(re.findall(r"^\s+\[(\w+)\]\s+Success", output, re.MULTILINE))


def grand_total(output: str) -> list[str]:
    match = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    assert match, output[-3000:]
    return list(match.groups())


def test_first_run_bootstraps_every_role(roles: Bootstrapped) -> None:
    hosts, _, errors, _ = grand_total(roles.first.output)
    assert errors == "-"
    assert int(hosts) > 0


def test_second_run_changes_nothing_on_any_host(roles: Bootstrapped) -> None:
    output = roles.second.output
    assert changed_hosts(output) == set()
    _, success, errors, _ = grand_total(output)
    assert (success, errors) == ("-", "-")
    for role in (*ROLE_HOSTS, "app"):
        assert re.search(rf"^\s+\[{role}\]\s+No changes", output, re.MULTILINE), role


def read_secret(roles: Bootstrapped, role: str, path: str) -> str:
    return must(ssh(roles.info, role, f"cat {shlex.quote(path)}"))


def psql_from_app(
    roles: Bootstrapped, password: str | None, query: str = "select current_user"
) -> subprocess.CompletedProcess[str]:
    # The password travels on stdin, never on a command line.
    target = f"-h {roles.internal('storage')} -U codeb_admin -d postgres"
    prefix = 'read -r password; PGPASSWORD="$password" ' if password is not None else ""
    return ssh(
        roles.info,
        "app",
        f"{prefix}psql -X -w -tA {target} -c {shlex.quote(query)}",
        stdin=f"{password}\n" if password is not None else "",
    )


def redis_from_app(
    roles: Bootstrapped, password: str | None, command: str = "ping"
) -> subprocess.CompletedProcess[str]:
    prefix = 'read -r password; REDISCLI_AUTH="$password" ' if password is not None else ""
    return ssh(
        roles.info,
        "app",
        f"{prefix}redis-cli --no-auth-warning -h {roles.internal('storage')} {command}",
        stdin=f"{password}\n" if password is not None else "",
    )


def test_postgres_answers_from_app_with_the_admin_password(roles: Bootstrapped) -> None:
    password = read_secret(roles, "storage", POSTGRES_ADMIN_PASSWORD)
    result = psql_from_app(roles, password, "select current_user, inet_server_addr(), split_part(version(), ' ', 2)")
    user, server, version = must(result).strip().split("|")
    assert (user, server) == ("codeb_admin", roles.internal("storage"))
    assert version.startswith("15.")


def test_postgres_refuses_without_the_password(roles: Bootstrapped) -> None:
    none = psql_from_app(roles, None)
    wrong = psql_from_app(roles, "not-the-password")
    assert none.returncode != 0 and "password" in none.stderr
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_postgres_uses_scram_for_the_private_network(roles: Bootstrapped) -> None:
    rules = must(
        ssh(
            roles.info,
            "storage",
            "runuser -u postgres -- psql -X -tA -c "
            "\"select address, auth_method from pg_hba_file_rules where type = 'host'\"",
        )
    )
    methods = {line.split("|")[1] for line in rules.split()}
    assert methods == {"scram-sha-256"}
    assert f"{roles.internal('app')}|scram-sha-256" in rules.split()


def test_redis_answers_from_app_with_its_password_only(roles: Bootstrapped) -> None:
    password = read_secret(roles, "storage", REDIS_PASSWORD)
    assert must(redis_from_app(roles, password)).strip() == "PONG"
    assert "NOAUTH" in redis_from_app(roles, None).stdout
    wrong = redis_from_app(roles, "not-the-password")
    assert "WRONGPASS" in wrong.stderr and "PONG" not in wrong.stdout
    info = must(redis_from_app(roles, password, "info server"))
    assert re.search(r"^redis_version:7\.", info, re.MULTILINE)
    protected = must(redis_from_app(roles, password, "config get protected-mode")).split()
    assert protected == ["protected-mode", "yes"]


def test_storage_listens_on_loopback_and_private_address_only(roles: Bootstrapped) -> None:
    allowed = {"127.0.0.1", "[::1]", roles.internal("storage")}
    for port in (5432, 6379):
        listeners = must(ssh(roles.info, "storage", f"ss -ltnH 'sport = :{port}'")).splitlines()
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in listeners}
        assert roles.internal("storage") in addresses, port
        assert addresses <= allowed, (port, addresses)


def storage_answers_on_host_loopback(roles: Bootstrapped, postgres_port: int, redis_port: int) -> list[str]:
    """Which of the storage server's own PostgreSQL and Redis answer on this machine's loopback.

    This machine may run a PostgreSQL and a Redis of its own on 5432/6379 (Debian's packages do
    after setup.sh), so a bare connect proves nothing: each is asked for what only the storage
    server's instance has (the cluster's system identifier, Redis's run_id), with the storage
    server's passwords in the environment, never on a command line.
    """
    found = []
    system_id = must(
        ssh(
            roles.info,
            "storage",
            "runuser -u postgres -- psql -X -tA -c 'select system_identifier from pg_control_system()'",
        )
    ).strip()
    run_id = must(redis_from_storage(roles, "info server")).split("run_id:")[1].split()[0]
    assert system_id and run_id
    postgres = subprocess.run(
        [
            "psql",
            "-X",
            "-w",
            "-tA",
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres_port),
            "-U",
            "codeb_admin",
            "-d",
            "postgres",
            "-c",
            "select system_identifier from pg_control_system()",
        ],
        env={
            **os.environ,
            "PGPASSWORD": read_secret(roles, "storage", POSTGRES_ADMIN_PASSWORD).strip(),
            "PGCONNECT_TIMEOUT": "5",
        },
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    if system_id in postgres.stdout:
        found.append(f"PostgreSQL on 127.0.0.1:{postgres_port}")
    redis = subprocess.run(
        ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(redis_port), "info", "server"],
        env={**os.environ, "REDISCLI_AUTH": read_secret(roles, "storage", REDIS_PASSWORD).strip()},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    if run_id in redis.stdout:
        found.append(f"Redis on 127.0.0.1:{redis_port}")
    return found


def redis_from_storage(roles: Bootstrapped, command: str) -> subprocess.CompletedProcess[str]:
    return ssh(roles.info, "storage", f'REDISCLI_AUTH="$(cat {REDIS_PASSWORD})" redis-cli --no-auth-warning {command}')


def test_storage_is_not_reachable_from_the_host(roles: Bootstrapped) -> None:
    with connect(lambda _: None) as engine:
        container = find_containers(engine)["storage"]
    published = {port for port, bindings in (container.ports or {}).items() if bindings}
    assert published == {"22/tcp"}
    assert storage_answers_on_host_loopback(roles, 5432, 6379) == []


def test_the_reachability_check_sees_a_forwarded_storage_server(roles: Bootstrapped) -> None:
    """The check above can fail: with the storage server's ports forwarded to this machine's
    loopback (an SSH tunnel here), it names both."""
    postgres_port, redis_port = free_loopback_port(), free_loopback_port()
    # To the storage server's loopback: connections from its own private address are not in pg_hba.
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-i",
            str(roles.info.ssh_key),
            "-p",
            str(roles.info.servers["storage"].ssh_port),
            *SSH_OPTIONS,
            "-N",
            "-L",
            f"127.0.0.1:{postgres_port}:127.0.0.1:5432",
            "-L",
            f"127.0.0.1:{redis_port}:127.0.0.1:6379",
            "root@127.0.0.1",
        ],
    )
    try:
        wait_for_port(postgres_port)
        wait_for_port(redis_port)
        assert storage_answers_on_host_loopback(roles, postgres_port, redis_port) == [
            f"PostgreSQL on 127.0.0.1:{postgres_port}",
            f"Redis on 127.0.0.1:{redis_port}",
        ]
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)


def wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def test_secret_files_are_root_only(roles: Bootstrapped) -> None:
    for role, paths in (("storage", (POSTGRES_ADMIN_PASSWORD, REDIS_PASSWORD)), ("streaming", (CENTRIFUGO_SECRETS,))):
        for path in paths:
            assert must(ssh(roles.info, role, f"stat -c '%U:%G %a %s' {path}")).split()[:2] == ["root:root", "600"]
        assert must(ssh(roles.info, role, "stat -c '%U:%G %a' /etc/codeb/secrets")).strip() == "root:root 700"
    keys = must(ssh(roles.info, "streaming", f"sed 's/=.*//' {CENTRIFUGO_SECRETS}")).split()
    assert sorted(keys) == sorted(
        [
            "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY",
            "CENTRIFUGO_API_KEY",
            "CENTRIFUGO_ADMIN_PASSWORD",
            "CENTRIFUGO_ADMIN_SECRET",
        ]
    )


def all_secrets(roles: Bootstrapped) -> list[str]:
    values = [read_secret(roles, "storage", POSTGRES_ADMIN_PASSWORD), read_secret(roles, "storage", REDIS_PASSWORD)]
    env = read_secret(roles, "streaming", CENTRIFUGO_SECRETS)
    values += [line.split("=", 1)[1] for line in env.splitlines()]
    assert all(len(value) == 40 for value in values)
    return values


def test_secrets_appear_in_no_pyinfra_output(roles: Bootstrapped) -> None:
    secrets = all_secrets(roles)
    assert len(set(secrets)) == 6
    for secret in secrets:
        assert secret not in roles.first.output
        assert secret not in roles.second.output
    assert "/etc/codeb/secrets/postgres-admin.password" in roles.first.output  # the commands were captured


def test_secrets_appear_in_no_server_log(roles: Bootstrapped) -> None:
    for role, paths in (("storage", (POSTGRES_ADMIN_PASSWORD, REDIS_PASSWORD)), ("streaming", (CENTRIFUGO_SECRETS,))):
        for path in paths:
            # Fixed-string patterns from the file itself: the value never leaves the server here.
            patterns = f"<(sed 's/^[A-Z_]*=//' {path})"
            found = must(
                ssh(
                    roles.info,
                    role,
                    f'bash -c "journalctl --no-pager -o cat | grep -cF -f {patterns}; '
                    f'grep -rlF -f {patterns} /var/log | wc -l"',
                )
            )
            assert found.split() == ["0", "0"], (role, path)


def test_centrifugo_answers_health_on_its_internal_port_on_the_private_address(roles: Bootstrapped) -> None:
    url = f"http://{roles.internal('streaming')}:9000/health"
    status = must(ssh(roles.info, "app", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {url}"))
    assert status == "200"
    loopback = ssh(roles.info, "streaming", "curl -s -o /dev/null --max-time 5 http://127.0.0.1:9000/health")
    assert loopback.returncode != 0  # the internal port is published on the private address only
    client = ssh(roles.info, "streaming", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health")
    assert client.stdout == "404"  # the client port (Caddy's upstream) serves no internal endpoint


def test_centrifugo_is_a_quadlet_unit_started_at_boot(roles: Bootstrapped) -> None:
    show = must(
        ssh(roles.info, "streaming", "systemctl show -p ActiveState -p SourcePath -p WantedBy centrifugo.service")
    )
    assert "ActiveState=active" in show
    assert "SourcePath=/etc/containers/systemd/centrifugo.container" in show
    assert "multi-user.target" in show
    quiet = "PODMAN_IGNORE_CGROUPSV1_WARNING=1"
    image = must(ssh(roles.info, "streaming", f"{quiet} podman inspect centrifugo --format '{{{{.ImageName}}}}'"))
    assert image.strip() == STANDIN_IMAGE
    ports = must(ssh(roles.info, "streaming", f"{quiet} podman port centrifugo")).strip()
    assert sorted(ports.splitlines()) == [
        "8000/tcp -> 127.0.0.1:8000",
        f"9000/tcp -> {roles.internal('streaming')}:9000",
    ]


def test_storage_services_start_at_boot(roles: Bootstrapped) -> None:
    enabled = must(ssh(roles.info, "storage", "systemctl is-enabled postgresql.service redis-server.service")).split()
    assert enabled == ["enabled", "enabled"]


def backup_ssh(
    roles: Bootstrapped, role: str, user: str, home: str, command: str, *options: str
) -> subprocess.CompletedProcess[str]:
    key = f"{home}/.ssh/{BACKUP_KEY_NAME}"
    ssh_command = shlex.join(
        ["ssh", "-i", key, "-o", "BatchMode=yes", *options, f"codeb-backup@{roles.internal('backup')}", command]
    )
    return ssh(roles.info, role, f"runuser -u {user} -- {ssh_command}")


def test_backup_accepts_the_storage_and_app_keys(roles: Bootstrapped) -> None:
    assert must(backup_ssh(roles, "storage", "postgres", "/var/lib/postgresql", "id -un")).strip() == "codeb-backup"
    assert must(backup_ssh(roles, "app", "root", "/root", "id -un")).strip() == "codeb-backup"
    # The alias that WAL archiving and dumps will use.
    assert must(ssh(roles.info, "storage", "runuser -u postgres -- ssh codeb-backup true")) == ""


def test_backup_refuses_other_keys(roles: Bootstrapped) -> None:
    other = ssh(
        roles.info,
        "streaming",
        "rm -f /tmp/other-key /tmp/other-key.pub && "
        "ssh-keygen -q -t ed25519 -N '' -f /tmp/other-key && "
        "ssh -i /tmp/other-key -o BatchMode=yes -o StrictHostKeyChecking=no codeb-backup@backup true",
    )
    assert other.returncode == 255 and "Permission denied (publickey)" in other.stderr
    root_on_storage = ssh(
        roles.info,
        "storage",
        "rm -f /tmp/other-key /tmp/other-key.pub && "
        "ssh-keygen -q -t ed25519 -N '' -f /tmp/other-key && "
        "ssh -i /tmp/other-key -o BatchMode=yes codeb-backup@backup true",
    )
    assert root_on_storage.returncode == 255 and "Permission denied (publickey)" in root_on_storage.stderr


def test_backup_keys_work_only_from_their_own_server(roles: Bootstrapped) -> None:
    app_key = must(ssh(roles.info, "app", f"cat /root/.ssh/{BACKUP_KEY_NAME}"))
    try:
        copied = ssh(
            roles.info,
            "streaming",
            "umask 077 && cat > /tmp/app-key && "
            "ssh -i /tmp/app-key -o BatchMode=yes -o StrictHostKeyChecking=no codeb-backup@backup true",
            stdin=app_key,
        )
    finally:
        ssh(roles.info, "streaming", "rm -f /tmp/app-key")
    assert copied.returncode == 255 and "Permission denied (publickey)" in copied.stderr


def test_backup_sessions_get_no_terminal_and_no_forwarding(roles: Bootstrapped) -> None:
    tty = backup_ssh(roles, "storage", "postgres", "/var/lib/postgresql", "tty", "-tt")
    assert "PTY allocation request failed" in tty.stderr
    forward = backup_ssh(roles, "storage", "postgres", "/var/lib/postgresql", "true", "-W", "127.0.0.1:22")
    assert forward.returncode != 0 and "administratively prohibited" in forward.stderr


def test_backup_areas_belong_to_the_backup_user(roles: Bootstrapped) -> None:
    areas = "/srv/backup " + " ".join(f"/srv/backup/{area}" for area in BACKUP_AREAS)
    owners = must(ssh(roles.info, "backup", f"stat -c '%n %U:%G %a' {areas}")).splitlines()
    assert owners == [f"{path} codeb-backup:codeb-backup 750" for path in areas.split()]
    assert set(BACKUP_AREAS) >= {"wal", "base", "dumps", "env", "redis", "drills"}
