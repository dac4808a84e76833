"""jinja2 templates shipped with the package (pure: values in, text out)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_JINJA = Environment(
    loader=PackageLoader("codeb_infra", "templates"), undefined=StrictUndefined, keep_trailing_newline=True
)


def render(template: str, **values: Any) -> str:
    return _JINJA.get_template(template).render(**values)
