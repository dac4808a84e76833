"""One tool call in a process of its own: `python -m codeb_infra.api.worker` imports pyinfra (which
gevent-patches its whole process, so it stays out of the API's asyncio process), says `ready`, then
reads one call as a JSON line on stdin, runs the flow through the controller's runner against the
API's inventory (the app server as `@local`), and answers one JSON line on the original stdout.

The API keeps a few started workers waiting, so a call pays no import time. A change gets a worker
of its own that serves that one call, so concurrent changes run side by side and nothing leaks from
one to the next; reads go to a few long-lived readers (`--many`), one call at a time each.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from typing import Any

from codeb_infra import flows
from codeb_infra.api.tools import TOOLS
from codeb_infra.commands import podman as podman_commands
from codeb_infra.controller import releases, runner
from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError, LockHeld
from codeb_infra.domain.requests import SlotRequest
from codeb_infra.flows import env as env_flows
from codeb_infra.flows import releases as release_flows
from codeb_infra.flows.releases import ReleaseRequest

API_REQUEST = "codeb_api_request"
"""Host data naming the API request a flow runs for: the flow's own audit hook then stays quiet,
since the API writes the row itself."""
ACTOR = "codeb_actor"
"""Host data naming who asked (the API key), recorded as the actor of env versions and releases."""
END_OF_OUTPUT = "codeb-worker: end of output"
"""A one-shot worker's last line on stderr, written before its answer."""
LOCKED = re.compile(r"\S+ is locked by [^\n]*")
"""What codeb-state says when another run (a CLI run over SSH, say) holds the deploy lock."""


def _projects() -> list[dict[str, Any]]:
    from pyinfra import host

    from codeb_infra.config.app import HostSettings
    from codeb_infra.facts.registry import ProjectRegistry, SlotRegistry

    settings = HostSettings.from_data(host.data)
    projects = host.get_fact(ProjectRegistry, registry_dir=settings.registry_dir)
    table = host.get_fact(SlotRegistry, registry_dir=settings.registry_dir)
    found = []
    for project, envs in sorted(projects.projects.items()):
        for env, entry in sorted(envs.items(), key=lambda item: item[0].value):
            active = table.pair(project, env).active
            found.append(
                {
                    "project": project,
                    "env": env.value,
                    "domain": entry.domain,
                    "active_slot": active.value if active else None,
                }
            )
    return found


def _status(inventory: str, request: SlotRequest) -> dict[str, Any]:
    return runner.read_facts(inventory, flows.status, SlotRequest(project=request.project, env=request.env))[0]


def _change(inventory: str, flow: Any, request: Any, data: dict[str, str], *, report: bool = True) -> dict[str, Any]:
    result = runner.run_flow(inventory, flow, request, data=data, verbose=False)
    if not result.ok:
        raise _Failed(f"failed on {', '.join(result.failed_hosts)}")
    answer: dict[str, Any] = {"changed": result.changed}
    if report:
        answer["status"] = _status(inventory, request)
    return answer


class _Failed(Exception):
    pass


def _changes(inventory: str, results: list[Any], request: Any) -> dict[str, Any]:
    """The answer of a change made of several runs (env change then deploy, redeploy then promote)."""
    for result in results:
        if not result.ok:
            raise _Failed(f"failed on {', '.join(result.failed_hosts)}")
    return {
        "changed": sum(result.changed for result in results),
        "status": _status(inventory, SlotRequest(project=request.project, env=request.env)),
    }


def run(call: dict[str, Any]) -> Any:
    """The result of one tool call (raises CodebError for what the caller got wrong)."""
    tool = TOOLS[call["tool"]]
    _, request = tool.validate(call["params"])
    inventory = call["inventory"]
    data = {API_REQUEST: call["request_id"], **({ACTOR: call["actor"]} if call.get("actor") else {})}
    if tool.name == "list_projects":
        return runner.read_facts(inventory, _projects)[0]
    if tool.name == "slot_status":
        return _status(inventory, request)
    if tool.name == "deploy_project":
        return _change(inventory, flows.deploy_release, request, data)
    if tool.name == "rollback" and isinstance(request, ReleaseRequest):
        return _changes(inventory, releases.rollback_to_release(inventory, request, data=data), request)
    if tool.name in ("promote", "rollback", "cleanup"):
        # No status read afterwards: a switch answers as soon as the rename is done (ask slot_status).
        return _change(inventory, getattr(flows, tool.name), request, data, report=False)
    if tool.name == "remove_project":
        return _change(inventory, flows.remove_project, request, data, report=False)
    if tool.name == "logs":
        container = names.container_name(request.project, request.env, request.to)
        lines = int(call["params"].get("lines", 100))
        output = runner.run_command(inventory, "app", lambda _: podman_commands.logs(container, lines=lines))
        if not output.ok:
            raise CodebError(
                f"no logs of {container}: {output.stdout.strip().splitlines()[-1:] or 'no such container'}"
            )
        return {"container": container, "lines": output.stdout.splitlines()}
    if tool.name == "health_check":
        from codeb_infra.flows import health

        return health.check(inventory).as_dict()
    if tool.name == "releases":
        return runner.read_facts(inventory, release_flows.listing, *request)[0]
    if tool.name in ("env_list", "env_history"):
        reader = env_flows.listing if tool.name == "env_list" else env_flows.history
        return runner.read_facts(inventory, reader, *request)[0]
    if tool.name == "env_diff":
        found = runner.read_facts(
            inventory, env_flows.version_diff, *request, int(call["params"]["old"]), int(call["params"]["new"])
        )[0]
        return {"added": list(found.added), "changed": list(found.changed), "removed": list(found.removed)}
    if tool.name in ("env_set", "env_unset", "env_restore"):
        if call["params"].get("from_backup"):
            fetched = runner.run_flow(
                inventory, env_flows.fetch_from_backup, request.project, request.env, data=data, verbose=False
            )
            if not fetched.ok:
                raise _Failed("fetching the env store from the backup server failed")
        results = releases.change_env(inventory, request, deploy=bool(call["params"].get("deploy")), data=data)
        return _changes(inventory, results, request)
    if tool.name == "backup_status":
        from codeb_infra.flows import backups

        return backups.status(inventory).as_dict()
    raise CodebError(f"tool {tool.name} has no worker implementation")


def answer(call: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": True, "status": 200, "result": run(call)}
    except LockHeld as error:
        return {"ok": False, "status": 409, "error": str(error)}
    except CodebError as error:
        return {"ok": False, "status": 400 if error.changed_nothing else 500, "error": str(error)}
    except _Failed as error:
        return {"ok": False, "status": 500, "error": f"{call['tool']} {error}"}


def _serve(many: bool) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyinfra_cli.inventory  # noqa: F401 - the import (and gevent's patching) before `ready`

    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever pyinfra prints goes to stderr, never into the reply
    reply.write("ready\n")
    reply.flush()
    for line in sys.stdin:
        call = json.loads(line)
        try:
            result = answer(call)
        except Exception as error:  # the API turns this into a 500 with the request id
            result = {
                "ok": False,
                "status": 500,
                "error": f"unexpected {type(error).__name__}",
                "detail": str(error)[:2000],
            }
        if not many:
            # All it printed is before this line: the API returns on the answer and does not wait
            # for this process to wind down.
            sys.stdout.flush()
            sys.stderr.write(END_OF_OUTPUT + "\n")
            sys.stderr.flush()
        reply.write(json.dumps(result, default=str) + "\n")
        reply.flush()
        if not many:
            break
    return 0


if __name__ == "__main__":
    sys.exit(_serve(many="--many" in sys.argv[1:]))
