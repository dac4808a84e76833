"""A project's env file as values: names and values checked, files parsed and rendered, changes
applied, versions compared by name. Pure: no value ever leaves this module in an error message.

The file format is the one podman's ``--env-file`` (and Quadlet's ``EnvironmentFile=``) reads:
one ``NAME=VALUE`` a line, the value taken literally up to the end of the line, ``#`` comments
and blank lines ignored."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from codeb_infra.domain.data import PROTECTED_VARIABLES
from codeb_infra.domain.errors import CodebError

NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
MAX_VALUE = 64 * 1024
Values = dict[str, str]


def variable_name(value: object) -> str:
    """A variable name that may be set: ``[A-Z_][A-Z0-9_]*`` and not one of the master env's."""
    if not isinstance(value, str) or len(value) > 255 or not NAME.fullmatch(value):
        # Shown only when it looks like a name: a mistyped argument may hold a value.
        shown = repr(value) if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_]{1,64}", value) else "(not shown)"
        raise CodebError(
            f"invalid variable name {shown}: expected capitals, digits and _ (like API_KEY), not starting with a digit"
        )
    if value in PROTECTED_VARIABLES:
        raise CodebError(
            f"{value} is protected: it comes from the project's master env (codeb provision), not from its env file"
        )
    return value


def variable_value(name: str, value: object) -> str:
    """A value that one env file line can hold: no NUL, newline or carriage return."""
    if not isinstance(value, str):
        raise CodebError(f"the value of {name} is not text")
    for char, what in (("\0", "a NUL byte"), ("\n", "a newline"), ("\r", "a carriage return")):
        if char in value:
            raise CodebError(f"the value of {name} holds {what}, which an env file line cannot carry")
    if len(value.encode()) > MAX_VALUE:
        raise CodebError(f"the value of {name} is longer than {MAX_VALUE} bytes")
    return value


def assignments(pairs: Iterable[str]) -> Values:
    """``NAME=VALUE`` arguments as values; a name given twice is refused."""
    values: Values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CodebError(f"expected NAME=VALUE, got {variable_name(name)} without '='")
        _add(values, variable_name(name), variable_value(name, value))
    return values


def _add(values: Values, name: str, value: str, where: str = "") -> None:
    if name in values:
        raise CodebError(f"{name} is given twice{where}")
    values[name] = value


def parse(text: str, source: str = "env file") -> Values:
    """The values of an env file's text; a line that is not ``NAME=VALUE`` names its number."""
    if "\0" in text:
        raise CodebError(f"{source} holds a NUL byte")
    values: Values = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if "\r" in line:
            raise CodebError(f"{source} line {number}: a carriage return inside a value")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.removeprefix("export ").strip()
        if not sep or not NAME.fullmatch(name):
            raise CodebError(f"{source} line {number}: expected NAME=VALUE")
        try:
            _add(values, variable_name(name), variable_value(name, value), f" ({source} line {number})")
        except CodebError as error:
            raise CodebError(f"{source} line {number}: {error}") from None
    return values


def parse_stored(text: str) -> Values:
    """A stored version (written by ``render``); protected names are not refused here, so a file
    made by hand before versioning still reads."""
    values: Values = {}
    for line in text.split("\n"):
        name, sep, value = line.partition("=")
        if sep and NAME.fullmatch(name):
            values[name] = value
    return values


def render(values: Mapping[str, str]) -> str:
    """The env file of ``values``: sorted by name, so equal values make equal files and digests."""
    return "".join(f"{name}={values[name]}\n" for name in sorted(values))


def digest(values: Mapping[str, str]) -> str:
    return hashlib.sha256(render(values).encode()).hexdigest()


def changed(
    current: Mapping[str, str], *, set_values: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> Values:
    """``current`` with ``set_values`` set and ``unset`` removed (unsetting a missing name is no error)."""
    wanted = dict(current)
    wanted.update(set_values or {})
    for name in unset:
        wanted.pop(variable_name(name), None)
    return wanted


class NameDiff(BaseModel):
    """Which names two versions differ in; never their values."""

    model_config = ConfigDict(frozen=True)

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> NameDiff:
    return NameDiff(
        added=tuple(sorted(set(new) - set(old))),
        changed=tuple(sorted(n for n in set(old) & set(new) if old[n] != new[n])),
        removed=tuple(sorted(set(old) - set(new))),
    )


class EnvVersion(BaseModel):
    """One entry of a project/env's version index (what ``env history`` shows)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int
    time: datetime
    actor: str
    digest: str
    names: tuple[str, ...]
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restored_from: int | None = None
    shipped: bool = False


class EnvIndex(BaseModel):
    """Every version of one project/env, oldest first."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    versions: tuple[EnvVersion, ...] = ()

    @property
    def current(self) -> EnvVersion | None:
        return self.versions[-1] if self.versions else None

    @property
    def next_number(self) -> int:
        return self.versions[-1].version + 1 if self.versions else 1

    def get(self, number: int) -> EnvVersion:
        for version in self.versions:
            if version.version == number:
                return version
        known = ", ".join(str(v.version) for v in self.versions) or "none yet"
        raise CodebError(f"no env version {number} (versions: {known})")

    @property
    def unshipped(self) -> tuple[int, ...]:
        return tuple(v.version for v in self.versions if not v.shipped)


def next_version(
    index: EnvIndex,
    current: Mapping[str, str],
    wanted: Mapping[str, str],
    *,
    actor: str,
    now: datetime,
    restored_from: int | None = None,
) -> EnvVersion | None:
    """The version that records ``wanted``; None when it equals the current version (no change)."""
    head = index.current
    if head is not None and head.digest == digest(wanted):
        return None
    found = diff(current, wanted)
    return EnvVersion(
        version=index.next_number,
        time=now,
        actor=actor,
        digest=digest(wanted),
        names=tuple(sorted(wanted)),
        added=found.added,
        changed=found.changed,
        removed=found.removed,
        restored_from=restored_from,
    )


def version_number(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise CodebError(f"invalid env version {value!r}: expected a number like 3 (or master)") from None
    if number < 1:
        raise CodebError(f"invalid env version {value!r}: versions start at 1")
    return number


def entry_json(version: EnvVersion) -> str:
    return json.dumps(version.model_dump(mode="json"), sort_keys=True)


@dataclass(frozen=True)
class EnvStore:
    """Where one project/env's env lives on the app server."""

    codeb_dir: str
    project: str
    env: str

    @property
    def root(self) -> str:
        return posixpath.join(self.codeb_dir, "env-backup")

    @property
    def dir(self) -> str:
        return posixpath.join(self.root, self.project, self.env)

    @property
    def index(self) -> str:
        return posixpath.join(self.dir, "index.json")

    def version_file(self, number: int) -> str:
        return posixpath.join(self.dir, f"{int(number)}.env")

    @property
    def live(self) -> str:
        """What slots read (``HostSettings.env_file``)."""
        return posixpath.join(self.codeb_dir, "env", self.project, f"{self.env}.env")

    @property
    def master(self) -> str:
        return posixpath.join(self.codeb_dir, "env", self.project, "master.env")

    @property
    def staged_dir(self) -> str:
        return posixpath.join(self.root, ".staged")

    def staged(self, what: str) -> str:
        return posixpath.join(self.staged_dir, f"{self.project}.{self.env}.{what}")

    @property
    def tool(self) -> str:
        return posixpath.join(self.codeb_dir, "bin", "codeb-env")
