"""The app server's side of `codeb keys` and `codeb audit` (run over SSH in the API's venv), the
audit row a CLI or deploy-script change appends, and the timer that ships the audit head to the
backup server: `python -m codeb_infra.api.admin COMMAND`."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys

from codeb_infra.api.audit import AuditLog, Head
from codeb_infra.api.config import ApiPaths
from codeb_infra.api.keys import KeyStore, make_secret, role
from codeb_infra.domain.errors import CodebError

BACKUP = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "codeb-backup", "/usr/local/lib/codeb/codeb-backup"]


def _keys(paths: ApiPaths) -> KeyStore:
    make_secret(paths.key_secret)
    return KeyStore(paths.keys_db, paths.key_secret)


def keys_create(args: argparse.Namespace, paths: ApiPaths) -> int:
    record, key = _keys(paths).create(
        role=role(args.role), projects=tuple(args.project), expires_days=args.expires, name=args.name
    )
    print(json.dumps(record.as_dict()))
    print(key)
    return 0


def keys_list(args: argparse.Namespace, paths: ApiPaths) -> int:
    print(json.dumps([k.as_dict() for k in _keys(paths).list()]))
    return 0


def keys_revoke(args: argparse.Namespace, paths: ApiPaths) -> int:
    print(json.dumps(_keys(paths).revoke(args.id).as_dict()))
    return 0


def audit_list(args: argparse.Namespace, paths: ApiPaths) -> int:
    print(json.dumps(AuditLog(paths.audit_db).rows(project=args.project, since=args.since, limit=args.limit)))
    return 0


def audit_append(args: argparse.Namespace, paths: ApiPaths) -> int:
    """One row from base64 JSON (a CLI run's change: who, what, outcome; never a secret)."""
    entry = json.loads(base64.b64decode(args.entry))
    AuditLog(paths.audit_db).append(**entry)
    return 0


def shipped_heads() -> list[Head]:
    result = subprocess.run([*BACKUP, "audit-heads"], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise CodebError(f"cannot read the shipped audit heads from the backup server: {result.stderr.strip()[-300:]}")
    return [
        Head(int(seq), digest) for seq, digest in (line.split() for line in result.stdout.splitlines() if line.strip())
    ]


def audit_verify(args: argparse.Namespace, paths: ApiPaths) -> int:
    heads = [] if args.local_only else shipped_heads()
    problem = AuditLog(paths.audit_db).verify(heads)
    rows = AuditLog(paths.audit_db).head()
    print(
        json.dumps(
            {"ok": problem is None, "problem": problem, "rows": rows.seq if rows else 0, "shipped_heads": len(heads)}
        )
    )
    return 0 if problem is None else 1


def ship_head(args: argparse.Namespace, paths: ApiPaths) -> int:
    """The newest row's number and hash, stored on the backup server (never replaced there)."""
    head = AuditLog(paths.audit_db).head()
    if head is None:
        return 0
    body = json.dumps(head.as_dict()).encode()
    rel = f"audit/{head.seq:012d}-{head.hash}"
    result = subprocess.run(
        [*BACKUP, "put", rel, hashlib.sha256(body).hexdigest()],
        input=body,
        capture_output=True,
        timeout=60,
        check=False,
    )
    sys.stderr.write(result.stderr.decode(errors="replace"))
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-api-admin")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keys-create")
    p.add_argument("--role", required=True)
    p.add_argument("--project", action="append", default=[])
    p.add_argument("--expires", type=float)
    p.add_argument("--name")
    sub.add_parser("keys-list")
    p = sub.add_parser("keys-revoke")
    p.add_argument("id")
    p = sub.add_parser("audit-list")
    p.add_argument("--project")
    p.add_argument("--since")
    p.add_argument("--limit", type=int, default=1000)
    p = sub.add_parser("audit-append")
    p.add_argument("entry")
    p = sub.add_parser("audit-verify")
    p.add_argument("--local-only", action="store_true", help="do not compare with the heads on the backup server")
    sub.add_parser("ship-head")
    args = parser.parse_args(argv)
    commands = {
        "keys-create": keys_create,
        "keys-list": keys_list,
        "keys-revoke": keys_revoke,
        "audit-list": audit_list,
        "audit-append": audit_append,
        "audit-verify": audit_verify,
        "ship-head": ship_head,
    }
    try:
        return commands[args.command](args, ApiPaths.from_environ())
    except CodebError as error:
        sys.stderr.write(f"{error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
