"""Print a project's slots as recorded and as running.

pyinfra inventory.py deploys/status.py --data project=myapp [--data env=staging]
"""

import json

from pyinfra import host

from codeb_infra import flows
from codeb_infra.controller.errors import clear_errors
from codeb_infra.domain.requests import SlotRequest

with clear_errors():
    request = SlotRequest.from_data(host.data)
    if flows.is_app_host():
        host.log(json.dumps(flows.status(request), indent=2))
