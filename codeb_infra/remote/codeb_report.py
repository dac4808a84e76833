#!/usr/bin/env python3
"""codeb-report: the forced command of the API's report key on the streaming, storage and backup servers.

sshd runs it for that key whatever the client asked; the client's words arrive in
SSH_ORIGINAL_COMMAND and may only name reports of the whitelist in the config file bootstrap wrote
(`{"reports": {"health": "<command line>", ...}}`, root's own). Each named report's command line
runs as written there (nothing of the client reaches it), and the answer is one JSON object:
`{"health": {"exit": 0, "output": "..."}, ...}`, or `{"error": "refused: ..."}` with exit 2 for
anything else. The reports only read; standard library only.
"""

import json
import os
import re
import subprocess
import sys
from typing import Any

EXIT_REFUSED = 2
TIMEOUT_SECONDS = 60
_WORD = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def load(path: str) -> dict[str, str]:
    with open(path) as handle:
        reports = json.load(handle)["reports"]
    return {str(name): str(line) for name, line in reports.items()}


def asked(original: str | None, reports: dict[str, str]) -> list[str]:
    """The report names the client asked for, or ValueError saying why it is refused."""
    words = (original or "").split()
    if not words:
        raise ValueError(f"name one or more reports of: {', '.join(sorted(reports))}")
    unknown = [w for w in words if not _WORD.fullmatch(w) or w not in reports]
    if unknown:
        shown = ", ".join(repr(w[:40]) for w in unknown[:3])
        raise ValueError(f"not a report: {shown}; this key may only read {', '.join(sorted(reports))}")
    return list(dict.fromkeys(words))


def run(line: str) -> dict[str, Any]:
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", line],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return {"exit": None, "output": "", "error": f"timed out after {TIMEOUT_SECONDS}s"}
    answer: dict[str, Any] = {"exit": result.returncode, "output": result.stdout}
    if result.returncode != 0:
        answer["error"] = result.stderr.strip()[-500:]
    return answer


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(json.dumps({"error": "usage: codeb-report CONFIG (as the forced command of a key)"}))
        return EXIT_REFUSED
    try:
        reports = load(args[0])
        names = asked(os.environ.get("SSH_ORIGINAL_COMMAND"), reports)
    except (OSError, KeyError, ValueError, AttributeError) as error:
        print(json.dumps({"error": f"refused: {error}"}))
        return EXIT_REFUSED
    print(json.dumps({name: run(reports[name]) for name in names}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
