"""A project's own data on the storage server: a database and a role that alone may connect to it,
a Redis user limited to the project's key prefix, and the master env holding their credentials,
pushed to the app server(s) where the project's slots read it."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from codeb_infra.config.app import HostSettings
from codeb_infra.config.roles import REDIS_ACL, REDIS_PASSWORD, StorageSettings
from codeb_infra.domain.data import REDIS_USERS_DIR, ProjectData
from codeb_infra.domain.errors import CodebError
from codeb_infra.operations import master_env, postgres, redis, secrets
from codeb_infra.roles.network import internal_data


def app_env_paths(project: str) -> list[tuple[str, str]]:
    """(app host name, master env path there) for each app server of the inventory."""
    apps = host.state.inventory.get_group("app", default=[])
    if not apps:
        raise CodebError("the inventory has no app server (group `app`) to give the master env to")
    return [(app.name, HostSettings.from_data(app.data).master_env_file(project)) for app in apps]


@deploy("codeb provision")
def provision(project: str) -> None:
    """Run on every host of the inventory; only the storage server does anything."""
    data = ProjectData.of(project)
    if "storage" not in host.groups:
        return
    settings = StorageSettings.from_data(internal_data(host))
    targets = app_env_paths(project)
    secrets.secret(name=f"Database password of {project}", path=data.postgres_password_file)
    secrets.secret(name=f"Redis password of {project}", path=data.redis_password_file)
    postgres.login_role(
        name=f"PostgreSQL role {data.role}",
        role=data.role,
        password_file=data.postgres_password_file,
        attributes=["LOGIN"],
    )
    postgres.database(
        name=f"Database {data.database}, for {data.role} alone",
        database_name=data.database,
        owner=data.role,
        comment=data.comment,
    )
    redis.acl(
        name=f"Redis user {data.redis_user} limited to {data.key_prefix}*",
        path=REDIS_ACL,
        password_file=REDIS_PASSWORD,
        users_dir=REDIS_USERS_DIR,
        reload=True,
    )
    master_env.composed(name=f"Master env of {project}", project=project, address=settings.private_address)
    for target, path in targets:
        master_env.pushed(
            name=f"Master env of {project} on {target}",
            target=target,
            path=path,
            source_path=data.master_env_on_storage,
        )
