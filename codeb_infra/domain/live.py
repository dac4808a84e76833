"""The live state of one project/env on the app server, read once by a flow and handed whole to
the pure planners of `domain.decisions`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain import names, plans
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects
from codeb_infra.domain.slots import SlotPair


class LiveContainer(BaseModel):
    """A slot container as podman reports it (its spec and env digest come from its labels)."""

    model_config = ConfigDict(frozen=True)

    name: str
    image: str
    running: bool
    id: str = ""
    spec: str | None = None
    env_digest: str = ""


class LiveSlots(BaseModel):
    """Registry records, containers and pointer files of one project/env on one host."""

    model_config = ConfigDict(frozen=True)

    host: str
    project: str
    env: Environment
    entry: ProjectEnv | None
    pair: SlotPair
    existed: bool  # slots.json holds a record for it (the compare-and-swap expects one)
    containers: dict[str, LiveContainer] = {}
    pointers: dict[str, str | None] = {}  # role (active, preview) -> address, None when absent
    pointer_paths: dict[str, str] = {}
    network: str = "codeb-main"

    @property
    def expect(self) -> str:
        """What the registry write checks against: the slot record this run planned from."""
        return plans.pair_digest(self.pair, existed=self.existed)

    def container(self, slot: Slot) -> LiveContainer | None:
        return self.containers.get(names.container_name(self.project, self.env, slot))

    def healthy(self, slot: Slot, pair: SlotPair | None = None) -> bool:
        """The slot's container runs exactly the release `pair` (default: the live one) records."""
        record = (pair or self.pair).record(slot)
        container = self.container(slot)
        return (
            record.release is not None
            and container is not None
            and container.running
            and container.spec == plans.container_spec(record.release, self.network)
        )


class LiveDeploy(LiveSlots):
    """What a deploy also reads: every project (ports, domains), the site file, the env files'
    digest and whether the server already has a pushed image."""

    projects: Projects = Projects()
    site: str | None = None
    site_path: str = ""
    env_digest: str = ""
    remote_image_id: str | None = None
