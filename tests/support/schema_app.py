"""An app image that uses the project's PostgreSQL database, for the expand/contract proof: busybox
httpd with a CGI script running this machine's `psql` (copied in with the shared libraries it
loads). ``/note`` writes one row through ``$DATABASE_URL`` and answers its id; release s1 writes the
``body`` column, release s2 the ``title`` column that s2's migrate step adds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from codeb_infra.sandbox.busybox_image import build_busybox_image
from codeb_infra.sandbox.demo_app import APP_PORT, IMAGE_REPOSITORY, SERVE_COMMAND, image_reference

PSQL = Path("/usr/lib/postgresql/15/bin/psql")
NOTE_SCRIPT = """#!/bin/sh
if id=$(psql "$DATABASE_URL" -X -q -tA -v ON_ERROR_STOP=1 -c "INSERT INTO notes ({column}) VALUES ('{body}') RETURNING id" 2>&1); then
    printf 'Content-Type: text/plain\\r\\n\\r\\n{body} wrote %s\\n' "$id"
else
    printf 'Status: 500\\r\\nContent-Type: text/plain\\r\\n\\r\\n{body} failed: %s\\n' "$id"
fi
"""


def _psql_files() -> dict[str, tuple[bytes, int]]:
    """psql, the dynamic loader and every library `ldd` says psql loads, at their own paths."""
    listed = subprocess.run(["ldd", str(PSQL)], capture_output=True, text=True, check=True).stdout
    paths = [PSQL] + [Path(p) for line in listed.splitlines() for p in line.split() if p.startswith("/")]
    found = {str(path).lstrip("/"): (path.resolve().read_bytes(), 0o755) for path in paths}
    found["usr/local/bin/psql"] = found.pop(str(PSQL).lstrip("/"))
    found["etc/passwd"] = (b"root:x:0:0:root:/tmp:/bin/sh\n", 0o644)
    return found


def build_schema_image(tag: str, column: str) -> str:
    """``{IMAGE_REPOSITORY}:{tag}``: ``/`` answers the tag, ``/cgi-bin/note`` inserts into ``column``."""
    files = {
        **_psql_files(),
        "www/index.html": (f"{tag}\n".encode(), 0o644),
        "www/health": (b"ok\n", 0o644),
        "www/cgi-bin/note": (NOTE_SCRIPT.format(column=column, body=tag).encode(), 0o755),
    }
    return build_busybox_image(
        image_reference(tag, IMAGE_REPOSITORY), files=files, command=SERVE_COMMAND, port=APP_PORT
    )
