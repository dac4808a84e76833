"""The sandbox's stand-in for Centrifugo's image, which no registry here can serve: busybox httpd
answering ``GET /health`` on 8000, started as ``centrifugo --config FILE`` like the real one, and
only once the config file and the four secrets reached the container (so a 200 proves the
streaming role passed them on). Built on this machine and copied to the streaming server."""

from __future__ import annotations

from pathlib import Path

from codeb_infra.controller import images
from codeb_infra.sandbox.busybox_image import build_busybox_image

STANDIN_IMAGE = "localhost/centrifugo-standin:latest"

ENTRYPOINT = r"""#!/bin/sh
[ "$1" = "--config" ] && [ -r "$2" ] || { echo "usage: centrifugo --config FILE (readable)" >&2; exit 2; }
for name in CENTRIFUGO_TOKEN_HMAC_SECRET_KEY CENTRIFUGO_API_KEY CENTRIFUGO_ADMIN_PASSWORD CENTRIFUGO_ADMIN_SECRET; do
    eval "value=\${$name}"
    [ -n "$value" ] || { echo "$name is not set" >&2; exit 2; }
done
mkdir -p /www && echo ok > /www/health
exec /bin/busybox httpd -f -p 8000 -h /www
"""


def standin_archive(state_dir: Path) -> Path:
    """Build the stand-in image if needed and save it as an archive the streaming role uploads."""
    image = build_busybox_image(
        STANDIN_IMAGE,
        files={"usr/local/bin/centrifugo": (ENTRYPOINT.encode(), 0o755)},
        command=["centrifugo", "--config", "/centrifugo/config.json"],
        port=8000,
    )
    image_id = images.local_image_id(image)
    archive = state_dir / f"centrifugo-standin-{image_id[:12]}.tar"
    if not archive.exists():
        for old in state_dir.glob("centrifugo-standin-*.tar"):
            old.unlink()
        Path(images.save_to_archive(image)).replace(archive)
    return archive
