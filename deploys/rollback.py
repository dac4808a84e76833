"""Switch a project's domain back to the slot in its grace period, instantly.

pyinfra inventory.py deploys/rollback.py --data project=myapp [--data to=blue]
(without `to`, each rollback toggles between the two releases)
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
        flows.rollback(request)
