from datetime import UTC, datetime

import pytest

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot
from codeb_infra.domain.registry import ProjectEnv, Projects, SlotTable
from codeb_infra.domain.slots import Release, SlotPair, SlotRecord, SlotState
from codeb_infra.facts.files import MISSING, CaddySite, TextFile, UpstreamPointer
from codeb_infra.facts.podman import CodebContainers, Container, PodmanNetworks
from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry
from codeb_infra.operations import caddy, podman, registry
from tests.unit.fake_host import commands, fact

SLOT = dict(
    project="myapp",
    env="production",
    slot="green",
    image="localhost/app:v2",
    host_port=4052,
    container_port=3000,
    network="codeb-main",
    spec="abc123",
)


UNIT = "/etc/containers/systemd/myapp-production-green.container"


def live(*containers):
    """The containers fact as a slot operation reads it: the project's own, by project and env."""
    return {fact(CodebContainers, project="myapp", env="production"): list(containers)}


def container(spec="abc123", running=True):
    return Container(
        name="myapp-production-green", id="f00", image="localhost/app:v2", running=running, labels={"codeb.spec": spec}
    )


def test_network_created_only_when_missing():
    assert commands(podman.network, {PodmanNetworks: set()}, network="codeb-main")[0] == [
        "podman network create codeb-main"
    ]
    cmds, noops = commands(podman.network, {PodmanNetworks: {"codeb-main"}}, network="codeb-main")
    assert cmds == [] and noops == ["network codeb-main exists"]


def test_slot_container_is_created_with_labels_port_and_no_pull_for_local_images():
    cmds, _ = commands(podman.slot_container, live(), **SLOT)
    assert cmds == [
        "podman rm --force --time 10 --ignore myapp-production-green",
        "podman run --detach --name myapp-production-green --label codeb.project=myapp "
        "--label codeb.environment=production --label codeb.slot=green --label codeb.spec=abc123 "
        "--network codeb-main --publish 127.0.0.1:4052:3000 --restart always --pull never localhost/app:v2",
    ]


def test_remote_images_are_pulled_when_newer_and_env_files_are_passed_master_last():
    files = ["/opt/codeb/env/myapp/production.env", "/opt/codeb/env/myapp/master.env"]
    cmds, _ = commands(podman.slot_container, live(), **{**SLOT, "image": "ghcr.io/a/app:2", "env_files": files})
    assert (
        "--pull newer --env-file /opt/codeb/env/myapp/production.env "
        "--env-file /opt/codeb/env/myapp/master.env ghcr.io/a/app:2"
    ) in cmds[1]


def test_quadlet_unit_reads_env_files_in_order():
    content = podman.render(
        "slot.container.j2",
        container="c",
        labels={},
        image="i",
        network="n",
        host_port=1,
        container_port=2,
        env_files=["/a.env", "/master.env"],
        pull="never",
    )
    assert "EnvironmentFile=/a.env\nEnvironmentFile=/master.env\n" in content


def test_a_changed_env_file_replaces_the_container():
    cmds, _ = commands(podman.slot_container, live(container()), **{**SLOT, "env_files": ["/e"], "env_digest": "d1"})
    assert cmds[0].startswith("podman rm") and "--label codeb.env-digest=d1" in cmds[1]


def test_same_spec_running_is_a_noop_and_stopped_is_started():
    cmds, noops = commands(podman.slot_container, live(container()), **SLOT)
    assert cmds == [] and noops
    cmds, _ = commands(podman.slot_container, live(container(running=False)), **SLOT)
    assert cmds == ["podman start myapp-production-green"]


def test_changed_spec_replaces_the_container():
    cmds, _ = commands(podman.slot_container, live(container(spec="old")), **SLOT)
    assert cmds[0].startswith("podman rm --force") and cmds[1].startswith("podman run")


def test_slot_removed():
    gone = {**live(), fact(TextFile, path=UNIT): None}
    assert commands(podman.slot_removed, gone, project="myapp", env="production", slot="green")[0] == []
    cmds, _ = commands(
        podman.slot_removed,
        {**live(container()), fact(TextFile, path=UNIT): None},
        project="myapp",
        env="production",
        slot="green",
    )
    assert cmds == ["podman rm --force --time 10 --ignore myapp-production-green"]


def test_slot_removed_with_its_quadlet_unit():
    cmds, _ = commands(
        podman.slot_removed,
        {**live(container()), fact(TextFile, path=UNIT): "[Container]"},
        project="myapp",
        env="production",
        slot="green",
    )
    assert cmds == [
        "systemctl stop -- myapp-production-green.service",
        "systemctl reset-failed -- myapp-production-green.service",
        "rm -f -- /etc/containers/systemd/myapp-production-green.container",
        "systemctl daemon-reload",
        "podman rm --force --time 10 --ignore myapp-production-green",
    ]


def test_quadlet_slot_unit_written_then_restarted_and_noop_when_current(monkeypatch):
    from pyinfra.api.command import StringCommand

    # pyinfra's own upload needs a full State; stand in for it with a marker command.
    monkeypatch.setattr(podman.files.put, "_inner", lambda src, dest, mode: iter([StringCommand("upload", dest)]))

    fake_facts = {**live(), fact(TextFile, path=UNIT): None}
    from pyinfra.context import ctx_host

    from tests.unit.fake_host import FakeHost

    fake = FakeHost(fake_facts)
    with ctx_host.use(fake):
        generated = list(
            podman._quadlet_slot(
                "myapp-production-green",
                None,
                "abc123",
                labels={"codeb.spec": "abc123"},
                image="localhost/app:v2",
                network="codeb-main",
                host_port=4052,
                container_port=3000,
                env_files=(),
                pull="never",
            )
        )
    assert [str(c) for c in generated] == [
        "upload /etc/containers/systemd/myapp-production-green.container",
        "systemctl daemon-reload",
        "systemctl reset-failed -- myapp-production-green.service",
        "systemctl restart myapp-production-green.service",
    ]
    labels = {
        "codeb.project": "myapp",
        "codeb.environment": "production",
        "codeb.slot": "green",
        "codeb.spec": "abc123",
    }
    content = podman.render(
        "slot.container.j2",
        container="myapp-production-green",
        labels=labels,
        image="localhost/app:v2",
        network="codeb-main",
        host_port=4052,
        container_port=3000,
        env_files=(),
        pull="never",
    )
    assert (
        "PublishPort=127.0.0.1:4052:3000" in content
        and "Pull=never" in content
        and "WantedBy=multi-user.target" in content
    )
    cmds, noops = commands(
        podman.slot_container,
        {**live(container()), fact(TextFile, path=UNIT): content.rstrip("\n")},
        **{**SLOT, "runner": "quadlet"},
    )
    assert noops and cmds == [], "a slot whose unit and container are current is left alone"


def test_upstream_pointer_written_atomically_only_when_different():
    path = "/etc/caddy/upstreams/myapp-production.active"
    cmds, _ = commands(
        caddy.upstream, {fact(UpstreamPointer, path=path): "127.0.0.1:4051"}, path=path, address="127.0.0.1:4052"
    )
    assert cmds == [
        "mkdir -p -- /etc/caddy/upstreams && printf '%s\\n' 127.0.0.1:4052 > "
        "/etc/caddy/upstreams/myapp-production.active.tmp && mv -f "
        "/etc/caddy/upstreams/myapp-production.active.tmp /etc/caddy/upstreams/myapp-production.active"
    ]
    assert (
        commands(
            caddy.upstream, {fact(UpstreamPointer, path=path): "127.0.0.1:4052"}, path=path, address="127.0.0.1:4052"
        )[0]
        == []
    )


def test_site_unchanged_is_a_noop():
    cmds, noops = commands(
        caddy.site,
        {fact(CaddySite, path="/etc/caddy/sites/a-production.caddy"): "site {\n}"},
        path="/etc/caddy/sites/a-production.caddy",
        content="site {\n}\n",
        caddyfile="/etc/caddy/Caddyfile",
    )
    assert cmds == [] and noops == ["/etc/caddy/sites/a-production.caddy is up to date"]


def _pair(state=SlotState.DEPLOYED):
    release = Release(image="localhost/app:v1", port=4051, container_port=3000, health_path="/health")
    return SlotPair(
        project="myapp",
        env=Environment.PRODUCTION,
        blue=SlotRecord(state=state, release=release, deployed_at=datetime(2026, 1, 1, tzinfo=UTC)),
    )


def test_slot_pair_write_carries_the_expected_digest_and_skips_when_recorded():
    pair = _pair()
    cmds, _ = commands(
        registry.slot_pair,
        {fact(SlotRegistry, registry_dir="/opt/codeb/registry"): SlotTable()},
        registry_dir="/opt/codeb/registry",
        tool="/opt/codeb/bin/codeb-state",
        pair=pair,
        expect="none",
    )
    assert len(cmds) == 1
    assert cmds[0].startswith(
        "python3 /opt/codeb/bin/codeb-state put-slots --registry /opt/codeb/registry --project myapp --env production --expect none --record "
    )
    table = SlotTable.model_validate({"slots": {"myapp": {"production": {"blue": pair.blue.model_dump(mode="json")}}}})
    assert (
        commands(
            registry.slot_pair,
            {fact(SlotRegistry, registry_dir="/r"): table},
            registry_dir="/r",
            tool="/t",
            pair=pair,
            expect="x",
        )[0]
        == []
    )


def test_project_entry():
    entry = ProjectEnv(
        domain="myapp.codeb.kr", container_port=3000, health_path="/health", ports={Slot.BLUE: 4051, Slot.GREEN: 4052}
    )
    cmds, _ = commands(
        registry.project_entry,
        {fact(ProjectRegistry, registry_dir="/r"): Projects()},
        registry_dir="/r",
        tool="/t",
        project="myapp",
        env=Environment.PRODUCTION,
        entry=entry,
    )
    assert "put-project" in cmds[0] and "--expect none" in cmds[0]
    known = Projects().with_entry("myapp", Environment.PRODUCTION, entry)
    assert (
        commands(
            registry.project_entry,
            {fact(ProjectRegistry, registry_dir="/r"): known},
            registry_dir="/r",
            tool="/t",
            project="myapp",
            env=Environment.PRODUCTION,
            entry=entry,
        )[0]
        == []
    )


def test_facts_parse_and_fail_clearly():
    assert UpstreamPointer().process(["127.0.0.1:4051 "]) == "127.0.0.1:4051"
    assert UpstreamPointer().process([MISSING]) is None
    assert SlotRegistry().process([MISSING]) == SlotTable()
    with pytest.raises(CodebError, match="slots.json is not a valid registry file"):
        SlotRegistry().process(["{not json"])
    with pytest.raises(CodebError, match="podman ps"):
        CodebContainers().process(["[{}]"])
    rows = '[{"Names": ["myapp-production-blue"], "Id": "abc", "Image": "localhost/app:v1", "State": "running", "Labels": {"codeb.spec": "s"}}]'
    assert CodebContainers().process([rows])[0].spec == "s"


def test_unsafe_arguments_never_reach_a_command_line():
    with pytest.raises(ValueError, match="unsafe"):
        commands(podman.network, {PodmanNetworks: set()}, network="-rf")
    with pytest.raises(ValueError, match="unsafe"):
        commands(caddy.upstream, {fact(UpstreamPointer, path="/x"): None}, path="/x", address="1\n2")
