"""A tiny demo app image: what the demo deploys and what the tests and benches deploy.

``/`` answers a body such as "v1"; ``/health`` answers 200 unless the image is built unhealthy,
which is how a release that must fail its health check is made. It listens on port 3000.
"""

from __future__ import annotations

from codeb_infra.sandbox.busybox_image import build_busybox_image

APP_PORT = 3000
IMAGE_REPOSITORY = "localhost/codeb-test-app"
# busybox httpd as PID 1 ignores SIGTERM, which would make every `podman stop` wait out its
# timeout; the shell traps TERM and exits, and the kernel then ends httpd with the namespace.
SERVE_COMMAND = ["/bin/busybox", "sh", "-c", f'trap "exit 0" TERM; /bin/busybox httpd -f -p {APP_PORT} -h /www & wait']

# What v1/v2/v3 mean to tests: two healthy releases that differ only in body, and a broken one.
STANDARD_IMAGES: dict[str, tuple[str, bool]] = {"v1": ("v1", True), "v2": ("v2", True), "v3": ("v3", False)}


def image_reference(tag: str, repository: str = IMAGE_REPOSITORY) -> str:
    return f"{repository}:{tag}"


def build_test_image(tag: str, body: str, healthy: bool = True, repository: str = IMAGE_REPOSITORY) -> str:
    """Build ``{repository}:{tag}`` (reused when its content did not change) and return it."""
    files = {"www/index.html": (f"{body}\n".encode(), 0o644)}
    if healthy:
        files["www/health"] = (b"ok\n", 0o644)
    return build_busybox_image(image_reference(tag, repository), files=files, command=SERVE_COMMAND, port=APP_PORT)


def ensure_images() -> dict[str, str]:
    """Build v1 and v2 (healthy, bodies "v1"/"v2") and v3 (no /health); map tag to reference."""
    return {tag: build_test_image(tag, body, healthy) for tag, (body, healthy) in STANDARD_IMAGES.items()}


# A CGI script busybox httpd runs with the container's environment: /cgi-bin/env answers
# "GREETING=<value>", which is how tests see which env a slot got.
ENV_SCRIPT = b'#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "GREETING=$GREETING"\n'


def build_env_image(tag: str, body: str, version: str, repository: str = IMAGE_REPOSITORY) -> str:
    """A healthy image answering ``body`` at ``/``, its GREETING variable at ``/cgi-bin/env``, and
    carrying ``version`` as its ``org.opencontainers.image.version`` label."""
    files = {
        "www/index.html": (f"{body}\n".encode(), 0o644),
        "www/health": (b"ok\n", 0o644),
        "www/cgi-bin/env": (ENV_SCRIPT, 0o755),
    }
    return build_busybox_image(
        image_reference(tag, repository),
        files=files,
        command=SERVE_COMMAND,
        port=APP_PORT,
        labels={"org.opencontainers.image.version": version},
    )


# busybox httpd answers "/" from /cgi-bin/index.cgi when there is no index.html. Both scripts turn
# to HTTP 500 once the container has run FAIL_AFTER seconds (never when it is empty); /cgi-bin/started
# says when the container started (epoch seconds), so a test knows when the turn came.
_TURNING_SCRIPT = """#!/bin/sh
read started < /tmp/started
now=$(/bin/busybox date +%s)
if [ $((now - started)) -lt {ready_after} ]; then
  printf 'HTTP/1.1 503 Service Unavailable\\r\\nContent-Type: text/plain\\r\\n\\r\\nstarting\\n'
elif [ -n "{fail_after}" ] && [ $((now - started)) -ge {fail_after_or_zero} ]; then
  printf 'HTTP/1.1 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nbroken\\n'
else
  printf 'Content-Type: text/plain\\r\\n\\r\\n{body}\\n'
fi
"""
_STARTED_SCRIPT = (
    b'#!/bin/sh\nread started < /tmp/started\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$started"\n'
)
TURNING_HEALTH_PATH = "/cgi-bin/health"


def build_turning_image(
    tag: str, body: str, fail_after: int | None, repository: str = IMAGE_REPOSITORY, ready_after: int = 0
) -> str:
    """An image answering ``body`` at ``/`` and 200 at ``/cgi-bin/health`` until it has run
    ``fail_after`` seconds, then HTTP 500 ("broken") at both; None: it never turns. For its first
    ``ready_after`` seconds both answer 503 ("starting"), as an app still warming up."""
    script = _TURNING_SCRIPT.format(
        body=body,
        fail_after="" if fail_after is None else fail_after,
        fail_after_or_zero=fail_after or 0,
        ready_after=ready_after,
    ).encode()
    files = {
        "www/cgi-bin/index.cgi": (script, 0o755),
        "www/cgi-bin/health": (script, 0o755),
        "www/cgi-bin/started": (_STARTED_SCRIPT, 0o755),
    }
    command = [
        "/bin/busybox",
        "sh",
        "-c",
        f'/bin/busybox date +%s > /tmp/started; trap "exit 0" TERM; /bin/busybox httpd -f -p {APP_PORT} -h /www & wait',
    ]
    return build_busybox_image(image_reference(tag, repository), files=files, command=command, port=APP_PORT)
