"""Storage, streaming and backup settings and the text made from them: pure, no servers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.commands import postgres as postgres_commands
from codeb_infra.commands import redis as redis_commands
from codeb_infra.commands import secrets as secret_commands
from codeb_infra.commands import ssh as ssh_commands
from codeb_infra.config.roles import (
    CENTRIFUGO_SECRET_KEYS,
    BackupAccess,
    StorageSettings,
    StreamingSettings,
    authorized_key_line,
    centrifugo_config,
    env_key,
    known_hosts_line,
    role_name,
)
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.health import role_units
from codeb_infra.templates import render
from codeb_infra.templates.caddy import render_ws_site

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKw98fPrRNYICGVqcpBfXZ9iBbuWpAxI8jeuqv1YymaB postgres@storage codeb-backup"


def test_storage_settings_need_a_private_address_and_postgres_15_or_later():
    assert (
        StorageSettings.from_data({"private_address": "10.0.0.5", "ssh_port": 22}).postgres_unit
        == "postgresql@15-main.service"
    )
    with pytest.raises(CodebError, match="private_address"):
        StorageSettings.from_data({})
    with pytest.raises(CodebError, match="private_address"):
        StorageSettings.from_data({"private_address": "db.example.com"})
    with pytest.raises(CodebError, match="postgres_version"):
        StorageSettings.from_data({"private_address": "10.0.0.5", "postgres_version": 13})
    with pytest.raises(CodebError, match="postgres_admin_role"):
        StorageSettings.from_data({"private_address": "10.0.0.5", "postgres_admin_role": "admin; drop"})


def test_postgres_lets_in_each_peer_alone_unless_a_network_is_given():
    settings = StorageSettings.from_data({"private_address": "10.0.0.5"})
    assert settings.client_networks(["10.0.0.7", "10.0.0.5", "10.0.0.6", "10.0.0.6"]) == ("10.0.0.6/32", "10.0.0.7/32")
    given = StorageSettings.from_data({"private_address": "10.0.0.5", "private_network": "10.0.0.0/24"})
    assert given.client_networks(["10.9.9.9"]) == ("10.0.0.0/24",)
    with pytest.raises(CodebError, match="private_network"):
        settings.client_networks(["10.0.0.5"])
    with pytest.raises(CodebError, match="private_network"):
        StorageSettings.from_data({"private_address": "10.0.0.5", "private_network": ["10.0.0.0/33"]})


def test_pg_hba_uses_peer_locally_and_scram_over_tcp():
    text = render("pg_hba.conf.j2", networks=("10.0.0.6/32", "10.0.0.7/32"))
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert all(rule[-1] == "peer" for rule in rules if rule[0] == "local")
    assert all(rule[-1] == "scram-sha-256" for rule in rules if rule[0] == "host")
    assert [rule[3] for rule in rules if rule[0] == "host"] == ["127.0.0.1/32", "::1/128", "10.0.0.6/32", "10.0.0.7/32"]
    assert text.endswith("scram-sha-256\n")


def test_services_listen_on_loopback_and_the_private_address_only():
    assert "listen_addresses = 'localhost,10.0.0.5'" in render("postgresql.codeb.conf.j2", private_address="10.0.0.5")
    redis = render("redis.codeb.conf.j2", private_address="10.0.0.5", acl_file="/etc/redis/codeb-acl.conf").splitlines()
    assert "bind 127.0.0.1 -::1 10.0.0.5" in redis
    assert "protected-mode yes" in redis
    assert redis[-1] == "aclfile /etc/redis/codeb-acl.conf"  # ACL LOAD adds project users without a restart
    assert "appendonly yes" in redis and "appendfsync everysec" in redis


def test_centrifugo_publishes_clients_on_loopback_its_api_on_the_private_address_and_keeps_secrets_out():
    settings = StreamingSettings.from_data({"private_address": "10.0.0.3", "base_domain": "codeb.test"})
    assert settings.publish == ("127.0.0.1:8000:8000", "10.0.0.3:9000:9000")
    assert settings.client_upstream == "127.0.0.1:8000"
    assert StreamingSettings.from_data({"private_address": "fd00::3"}).publish[1] == "[fd00::3]:9000:9000"
    moved = StreamingSettings.from_data(
        {"private_address": "10.0.0.3", "centrifugo_port": 8100, "centrifugo_internal_port": 9100}
    )
    assert moved.publish == ("127.0.0.1:8100:8000", "10.0.0.3:9100:9000")
    config = json.loads(centrifugo_config(settings))
    assert config["health"] is True and config["port"] == 8000 and config["internal_port"] == 9000
    assert "https://*.codeb.test" in config["allowed_origins"]
    for key in CENTRIFUGO_SECRET_KEYS:
        assert key.removeprefix("CENTRIFUGO_").lower() not in config
    with pytest.raises(CodebError, match="centrifugo_image"):
        StreamingSettings.from_data({"private_address": "10.0.0.3", "centrifugo_image": "--privileged"})
    with pytest.raises(CodebError, match="centrifugo_internal_port"):
        StreamingSettings.from_data({"private_address": "10.0.0.3", "centrifugo_internal_port": 70000})


@pytest.mark.parametrize(
    ("tls", "address", "internal"),
    [
        ("internal", "ws.codeb.test {", True),
        ("acme", "ws.codeb.test {", False),
        ("off", "http://ws.codeb.test {", False),
    ],
)
def test_ws_site_proxies_to_the_client_port_on_loopback_with_the_sites_tls_mode(
    tls: str, address: str, internal: bool
) -> None:
    site = render_ws_site(base_domain="codeb.test", tls=tls, upstream="127.0.0.1:8000").splitlines()
    assert address in site
    assert ("\ttls internal" in site) is internal
    assert [line.strip() for line in site if line.strip().startswith("reverse_proxy")] == [
        "reverse_proxy 127.0.0.1:8000"
    ]


def test_streaming_health_checks_centrifugo_and_its_caddy() -> None:
    assert {"centrifugo.service", "caddy.service"} <= {unit.unit for unit in role_units({"streaming"})}
    assert "caddy.service" not in {unit.unit for unit in role_units({"storage"})}


CENTRIFUGO_UNIT = {
    "image": "localhost/centrifugo-standin:latest",
    "config": "/etc/codeb/centrifugo/config.json",
    "env_file": "/etc/codeb/secrets/centrifugo.env",
    "publish": ["127.0.0.1:8000:8000", "10.0.0.3:9000:9000"],
    "container_config": "/centrifugo/config.json",
    "pull": "never",
}


def test_quadlet_unit_mounts_the_config_read_only_and_reads_secrets_from_the_env_file():
    unit = render("centrifugo.container.j2", **CENTRIFUGO_UNIT).splitlines()
    assert "Volume=/etc/codeb/centrifugo/config.json:/centrifugo/config.json:ro" in unit
    assert "EnvironmentFile=/etc/codeb/secrets/centrifugo.env" in unit
    published = [line for line in unit if line.startswith("PublishPort=")]
    assert published == ["PublishPort=127.0.0.1:8000:8000", "PublishPort=10.0.0.3:9000:9000"]
    assert unit[unit.index(published[-1]) + 1] == "Pull=never"
    assert "WantedBy=multi-user.target" in unit
    older = render("centrifugo.service.j2", **CENTRIFUGO_UNIT)
    assert "--publish 127.0.0.1:8000:8000 --publish 10.0.0.3:9000:9000 --env-file " in older


def groups(**roles: list[tuple[str, object]]) -> dict[str, list[tuple[str, object]]]:
    return roles


def test_backup_access_is_read_from_the_inventory_groups():
    access = BackupAccess.from_groups(
        groups(
            backup=[("backup", "10.0.0.8")],
            storage=[("storage", "10.0.0.5")],
            app=[("app", "10.0.0.2")],
        )
    )
    assert access.is_server("backup") and not access.is_server("storage")
    assert [(c.host, c.user, c.key) for c in access.clients] == [
        ("storage", "postgres", "/var/lib/postgresql/.ssh/codeb_backup_ed25519"),
        ("app", "root", "/root/.ssh/codeb_backup_ed25519"),
    ]
    assert access.client("streaming") is None
    assert BackupAccess.from_groups({}).server is None
    with pytest.raises(CodebError, match="one backup server"):
        BackupAccess.from_groups(groups(backup=[("b1", "10.0.0.8"), ("b2", "10.0.0.9")]))
    with pytest.raises(CodebError, match="storage: set `private_address`"):
        BackupAccess.from_groups(groups(storage=[("storage", None)]))


def test_authorized_key_is_bound_to_its_source_and_restricted():
    assert authorized_key_line(KEY, ["10.0.0.5"]) == f'from="10.0.0.5",restrict {KEY}'
    with pytest.raises(CodebError):
        authorized_key_line(KEY, [])
    with pytest.raises(CodebError):
        authorized_key_line(KEY, ["10.0.0.5,0.0.0.0/0"])


@given(st.text(min_size=1, max_size=40))
def test_nothing_but_one_public_key_line_is_ever_authorized(suffix: str):
    for candidate in (f"{KEY}\n{suffix}", f"{suffix}\n{KEY}", f'command="{suffix}" {KEY}'):
        try:
            line = authorized_key_line(candidate, ["10.0.0.5"])
        except CodebError:
            continue
        assert "\n" not in line and line.startswith('from="10.0.0.5",restrict ssh-')


def test_known_hosts_line_names_the_server_and_drops_the_comment():
    assert (
        known_hosts_line(["backup", "10.0.0.8", "backup"], "ssh-ed25519 AAAAC3Nz root@backup")
        == "backup,10.0.0.8 ssh-ed25519 AAAAC3Nz"
    )


@given(st.text(max_size=30))
def test_env_keys_and_role_names_are_plain_identifiers(value: str):
    for check, alphabet in (
        (env_key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
        (role_name, "abcdefghijklmnopqrstuvwxyz0123456789_"),
    ):
        try:
            check(value)
        except CodebError:
            continue
        assert value and set(value) <= set(alphabet)


def test_secret_commands_read_passwords_inside_the_remote_shell_only():
    generate = str(secret_commands.generate("/etc/codeb/secrets/redis.password", 40))
    assert generate.startswith("[ -s /etc/codeb/secrets/redis.password ] ||")  # never overwritten
    assert "umask 077" in generate and "/dev/urandom" in generate
    login = str(
        postgres_commands.set_login_role(
            role="codeb_admin", password_file="/etc/codeb/secrets/p", attributes=["LOGIN", "CREATEDB"]
        )
    )
    assert 'CODEB_PGPASSWORD="$(cat /etc/codeb/secrets/p )" runuser -u postgres -- psql' in login
    assert r"'\getenv password CODEB_PGPASSWORD'" in login
    assert "log_min_error_statement" in login and "VERBOSITY terse" in login
    assert "LOGIN CREATEDB NOCREATEROLE NOSUPERUSER NOREPLICATION PASSWORD :'\"'\"'password'\"'\"';" in login
    acl = str(
        redis_commands.write_acl(
            path="/etc/redis/codeb-acl.conf", password_file="/etc/codeb/secrets/r", users_dir="/etc/codeb/secrets/u"
        )
    )
    assert "sha256sum < /etc/codeb/secrets/r" in acl and "chmod 640" in acl
    with pytest.raises(CodebError):
        secret_commands.add_env_value("/e", "api_key", 40)
    with pytest.raises(ValueError, match="unsafe"):
        ssh_commands.keygen(user="-oProxyCommand=x", path="/k", comment="c")
    with pytest.raises(ValueError, match="length"):
        secret_commands.generate("/s", 8)
