"""Remove slots whose grace period has ended (force=true: any slot in grace or failed).

pyinfra inventory.py deploys/cleanup.py --data project=myapp [--data force=true]
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
        flows.cleanup(request)
