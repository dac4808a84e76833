"""The sandbox's stand-in for Centrifugo's image, which no registry here can serve: busybox httpd
on the ports of its config as Centrifugo v5 uses them, ``GET /health`` on ``internal_port`` (where
the real one has its API, admin and metrics too) and ``GET /connection/websocket`` on ``port``
(a fixed body: busybox cannot answer a WebSocket upgrade); without ``internal_port`` both on
``port``. Started as ``centrifugo --config FILE`` like the real one, and only once the config file
and the four secrets reached the container (so an answer proves the streaming role passed them
on). Built on this machine and copied to the streaming server."""

from __future__ import annotations

from pathlib import Path

from codeb_infra.controller import images
from codeb_infra.sandbox.busybox_image import build_busybox_image

# The tag names the stand-in's behaviour: the engine holds one image per tag, so a stand-in that
# answers differently gets a tag of its own.
STANDIN_IMAGE = "localhost/centrifugo-standin:2"
CLIENT_BODY = "centrifugo stand-in: client endpoint"
"""What ``GET /connection/websocket`` on the client port answers (the real one wants an upgrade)."""

ENTRYPOINT = r"""#!/bin/sh
[ "$1" = "--config" ] && [ -r "$2" ] || { echo "usage: centrifugo --config FILE (readable)" >&2; exit 2; }
for name in CENTRIFUGO_TOKEN_HMAC_SECRET_KEY CENTRIFUGO_API_KEY CENTRIFUGO_ADMIN_PASSWORD CENTRIFUGO_ADMIN_SECRET; do
    eval "value=\${$name}"
    [ -n "$value" ] || { echo "$name is not set" >&2; exit 2; }
done
port=$(/bin/busybox sed -n 's/.*"port": *\([0-9][0-9]*\).*/\1/p' "$2" | /bin/busybox head -n 1)
internal=$(/bin/busybox sed -n 's/.*"internal_port": *\([0-9][0-9]*\).*/\1/p' "$2" | /bin/busybox head -n 1)
mkdir -p /www/client/connection /www/internal
echo "{CLIENT_BODY}" > /www/client/connection/websocket
echo ok > /www/internal/health
if [ -z "$internal" ]; then
    cp /www/internal/health /www/client/health
    exec /bin/busybox httpd -f -p "${port:-8000}" -h /www/client
fi
/bin/busybox httpd -p "$internal" -h /www/internal
exec /bin/busybox httpd -f -p "${port:-8000}" -h /www/client
"""


def standin_archive(state_dir: Path) -> Path:
    """Build the stand-in image if needed and save it as an archive the streaming role uploads."""
    image = build_busybox_image(
        STANDIN_IMAGE,
        files={"usr/local/bin/centrifugo": (ENTRYPOINT.replace("{CLIENT_BODY}", CLIENT_BODY).encode(), 0o755)},
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
