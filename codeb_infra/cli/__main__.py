"""`python -m codeb_infra.cli`, the same as `codeb`."""

from codeb_infra.cli import main

main()
