"""podman command lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyinfra.api import StringCommand

from codeb_infra.commands import command, quoted, safe


def network_list() -> StringCommand:
    return command("podman", "network", "ls", "--format", "json")


def network_create(network: str) -> StringCommand:
    return command("podman", "network", "create", quoted(network))


def ps(labels: Mapping[str, str]) -> StringCommand:
    filters = [part for key, value in labels.items() for part in ("--filter", quoted(f"label={key}={value}"))]
    return command("podman", "ps", "--all", "--format", "json", *filters)


def run(
    *,
    container: str,
    image: str,
    labels: Mapping[str, str],
    network: str,
    host_port: int,
    container_port: int,
    env_files: Sequence[str] = (),
    pull: str,
    restart: str = "always",
) -> StringCommand:
    label_args = [part for key, value in labels.items() for part in ("--label", quoted(f"{key}={value}"))]
    # Later files win: the project's master env (database and Redis credentials) comes last.
    env_args = [part for path in env_files for part in ("--env-file", quoted(path))]
    return command(
        "podman",
        "run",
        "--detach",
        "--name",
        quoted(container),
        *label_args,
        "--network",
        quoted(network),
        "--publish",
        quoted(f"127.0.0.1:{host_port}:{container_port}"),
        "--restart",
        quoted(restart),
        "--pull",
        quoted(pull),
        *env_args,
        quoted(image),
    )


def network_ensured(network: str) -> StringCommand:
    """Create the network unless it exists (one command, for a step that cannot read a fact first)."""
    return command("podman", "network", "exists", quoted(network), "||", network_create(network))


def start(container: str) -> StringCommand:
    return command("podman", "start", quoted(container))


def remove(container: str, *, stop_timeout: int = 10) -> StringCommand:
    return command("podman", "rm", "--force", "--time", str(int(stop_timeout)), "--ignore", quoted(container))


def logs(container: str, *, lines: int) -> StringCommand:
    return command("podman", "logs", "--tail", str(int(lines)), quoted(container), "2>&1")


def image_id(image: str) -> StringCommand:
    return command("podman", "image", "inspect", "--format", "'{{.Id}}'", quoted(image), "2>/dev/null", "||", "true")


def load(archive: str) -> StringCommand:
    return command("podman", "load", "--quiet", "--input", quoted(archive))


def local_image_id_args(engine: str, image: str) -> list[str]:
    """Argument list (no shell) for the controller's own engine: the ID of a local image."""
    return [engine, "image", "inspect", "--format", "{{.Id}}", safe(image)]


def local_save_args(engine: str, image: str, archive: str) -> list[str]:
    return [engine, "save", "--output", safe(archive), safe(image)]


def local_inspect_args(engine: str, image: str) -> list[str]:
    return [engine, "image", "inspect", safe(image)]


def local_import_args(engine: str, archive: str, image: str, changes: list[str]) -> list[str]:
    """``import`` of a root file system tarball, with Dockerfile-style ``changes`` (CMD, LABEL, ...)."""
    return [engine, "import", *(f"--change={safe(change)}" for change in changes), safe(archive), safe(image)]
