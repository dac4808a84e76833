"""`python -m codeb_infra`: the `codeb` command without relying on where pip put its script."""

from codeb_infra.cli import main

main()
