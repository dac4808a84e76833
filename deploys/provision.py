"""Give a project its own database, role and Redis user, and its master env on the app server.

pyinfra inventory.py deploys/provision.py --data project=myapp      (same as: codeb provision myapp)
"""

from pyinfra import host

from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.flows.provision import provision

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    provision(host.data.get("project"))
