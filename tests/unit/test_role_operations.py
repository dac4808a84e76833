"""The storage, streaming and backup operations: given these facts (here and on other hosts),
these commands or a no-op. pyinfra's own file operations are stood in for by marker commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pyinfra.api import StringCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.context import ctx_host
from pyinfra.facts.files import File

from codeb_infra.config.roles import BackupAccess
from codeb_infra.facts.files import TextFile
from codeb_infra.facts.podman import SlotRunner
from codeb_infra.facts.postgres import PostgresLogin
from codeb_infra.facts.redis import RedisAclCurrent
from codeb_infra.facts.secrets import EnvFileKeys
from codeb_infra.facts.ssh import SshPublicKey
from codeb_infra.operations import backup, centrifugo, postgres, redis, secrets

ROOT_ONLY = {"user": "root", "group": "root", "mode": 600, "size": 40}
STORAGE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKw98fPrRNYICGVqcpBfXZ9iBbuWpAxI8jeuqv1YymaB postgres@storage codeb-backup"
)
APP_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJWASS0okqpnwn2mwDoZl1UW6TWRaK2gi/XYWvHOp7Y3 root@app codeb-backup"
ACCESS = BackupAccess.from_groups(
    {
        "backup": [("backup", "10.0.0.8")],
        "storage": [("storage", "10.0.0.5")],
        "app": [("app", "10.0.0.2")],
    }
)


class Inventory:
    def __init__(self, hosts: dict[str, Host]) -> None:
        self.hosts = hosts

    def get_host(self, name: str, default: Any = None) -> Any:
        return self.hosts.get(name, default)


class State:
    def __init__(self, executing: bool) -> None:
        self.is_executing = executing
        self.inventory = Inventory({})


class Host:
    """Facts by class, or by (class, path) where one operation reads the same fact twice."""

    def __init__(self, name: str, facts: dict[Any, Any], state: State | None = None) -> None:
        self.name = name
        self.facts = facts
        self.noops: list[str] = []
        self.state = state or State(executing=False)

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        for key in ((cls, kwargs.get("path")), cls):
            if key in self.facts:
                return self.facts[key]
        return cls().default()

    def noop(self, description: str) -> None:
        self.noops.append(description)


@pytest.fixture(autouse=True)
def marker_file_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    def marker(verb: str):
        def inner(**kwargs: Any) -> Iterator[StringCommand]:
            target = kwargs.get("dest") or kwargs.get("path") or kwargs.get("service")
            flags = " ".join(
                f"{k}={v}" for k, v in sorted(kwargs.items()) if k in ("force", "restarted", "enabled", "daemon_reload")
            )
            yield StringCommand(verb, target, flags) if flags else StringCommand(verb, target)

        return inner

    for module in (backup, centrifugo):
        for verb in ("put", "directory", "block", "file"):
            monkeypatch.setattr(getattr(module.files, verb), "_inner", marker(verb))
    monkeypatch.setattr(centrifugo.systemd.service, "_inner", marker("service"))


@contextmanager
def on(host: Host) -> Iterator[Host]:
    with ctx_host.use(host):
        yield host


def run(op: Any, host: Host, **kwargs: Any) -> list[str]:
    with on(host):
        return [str(c).strip() for c in op._inner(**kwargs)]


def test_secret_is_made_once_and_kept_root_only():
    made = run(secrets.secret, Host("storage", {File: None}), path="/etc/codeb/secrets/redis.password")
    assert made[0] == "install -d -o root -g root -m 700 /etc/codeb/secrets"
    assert made[1].startswith("[ -s /etc/codeb/secrets/redis.password ] || ( umask 077")
    assert made[2] == "chown root:root /etc/codeb/secrets/redis.password && chmod 600 /etc/codeb/secrets/redis.password"
    kept = Host("storage", {File: ROOT_ONLY})
    assert run(secrets.secret, kept, path="/etc/codeb/secrets/redis.password") == []
    assert kept.noops == ["/etc/codeb/secrets/redis.password exists"]
    loose = run(
        secrets.secret, Host("storage", {File: {**ROOT_ONLY, "mode": 644}}), path="/etc/codeb/secrets/redis.password"
    )
    assert loose[-1].endswith("chmod 600 /etc/codeb/secrets/redis.password")


def test_env_file_adds_only_the_missing_keys():
    host = Host("streaming", {EnvFileKeys: frozenset({"A_KEY"}), File: ROOT_ONLY})
    cmds = run(secrets.env_file, host, path="/etc/codeb/secrets/c.env", keys=["A_KEY", "B_KEY"])
    assert [c for c in cmds if "B_KEY" in c] and not [c for c in cmds if "A_KEY" in c]
    full = Host("streaming", {EnvFileKeys: frozenset({"A_KEY", "B_KEY"}), File: ROOT_ONLY})
    assert run(secrets.env_file, full, path="/etc/codeb/secrets/c.env", keys=["A_KEY", "B_KEY"]) == []


def test_login_role_is_set_until_it_logs_in_with_the_wanted_attributes():
    kwargs = {"role": "codeb_admin", "password_file": "/etc/codeb/secrets/p", "attributes": ["CREATEDB", "CREATEROLE"]}
    assert len(run(postgres.login_role, Host("storage", {PostgresLogin: None}), **kwargs)) == 1
    fewer = frozenset({"LOGIN", "CREATEDB"})
    assert len(run(postgres.login_role, Host("storage", {PostgresLogin: fewer}), **kwargs)) == 1
    ok = Host("storage", {PostgresLogin: frozenset({"LOGIN", "CREATEDB", "CREATEROLE"})})
    assert run(postgres.login_role, ok, **kwargs) == [] and ok.noops


def test_redis_acl_is_rewritten_when_stale_or_loose():
    owned = {"user": "root", "group": "redis", "mode": 640, "size": 100}
    kwargs = {
        "path": "/etc/redis/codeb-acl.conf",
        "password_file": "/etc/codeb/secrets/r",
        "users_dir": "/etc/codeb/secrets/u",
    }
    assert run(redis.acl, Host("storage", {File: owned, RedisAclCurrent: True}), **kwargs) == []
    assert len(run(redis.acl, Host("storage", {File: owned, RedisAclCurrent: False}), **kwargs)) == 1
    assert len(run(redis.acl, Host("storage", {File: {**owned, "mode": 644}, RedisAclCurrent: True}), **kwargs)) == 1
    reloaded = run(redis.acl, Host("storage", {File: owned, RedisAclCurrent: False}), **kwargs, reload=True)
    assert len(reloaded) == 2 and "ACL LOAD | grep -qx OK" in reloaded[1] and "REDISCLI_AUTH=" in reloaded[1]


def test_centrifugo_unit_is_written_and_restarted_only_when_it_changed():
    values = {
        "image": "localhost/centrifugo-standin:latest",
        "config": "/etc/codeb/centrifugo/config.json",
        "env_file": "/etc/codeb/secrets/centrifugo.env",
        "publish": ["127.0.0.1:8000:8000", "10.0.0.3:9000:9000"],
    }
    fresh = run(centrifugo.container, Host("streaming", {SlotRunner: "quadlet", TextFile: None}), **values)
    assert fresh == [
        "put /etc/containers/systemd/centrifugo.container",
        "service centrifugo.service daemon_reload=True enabled=None restarted=True",
    ]
    current = centrifugo.render(
        "centrifugo.container.j2", **values, container_config="/centrifugo/config.json", pull="never"
    )
    same = run(
        centrifugo.container, Host("streaming", {SlotRunner: "quadlet", TextFile: current.rstrip("\n")}), **values
    )
    assert same == ["service centrifugo.service daemon_reload=False enabled=None restarted=False"]
    older_podman = run(centrifugo.container, Host("streaming", {SlotRunner: "podman", TextFile: None}), **values)
    assert older_podman == [
        "put /etc/systemd/system/centrifugo.service",
        "service centrifugo.service daemon_reload=True enabled=True restarted=True",
    ]


def test_client_key_is_made_as_its_account_only_on_backup_clients():
    cmds = run(backup.client_key, Host("storage", {}), access=ACCESS)
    assert cmds == [
        "directory /var/lib/postgresql/.ssh",
        (
            "[ -f /var/lib/postgresql/.ssh/codeb_backup_ed25519 ] || runuser -u postgres -- ssh-keygen -q -t ed25519 "
            "-N '' -C 'postgres@storage codeb-backup' -f /var/lib/postgresql/.ssh/codeb_backup_ed25519"
        ),
    ]
    present = {(File, "/root/.ssh/codeb_backup_ed25519"): ROOT_ONLY, SshPublicKey: APP_KEY}
    assert run(backup.client_key, Host("app", present), access=ACCESS) == []
    streaming = Host("streaming", {})
    assert run(backup.client_key, streaming, access=ACCESS) == [] and streaming.noops == ["not a backup client"]


def backup_server(executing: bool, **keys: str | None) -> Host:
    state = State(executing)
    server = Host("backup", {}, state)
    state.inventory.hosts = {
        "backup": server,
        **{name: Host(name, {SshPublicKey: key}) for name, key in keys.items()},
    }
    return server


def test_backup_server_authorizes_each_client_key_from_its_own_address():
    server = backup_server(True, storage=STORAGE_KEY, app=APP_KEY)
    assert run(backup.authorized_clients, server, access=ACCESS) == [
        "directory /var/lib/codeb-backup/.ssh",
        "put /var/lib/codeb-backup/.ssh/authorized_keys force=False",
    ]


def test_a_client_key_still_to_be_made_is_a_change_when_preparing_and_an_error_when_running():
    assert run(backup.authorized_clients, backup_server(False, storage=None, app=APP_KEY), access=ACCESS)[-1] == (
        "put /var/lib/codeb-backup/.ssh/authorized_keys force=True"
    )
    with pytest.raises(OperationError, match="no backup key on storage"):
        run(backup.authorized_clients, backup_server(True, storage=None, app=APP_KEY), access=ACCESS)


def test_only_the_backup_server_authorizes_keys():
    other = Host("storage", {})
    assert run(backup.authorized_clients, other, access=ACCESS) == [] and other.noops == ["not the backup server"]


def test_clients_learn_the_backup_servers_host_key_from_the_server():
    state = State(True)
    client = Host("app", {}, state)
    state.inventory.hosts = {
        "app": client,
        "backup": Host("backup", {SshPublicKey: "ssh-ed25519 AAAAC3Nz root@backup"}),
    }
    assert run(backup.server_alias, client, access=ACCESS) == [
        "block /etc/ssh/ssh_known_hosts",
        "file /etc/ssh/ssh_known_hosts",
        "put /etc/ssh/ssh_config.d/codeb-backup.conf",
    ]
    state.inventory.hosts["backup"] = Host("backup", {SshPublicKey: None})
    with pytest.raises(OperationError, match="no SSH host key"):
        run(backup.server_alias, client, access=ACCESS)


def test_facts_parse_and_fail_clearly():
    from codeb_infra.domain.errors import CodebError

    assert PostgresLogin().process(["t|t|t|f|f"]) == frozenset({"LOGIN", "CREATEDB", "CREATEROLE"})
    assert PostgresLogin().process([]) is None
    with pytest.raises(CodebError, match="attributes"):
        PostgresLogin().process(["ERROR"])
    assert EnvFileKeys().process(["A", "B"]) == frozenset({"A", "B"})
    assert EnvFileKeys().process(["__codeb_missing__"]) is None
    assert RedisAclCurrent().process(["current"]) and not RedisAclCurrent().process(["stale"])
    assert SshPublicKey().process([STORAGE_KEY]) == STORAGE_KEY
    with pytest.raises(CodebError, match="public key"):
        SshPublicKey().process(["-----BEGIN OPENSSH PRIVATE KEY-----"])
