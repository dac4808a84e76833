"""Install what each server's role needs; idempotent (a second run changes nothing).

pyinfra inventory.py deploys/bootstrap.py
"""

from pyinfra import host

from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.roles import bootstrap_current_host

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    bootstrap_current_host()
