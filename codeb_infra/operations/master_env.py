"""A project's master env: composed on the storage server from the project's password files, then
pushed to the app server, where slots read it after their env file so its variables win.

The copy goes from one server's connection to the other's through the controller's memory (SFTP
both ways): the values are in no command line and no output."""

from __future__ import annotations

from io import BytesIO

from pyinfra import host
from pyinfra.api import FunctionCommand, Host, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File, Sha256File

from codeb_infra.commands import master_env as commands
from codeb_infra.domain.data import ProjectData
from codeb_infra.facts.secrets import MasterEnvCurrent
from codeb_infra.operations import Commands
from codeb_infra.operations.secrets import root_only


@operation()
def composed(*, project: str, address: str, postgres_port: int = 5432, redis_port: int = 6379) -> Commands:
    """
    On the storage server: ``DATABASE_URL``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``,
    ``REDIS_URL`` (and ``REDIS_KEY_PREFIX``) of ``project`` in a root-only file, from the
    passwords its database role and Redis user were given.

    + project: project name
    + address: the storage server's address the app server connects to
    + postgres_port, redis_port: where PostgreSQL and Redis listen

    **Example:**

    .. code:: python

        master_env.composed(project="shop", address="10.0.0.4")
    """
    data = ProjectData.of(project)
    current = host.get_fact(
        MasterEnvCurrent, project=project, address=address, postgres_port=postgres_port, redis_port=redis_port
    )
    if current and root_only(host.get_fact(File, path=data.master_env_on_storage)):
        host.noop(f"{data.master_env_on_storage} is current")
        return
    yield commands.write(data, address, postgres_port, redis_port)


def _push(target: Host, source_path: str, target_path: str) -> None:
    buffer = BytesIO()
    if not host.get_file(source_path, buffer):
        raise OperationError(f"could not read {source_path} on {host.name}")
    buffer.seek(0)
    for step in (commands.prepare_copy(target_path), None, commands.finish_copy(target_path)):
        if step is None:
            done = target.put_file(buffer, f"{target_path}.new")
        else:
            done, _ = target.run_shell_command(step)
        if not done:
            raise OperationError(f"could not write {target_path} on {target.name}")


@operation()
def pushed(*, target: str, path: str, source_path: str) -> Commands:
    """
    On the server holding ``source_path``: the inventory host ``target`` gets a root-only copy
    of it at ``path``; copied only when their SHA-256 differ. Runs in this server's order of
    operations, so it follows whatever wrote the file here.

    + target: inventory name of the server that gets the copy
    + path: the copy there
    + source_path: the file here

    **Example:**

    .. code:: python

        master_env.pushed(target="app", path="/opt/codeb/env/shop/master.env",
            source_path="/etc/codeb/secrets/projects/shop.env")
    """
    destination = host.state.inventory.get_host(target, default=None)
    if destination is None:
        raise OperationError(f"{target} is not in the inventory")
    wanted = host.get_fact(Sha256File, path=source_path)
    if wanted is None and host.state.is_executing:
        raise OperationError(f"{host.name} has no {source_path}; compose it first")
    if (
        wanted is not None
        and destination.get_fact(Sha256File, path=path) == wanted
        and root_only(destination.get_fact(File, path=path))
    ):
        host.noop(f"{target}:{path} matches {source_path}")
        return
    yield FunctionCommand(_push, (destination, source_path, path), {})
