"""Install what each server's role needs; idempotent (a second run changes nothing).

pyinfra inventory.py deploys/bootstrap.py
"""

from codeb_infra.controller.errors import clear_errors
from codeb_infra.roles import bootstrap_current_host

with clear_errors():
    bootstrap_current_host()
