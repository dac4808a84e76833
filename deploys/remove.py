"""Take a project/env off the app server: containers, Caddy site, DNS records, registry entries.

pyinfra inventory.py deploys/remove.py --data project=myapp [--data env=staging] [--data force=true]
(force is needed while the project still serves its domain)
"""

from pyinfra import host

from codeb_infra import flows
from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.domain.requests import SlotRequest

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    request = SlotRequest.from_data(host.data)
    if flows.is_app_host():
        flows.remove_project(request)
