"""Print a project's slots as recorded and as running.

pyinfra inventory.py deploys/status.py --data project=myapp [--data env=staging]
"""

import json

from pyinfra import host

from codeb_infra import flows
from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.domain.requests import SlotRequest

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    request = SlotRequest.from_data(host.data)
    if flows.is_app_host():
        host.log(json.dumps(flows.status(request), indent=2))
