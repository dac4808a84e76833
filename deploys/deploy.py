"""Deploy a release into the inactive slot and print its preview URL.

pyinfra inventory.py deploys/deploy.py --data project=myapp --data image=registry.example.com/myapp:2.0
(optional: env=staging, container_port=3000, health_path=/health, domain=..., force=true)
"""

from pyinfra import host

from codeb_infra import flows
from codeb_infra.controller.errors import clear_errors
from codeb_infra.controller.transport import without_delay
from codeb_infra.domain.requests import DeployRequest

without_delay(host)  # one round trip per remote command, not one delayed ACK
with clear_errors():
    request = DeployRequest.from_data(host.data)
    if flows.is_app_host():
        flows.deploy_release(request)
