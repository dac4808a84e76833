"""Set the variables of a local env file (on this machine) in a project's env: a new env version
when any value changes, live for the next deploy.

    pyinfra inventory.py deploys/env.py --data project=myapp --data env_file=./production.env
    (optional: env=staging)
"""

from pathlib import Path

from pyinfra import host

from codeb_infra import flows
from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.domain import env
from codeb_infra.domain.errors import CodebError
from codeb_infra.flows.env import EnvChange, change

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    source = Path(str(host.data.get("env_file") or ""))
    if not source.is_file():
        raise CodebError(f"env_file {str(source)!r} is not a file on this machine: pass --data env_file=PATH")
    values = env.parse(source.read_text(encoding="utf-8"), source=str(source))
    request = EnvChange.of(
        str(host.data.get("project") or ""), str(host.data.get("env") or "production"), set_values=values
    )
    if flows.is_app_host():
        change(request)
