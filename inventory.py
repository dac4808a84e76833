"""The four CodeB servers, as documented; override any address with CODEB_<ROLE>_HOST.

    pyinfra inventory.py deploys/promote.py --data project=myapp

Local sandbox servers get an inventory of their own from `codeb sandbox up`.
"""

import os

SHARED = {
    "base_domain": os.environ.get("CODEB_BASE_DOMAIN", "codeb.kr"),
    "tls": os.environ.get("CODEB_TLS", "acme"),
    "ssh_user": os.environ.get("CODEB_SSH_USER", "root"),
}

SERVERS = {
    # role: (name, documented address)
    "app": ("app.codeb.kr", "158.247.203.55"),
    "streaming": ("ws.codeb.kr", "141.164.42.213"),
    "storage": ("db.codeb.kr", "64.176.226.119"),
    "backup": ("backup.codeb.kr", "141.164.37.63"),
}


def _server(role: str) -> list[tuple[str, dict]]:
    name, address = SERVERS[role]
    address = os.environ.get(f"CODEB_{role.upper()}_HOST", address)
    return [(name, {**SHARED, "ssh_hostname": address, "private_address": address, "role": role})]


app = _server("app")
streaming = _server("streaming")
storage = _server("storage")
backup = _server("backup")
