"""One `with` protocol for the things tests start and must stop (Caddy, load loops)."""

from __future__ import annotations

from typing import Any, Self


class StartStop:
    """`with x:` calls ``x.start()`` and, whatever happens inside, ``x.stop()``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
