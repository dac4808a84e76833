"""Containers and networks as podman reports them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from pyinfra.api import FactBase, StringCommand

from codeb_infra.commands import podman as podman_commands
from codeb_infra.domain.errors import CodebError

SPEC_LABEL = "codeb.spec"
ENV_LABEL = "codeb.env-digest"  # digest of the env file the container started with, never its values


class Container(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    id: str
    image: str
    running: bool
    labels: dict[str, str]

    @property
    def spec(self) -> str | None:
        return self.labels.get(SPEC_LABEL)

    @property
    def env_digest(self) -> str:
        return self.labels.get(ENV_LABEL, "")


class CodebContainers(FactBase[list[Container]]):
    """The slot containers of one project/env (found by their codeb.* labels)."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "podman"

    def command(self, project: str, env: str) -> StringCommand:
        return podman_commands.ps({"codeb.project": project, "codeb.environment": env})

    @staticmethod
    def default() -> list[Container]:
        return []

    def process(self, output: list[str]) -> list[Container]:
        try:
            rows = json.loads("".join(output) or "[]")
            return [
                Container(
                    name=row["Names"][0],
                    id=row["Id"],
                    image=row["Image"],
                    running=row.get("State") == "running",
                    labels=row.get("Labels") or {},
                )
                for row in rows
            ]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise CodebError(f"could not read `podman ps` output: {error}") from None


class PodmanNetworks(FactBase[set[str]]):
    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "podman"

    def command(self) -> StringCommand:
        return podman_commands.network_list()

    @staticmethod
    def default() -> set[str]:
        return set()

    def process(self, output: list[str]) -> set[str]:
        try:
            return {row["name"] for row in json.loads("".join(output) or "[]")}
        except (ValueError, KeyError, TypeError) as error:
            raise CodebError(f"could not read `podman network ls` output: {error}") from None


class SlotRunner(FactBase[str]):
    """How slot containers run here: `quadlet` (systemd units) or `podman` (restart policy only)."""

    def command(self) -> StringCommand:
        from codeb_infra.commands import systemd as systemd_commands

        return systemd_commands.quadlet_available()

    @staticmethod
    def default() -> str:
        return "podman"

    def process(self, output: list[str]) -> str:
        return "quadlet" if output and output[-1].strip() == "quadlet" else "podman"


class ImageId(FactBase[str | None]):
    """The ID of an image in the server's podman store, None when it is not there."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "podman"

    def command(self, image: str) -> StringCommand:
        return podman_commands.image_id(image)

    def process(self, output: list[str]) -> str | None:
        text = "".join(output).strip()
        return text or None
