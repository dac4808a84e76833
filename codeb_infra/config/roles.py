"""Settings of the storage, streaming and backup servers, read from host data, and the text their
services are configured with. Pure: values in, validated values or text out."""

from __future__ import annotations

import ipaddress
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError, host_data_error

SECRETS_DIR = "/etc/codeb/secrets"
POSTGRES_ADMIN_PASSWORD = f"{SECRETS_DIR}/postgres-admin.password"
REDIS_PASSWORD = f"{SECRETS_DIR}/redis.password"
REDIS_CONFIG = "/etc/redis/codeb.conf"
REDIS_ACL = "/etc/redis/codeb-acl.conf"
CENTRIFUGO_SECRETS = f"{SECRETS_DIR}/centrifugo.env"
# Centrifugo v5 reads every option from CENTRIFUGO_<OPTION>; these four are its secrets.
CENTRIFUGO_SECRET_KEYS = (
    "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY",
    "CENTRIFUGO_API_KEY",
    "CENTRIFUGO_ADMIN_PASSWORD",
    "CENTRIFUGO_ADMIN_SECRET",
)
CENTRIFUGO_CONFIG = "/etc/codeb/centrifugo/config.json"
CENTRIFUGO_CONTAINER_CONFIG = "/centrifugo/config.json"
CENTRIFUGO_CONTAINER_PORT = 8000
"""Centrifugo's client endpoints (`/connection/websocket`, ...) inside its container."""
CENTRIFUGO_CONTAINER_INTERNAL_PORT = 9000
"""Its server API, admin, health and metrics inside its container (Centrifugo's `internal_port`)."""

BACKUP_USER = "codeb-backup"
BACKUP_HOME = "/var/lib/codeb-backup"
BACKUP_AREAS = ("wal", "base", "dumps", "env", "redis", "drills")
BACKUP_SCRATCH = f"{BACKUP_HOME}/scratch"
BACKUP_KEY_NAME = "codeb_backup_ed25519"
BACKUP_SSH_ALIAS = "codeb-backup"
REPORT_TOOL = "/usr/local/lib/codeb/codeb-report"  # TOOLS_DIR of domain.data
REPORT_CONFIG = "/etc/codeb/report.json"
"""The whitelist of read-only reports codeb-report answers on streaming, storage and backup (root's own file)."""
REPORT_USER = "root"
"""The account the API's report key logs in to: its reports read PostgreSQL's WAL status, the Redis
password file, the mesh's handshakes and the backup areas. The key's forced command allows nothing else."""
REPORT_SERVERS_KEY = "codeb_report_servers"
"""Host data of the API's app server (its inventory): the servers it reads through their reports,
as dicts of name, roles, address and the host data their checks are judged by."""
API_REPORT_KEY = "/etc/codeb/api/report_ed25519"
API_KNOWN_HOSTS = "/etc/codeb/api/known_hosts"

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_PUBLIC_KEY = re.compile(
    r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( [\x21-\x7e ]{0,200})?$"
)
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
ROLE_ATTRIBUTES = ("LOGIN", "CREATEDB", "CREATEROLE", "SUPERUSER", "REPLICATION")


def ip_address(value: object, what: str = "address") -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise CodebError(f"invalid {what} {value!r}: expected an IP address like 10.0.0.5") from None


def network(value: object) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise CodebError(f"invalid network {value!r}: expected an address or a CIDR like 10.0.0.0/24") from None


def role_name(value: object) -> str:
    if not isinstance(value, str) or not _ROLE_NAME.fullmatch(value):
        raise CodebError(f"invalid database role {value!r}: use lowercase letters, digits and '_'")
    return value


def env_key(value: object) -> str:
    if not isinstance(value, str) or not _ENV_KEY.fullmatch(value):
        raise CodebError(f"invalid variable name {value!r}: use A-Z, 0-9 and '_', starting with a letter")
    return value


def role_attributes(values: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(v.upper() for v in values))
    unknown = [v for v in wanted if v not in ROLE_ATTRIBUTES]
    if unknown:
        raise CodebError(f"unknown role attributes {unknown}: use {', '.join(ROLE_ATTRIBUTES)}")
    return wanted


def public_key(value: object) -> str:
    """One OpenSSH public key line (`type base64 [comment]`)."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _PUBLIC_KEY.fullmatch(text):
        raise CodebError(f"not an OpenSSH public key: {str(value)[:60]!r}")
    return text


def host_name(value: object) -> str:
    if not isinstance(value, str) or not _HOST_NAME.fullmatch(value):
        raise CodebError(f"invalid host name {value!r}")
    return value


def _plain_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "\n\r\t '\"$`;&|<>{}*?\\"):
        raise ValueError("must be an absolute plain path")
    return value


class HostData(Protocol):
    """pyinfra's host data, or any mapping."""

    def get(self, key: str, default: Any = None) -> Any: ...


def _from_data(model: type[BaseModel], data: HostData, keys: Iterable[str]) -> Any:
    given = {key: data.get(key) for key in keys if data.get(key) is not None}
    try:
        return model(**given)
    except ValidationError as error:
        raise host_data_error(error) from None


def _address(value: object) -> str:
    try:
        return ip_address(value, "private_address")
    except CodebError as error:
        raise ValueError(str(error)) from None


class StorageSettings(BaseModel):
    """Host data of the storage server (PostgreSQL and Redis)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    private_address: str
    postgres_version: int = 15
    postgres_admin_role: str = "codeb_admin"
    private_network: tuple[str, ...] = ()
    """Who may connect over the network; empty means the inventory's other servers."""
    archive_timeout: int = 60
    """Seconds after which a WAL segment is shipped even if not full: the most an idle database
    can lose (each switch costs one 16 MB segment on the backup server, compressed by nothing)."""

    @field_validator("private_address")
    @classmethod
    def _private_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("postgres_version")
    @classmethod
    def _version(cls, value: int) -> int:
        # psql's \getenv, used to hand the password over without a command line, is 15+.
        if not 15 <= value <= 99:
            raise ValueError("PostgreSQL 15 or later")
        return value

    @field_validator("postgres_admin_role")
    @classmethod
    def _role(cls, value: str) -> str:
        try:
            return role_name(value)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @field_validator("archive_timeout")
    @classmethod
    def _archive_timeout(cls, value: int) -> int:
        if not 5 <= value <= 3600:
            raise ValueError("between 5 and 3600 seconds")
        return value

    @field_validator("private_network", mode="before")
    @classmethod
    def _networks(cls, value: object) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        try:
            return tuple(network(v) for v in values)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @classmethod
    def from_data(cls, data: HostData) -> StorageSettings:
        result: StorageSettings = _from_data(cls, data, cls.model_fields)
        return result

    @property
    def postgres_dir(self) -> str:
        return f"/etc/postgresql/{self.postgres_version}/main"

    @property
    def postgres_unit(self) -> str:
        return f"postgresql@{self.postgres_version}-main.service"

    def client_networks(self, peer_addresses: Iterable[str]) -> tuple[str, ...]:
        """The networks pg_hba lets in with a password: as configured, else each peer alone."""
        if self.private_network:
            return self.private_network
        peers = sorted({network(a) for a in peer_addresses if a and ip_address(a) != self.private_address})
        if not peers:
            raise CodebError("storage: no clients to let in; set `private_network` (e.g. 10.0.0.0/24) in host data")
        return tuple(peers)


class StreamingSettings(BaseModel):
    """Host data of the streaming server (Centrifugo)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    private_address: str
    centrifugo_image: str = "docker.io/centrifugo/centrifugo:v5"
    centrifugo_port: int = 8000
    """The client endpoints, on 127.0.0.1 only: the server's Caddy serves them as ws.{base_domain}."""
    centrifugo_internal_port: int = 9000
    """Server API, admin, health and metrics, on the private (mesh) address only."""
    base_domain: str = "codeb.kr"

    @field_validator("private_address")
    @classmethod
    def _private_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("centrifugo_image")
    @classmethod
    def _image(cls, value: str) -> str:
        try:
            return names.image_reference(value)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @field_validator("centrifugo_port", "centrifugo_internal_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @field_validator("base_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        try:
            return names.domain_name(value)
        except CodebError as error:
            raise ValueError(str(error)) from None

    @classmethod
    def from_data(cls, data: HostData) -> StreamingSettings:
        result: StreamingSettings = _from_data(cls, data, cls.model_fields)
        return result

    @property
    def publish(self) -> tuple[str, ...]:
        """`address:port:container_port` for podman (IPv6 addresses in brackets): the client port
        on loopback, for Caddy, and the internal port on the private address, for the servers."""
        address = f"[{self.private_address}]" if ":" in self.private_address else self.private_address
        return (
            f"127.0.0.1:{self.centrifugo_port}:{CENTRIFUGO_CONTAINER_PORT}",
            f"{address}:{self.centrifugo_internal_port}:{CENTRIFUGO_CONTAINER_INTERNAL_PORT}",
        )

    @property
    def client_upstream(self) -> str:
        """Where the server's Caddy reaches Centrifugo's client endpoints."""
        return f"127.0.0.1:{self.centrifugo_port}"


def centrifugo_config(settings: StreamingSettings) -> str:
    """Centrifugo v5's config file: everything but the secrets, which come from the environment.
    With `internal_port` its API, admin, health and metrics leave the client port to the clients."""
    config = {
        "port": CENTRIFUGO_CONTAINER_PORT,
        "internal_port": CENTRIFUGO_CONTAINER_INTERNAL_PORT,
        "health": True,
        "admin": True,
        "allowed_origins": [f"https://{settings.base_domain}", f"https://*.{settings.base_domain}"],
        "log_level": "info",
    }
    return json.dumps(config, indent=2) + "\n"


class BackupSettings(BaseModel):
    """Host data of the backup server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backup_root: str = "/srv/backup"
    postgres_version: int = 15
    keep_days: int = 7
    """Base backups and dumps are kept this long (WAL as long as the oldest base backup needs it)."""
    rdb_hours: int = 24

    @field_validator("keep_days", "rdb_hours")
    @classmethod
    def _retention(cls, value: int) -> int:
        if not 1 <= value <= 3650:
            raise ValueError("between 1 and 3650")
        return value

    @field_validator("postgres_version")
    @classmethod
    def _pg_version(cls, value: int) -> int:
        if not 15 <= value <= 99:
            raise ValueError("PostgreSQL 15 or later")
        return value

    @property
    def postgres_bin(self) -> str:
        return f"/usr/lib/postgresql/{self.postgres_version}/bin"

    @field_validator("backup_root")
    @classmethod
    def _root(cls, value: str) -> str:
        return _plain_path(value)

    @classmethod
    def from_data(cls, data: HostData) -> BackupSettings:
        result: BackupSettings = _from_data(cls, data, cls.model_fields)
        return result

    @property
    def areas(self) -> tuple[str, ...]:
        return tuple(posixpath.join(self.backup_root, area) for area in BACKUP_AREAS)


class BackupClient(BaseModel):
    """A server that sends backups: which account holds the key and where it connects from."""

    model_config = ConfigDict(frozen=True)

    host: str
    user: str
    home: str
    address: str

    @property
    def key(self) -> str:
        return posixpath.join(self.home, ".ssh", BACKUP_KEY_NAME)

    @property
    def comment(self) -> str:
        return f"{self.user}@{self.host} codeb-backup"


class BackupServer(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    address: str


# Which account on which server sends backups: PostgreSQL's WAL archive and dumps on storage,
# env files on app.
CLIENT_ACCOUNTS: dict[str, tuple[str, str]] = {
    "storage": ("postgres", "/var/lib/postgresql"),
    "app": ("root", "/root"),
}


class BackupAccess(BaseModel):
    """Who may send backups to whom, read from the inventory's groups and private addresses."""

    model_config = ConfigDict(frozen=True)

    server: BackupServer | None
    clients: tuple[BackupClient, ...]

    @classmethod
    def from_groups(cls, groups: Mapping[str, Iterable[tuple[str, object]]]) -> BackupAccess:
        """`groups` maps a role to its hosts as (name, private_address) pairs."""
        servers = [(name, address) for name, address in groups.get("backup", ())]
        if len(servers) > 1:
            raise CodebError(f"backup: expected one backup server, the inventory has {len(servers)}")
        server = None
        if servers:
            name, address = servers[0]
            server = BackupServer(host=host_name(name), address=_required_address(name, address))
        clients = []
        for role, (user, home) in CLIENT_ACCOUNTS.items():
            for name, address in groups.get(role, ()):
                clients.append(
                    BackupClient(host=host_name(name), user=user, home=home, address=_required_address(name, address))
                )
        return cls(server=server, clients=tuple(clients))

    def client(self, host: str) -> BackupClient | None:
        return next((c for c in self.clients if c.host == host), None)

    def is_server(self, host: str) -> bool:
        return self.server is not None and self.server.host == host


def _required_address(host: str, value: object) -> str:
    if value is None:
        raise CodebError(f"{host}: set `private_address` in host data")
    return ip_address(value, f"private_address of {host}")


def authorized_key_line(key: str, addresses: Iterable[str]) -> str:
    """A key that may log in only from these addresses, with no terminal and no forwarding."""
    sources = ",".join(ip_address(a) for a in addresses)
    if not sources:
        raise CodebError("a backup key needs at least one source address")
    return f'from="{sources}",restrict {public_key(key)}'


REPORT_KEY_COMMENT = "codeb-api-reports"
"""The comment the report key's line ends with in authorized_keys: how it is found again."""


def report_key_line(key: str, address: str) -> str:
    """The API's report key: from the app server's internal address only, no terminal or forwarding,
    and whatever the client asks, sshd runs codeb-report, which answers only its whitelist."""
    kind, blob = public_key(key).split()[:2]
    return (
        f'restrict,from="{ip_address(address)}",command="python3 {REPORT_TOOL} {REPORT_CONFIG}" '
        f"{kind} {blob} {REPORT_KEY_COMMENT}"
    )


def with_report_key(authorized: str | None, line: str | None) -> str:
    """``authorized`` (an authorized_keys file) with the report key's line replaced by ``line``
    (removed for None); every other line kept as it is."""
    kept = [
        entry
        for entry in (authorized or "").splitlines()
        if not entry.rstrip().endswith(f" {REPORT_KEY_COMMENT}") and entry.strip()
    ]
    return "".join(f"{entry}\n" for entry in [*kept, *([line] if line else [])])


def known_hosts_line(hosts: Iterable[str], key: str) -> str:
    """`name,address keytype base64` (the comment of a host key is dropped)."""
    patterns = ",".join(dict.fromkeys(hosts))
    kind, blob = public_key(key).split()[:2]
    return f"{patterns} {kind} {blob}"
