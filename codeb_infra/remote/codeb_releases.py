#!/usr/bin/env python3
"""codeb-releases: the app server's release log (standard library only).

    /opt/codeb/releases/{project}/{env}.json   every release of a project/env, oldest first

`record` adds the release a deploy just made: the controller uploads what it knows (image
reference, slot, env version, who, when, health); this tool adds the number, the image ID the
reference resolved to here, the image's `org.opencontainers.image.version` label, and tags that ID
`localhost/codeb-release/{project}:{env}-{N}` so a rollback finds exactly that image again.
`prune` drops the tags (and images nothing else uses) of the releases the controller names;
`contract` records what became of a release's contract step.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

PROJECT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ENV = re.compile(r"production|staging")
VERSION_LABEL = "org.opencontainers.image.version"


class Failure(Exception):
    pass


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)


class Log:
    def __init__(self, root: str, project: str, env: str) -> None:
        if not PROJECT.fullmatch(project or "") or not ENV.fullmatch(env or ""):
            raise Failure(f"invalid project {project!r} or env {env!r}")
        self.project, self.env = project, env
        self.path = os.path.join(root, "releases", project, f"{env}.json")

    def __enter__(self) -> Log:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self._lock = open(self.path + ".lock", "a")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            with open(self.path, encoding="utf-8") as handle:
                self.data = json.load(handle)
        except FileNotFoundError:
            self.data = {"releases": []}
        return self

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(self.path))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.data, out, indent=1, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def __exit__(self, *exc: object) -> None:
        self._lock.close()

    def release(self, number: int) -> dict[str, Any]:
        for release in self.data["releases"]:
            if release["number"] == number:
                return release
        raise Failure(f"{self.project}/{self.env}: no release {number}")


def inspect(image: str) -> tuple[str | None, str | None]:
    result = _run(["podman", "image", "inspect", "--format", "json", image])
    if result.returncode != 0:
        return None, None
    found = json.loads(result.stdout)[0]
    labels = found.get("Labels") or (found.get("Config") or {}).get("Labels") or {}
    return found.get("Id"), labels.get(VERSION_LABEL)


def record(args: argparse.Namespace) -> int:
    with open(args.meta, encoding="utf-8") as handle:
        meta = json.load(handle)
    with Log(args.root, meta.get("project"), meta.get("env")) as log:
        releases = log.data["releases"]
        number = releases[-1]["number"] + 1 if releases else 1
        image_id, app_version = inspect(meta["image"])
        tag = None
        if image_id and meta.get("health") == "passed":
            tag = f"localhost/codeb-release/{log.project}:{log.env}-{number}"
            if _run(["podman", "tag", image_id, tag]).returncode != 0:
                tag = None
        meta.pop("project", None)
        meta.pop("env", None)
        releases.append(
            {**meta, "number": number, "image_id": image_id, "app_version": app_version, "tag": tag, "pruned": False}
        )
        log.save()
    os.unlink(args.meta)
    print(f"{log.project}/{log.env}: release {number} ({meta['image']}, {meta['health']})")
    return 0


def _in_use(image_id: str) -> bool:
    result = _run(["podman", "ps", "-a", "--filter", f"ancestor={image_id}", "--format", "{{.ID}}"])
    return result.returncode != 0 or bool(result.stdout.strip())


def prune(args: argparse.Namespace) -> int:
    with Log(args.root, args.project, args.env) as log:
        keep_ids = {
            r.get("image_id") for r in log.data["releases"] if not r.get("pruned") and r["number"] not in args.number
        }
        for number in args.number:
            release = log.release(number)
            if release.get("tag"):
                _run(["podman", "untag", release["image_id"], release["tag"]])
            image_id = release.get("image_id")
            if image_id and image_id not in keep_ids and not _in_use(image_id):
                _run(["podman", "rmi", "--force", image_id])
            release["pruned"] = True
            print(f"{log.project}/{log.env}: release {number}'s image pruned")
        log.save()
    return 0


def contract(args: argparse.Namespace) -> int:
    with Log(args.root, args.project, args.env) as log:
        log.release(args.number)["contract_state"] = args.state
        log.save()
    print(f"{args.project}/{args.env}: release {args.number}'s contract step {args.state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeb-releases")
    parser.add_argument("--root", default="/opt/codeb")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record")
    p.add_argument("--meta", required=True, help="uploaded release metadata (JSON)")
    for name in ("prune", "contract"):
        p = sub.add_parser(name)
        p.add_argument("--project", required=True)
        p.add_argument("--env", required=True)
        if name == "prune":
            p.add_argument("--number", type=int, action="append", required=True)
        else:
            p.add_argument("--number", type=int, required=True)
            p.add_argument("--state", choices=("done", "cancelled", "failed"), required=True)
    args = parser.parse_args(argv)
    try:
        return {"record": record, "prune": prune, "contract": contract}[args.command](args)
    except Failure as error:
        sys.stderr.write(f"{error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
