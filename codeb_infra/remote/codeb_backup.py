"""codeb-backup: the backup server's side of PostgreSQL and Redis backups.

Receives files from the storage server (`put`), expires them (`prune`), reports (`status`) and
proves they restore (`drill`, `restore-pitr`) in scratch processes that never touch a live service.
Runs as user codeb-backup, owner of the backup root; standard library only. The installed entry
script (bin/codeb-backup) runs `main`; the modules beside this one do the work.
"""

from __future__ import annotations

import argparse

from . import codeb_backup_restore as restore
from . import codeb_backup_store as store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-backup")
    parser.add_argument("--root", default="/srv/backup")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("put", help="store stdin as REL if its sha256 matches")
    p.add_argument("rel")
    p.add_argument("sha256")
    p.add_argument("--replace", action="store_true")
    p = sub.add_parser("get", help="print an env file stored as REL")
    p.add_argument("rel")
    p = sub.add_parser("prune")
    p.add_argument("--keep-days", type=float, default=7)
    p.add_argument("--rdb-hours", type=float, default=24)
    sub.add_parser("status")
    sub.add_parser("audit-heads")
    for name in ("drill", "restore-pitr"):
        p = sub.add_parser(name)
        p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
        p.add_argument("--scratch", default="/var/lib/codeb-backup/scratch")
        p.add_argument("--timeout", type=float, default=600)
        if name == "drill":
            p.add_argument("--redis-server", default="redis-server")
            p.add_argument("--redis-cli", default="redis-cli")
        else:
            p.add_argument("database", nargs="?")
            p.add_argument("--to")
            p.add_argument("--json", action="store_true")
            p.add_argument("--drop", metavar="NAME")
            p.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    actions = {
        "put": store.put,
        "get": store.get,
        "prune": store.prune,
        "status": store.status,
        "drill": restore.drill,
        "restore-pitr": restore.restore_pitr,
        "audit-heads": store.audit_heads,
    }
    return actions[args.command](args)
