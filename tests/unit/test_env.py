"""Env files as values: names, values, parsing, rendering, changes and versions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.domain import env
from codeb_infra.domain.data import PROTECTED_VARIABLES
from codeb_infra.domain.env import EnvIndex, EnvVersion
from codeb_infra.domain.errors import CodebError

NAMES = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,30}\Z", fullmatch=True).filter(lambda n: n not in PROTECTED_VARIABLES)
VALUES = st.text(st.characters(blacklist_characters="\0\n\r", blacklist_categories=("Cs",)), max_size=40)
ENVS = st.dictionaries(NAMES, VALUES, max_size=8)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["lower", "1ABC", "A-B", "A B", "", "É", "A=B", None, 3])
def test_invalid_names_are_refused(bad):
    with pytest.raises(CodebError, match="invalid variable name"):
        env.variable_name(bad)


@pytest.mark.parametrize("name", PROTECTED_VARIABLES)
def test_protected_names_are_refused_saying_they_come_from_the_master_env(name):
    with pytest.raises(CodebError, match="master env"):
        env.variable_name(name)
    with pytest.raises(CodebError, match="master env"):
        env.assignments([f"{name}=x"])
    with pytest.raises(CodebError, match="master env"):
        env.parse(f"A=1\n{name}=x\n")


def test_an_invalid_name_that_may_hold_a_value_is_not_shown():
    with pytest.raises(CodebError) as raised:
        env.assignments(["API KEY s3cr3t-value=x"])
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("bad, what", [("a\nb", "newline"), ("a\0b", "NUL"), ("a\rb", "carriage return")])
def test_values_that_a_line_cannot_hold_are_refused_without_showing_them(bad, what):
    with pytest.raises(CodebError, match=what) as raised:
        env.assignments([f"TOKEN=s3cr3t{bad}"])
    assert "s3cr3t" not in str(raised.value)


def test_assignments_keep_everything_after_the_first_equals_sign():
    assert env.assignments(["URL=https://x/?a=b", "EMPTY="]) == {"URL": "https://x/?a=b", "EMPTY": ""}
    with pytest.raises(CodebError, match="twice"):
        env.assignments(["A=1", "A=2"])
    with pytest.raises(CodebError, match="without '='"):
        env.assignments(["A"])


def test_parse_reads_comments_blank_lines_export_and_crlf():
    text = "# comment\n\nexport A=1\r\nB= spaced value \nC=#not a comment\n"
    assert env.parse(text) == {"A": "1", "B": " spaced value ", "C": "#not a comment"}


@pytest.mark.parametrize("text, line", [("A=1\nnot a line\n", 2), ("A=1\nb=2\n", 2), ("=x\n", 1), ("A=1\nA=2\n", 2)])
def test_a_file_that_does_not_parse_names_the_line_and_never_a_value(text, line):
    with pytest.raises(CodebError, match=f"line {line}") as raised:
        env.parse(text.replace("=1", "=s3cr3t"))
    assert "s3cr3t" not in str(raised.value)


@given(ENVS)
def test_render_then_parse_gives_the_same_values(values):
    assert env.parse(env.render(values)) == values
    assert env.parse_stored(env.render(values)) == values


@given(ENVS)
def test_the_digest_does_not_depend_on_order(values):
    reversed_values = dict(reversed(list(values.items())))
    assert env.digest(values) == env.digest(reversed_values)


@given(ENVS, ENVS)
def test_diff_names_exactly_what_differs(old, new):
    found = env.diff(old, new)
    assert set(found.added) == set(new) - set(old)
    assert set(found.removed) == set(old) - set(new)
    assert all(old[n] != new[n] for n in found.changed)
    assert found.empty == (old == new)


@given(ENVS, ENVS, st.lists(NAMES, max_size=3))
def test_changed_sets_then_unsets(current, updates, gone):
    wanted = env.changed(current, set_values=updates, unset=gone)
    assert not set(gone) & set(wanted)
    for name, value in updates.items():
        if name not in gone:
            assert wanted[name] == value


def _index(*values: dict[str, str]) -> EnvIndex:
    versions, before = [], {}
    for number, current in enumerate(values, start=1):
        found = env.diff(before, current)
        versions.append(
            EnvVersion(
                version=number,
                time=NOW,
                actor="a@b",
                digest=env.digest(current),
                names=tuple(current),
                added=found.added,
                changed=found.changed,
                removed=found.removed,
                shipped=True,
            )
        )
        before = current
    return EnvIndex(versions=tuple(versions))


def test_next_version_numbers_and_names_a_change_and_nothing_for_the_same_values():
    index = _index({"A": "1"}, {"A": "2", "B": "x"})
    assert env.next_version(index, {"A": "2", "B": "x"}, {"B": "x", "A": "2"}, actor="me@here", now=NOW) is None
    entry = env.next_version(index, {"A": "2", "B": "x"}, {"A": "2", "C": "y"}, actor="me@here", now=NOW)
    assert entry is not None
    assert (entry.version, entry.added, entry.changed, entry.removed) == (3, ("C",), (), ("B",))
    assert "y" not in env.entry_json(entry) and "2" not in entry.names
    first = env.next_version(EnvIndex(), {}, {"A": "1"}, actor="me@here", now=NOW)
    assert first is not None and first.version == 1 and first.added == ("A",)


def test_a_restore_is_a_new_version_that_says_what_it_restored():
    index = _index({"A": "1"}, {"A": "2"})
    entry = env.next_version(index, {"A": "2"}, {"A": "1"}, actor="me@here", now=NOW, restored_from=1)
    assert entry is not None and entry.version == 3 and entry.changed == ("A",) and entry.restored_from == 1
    with pytest.raises(CodebError, match="no env version 7"):
        index.get(7)


def test_unshipped_versions_are_listed():
    index = _index({"A": "1"})
    pending = index.model_copy(
        update={"versions": (*index.versions, index.versions[0].model_copy(update={"version": 2, "shipped": False}))}
    )
    assert pending.unshipped == (2,)


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5", "master"])
def test_version_numbers(bad):
    assert env.version_number("3") == 3
    with pytest.raises(CodebError, match="invalid env version"):
        env.version_number(bad)


def test_an_env_change_never_shows_its_values():
    from codeb_infra.flows.env import EnvChange

    change = EnvChange.of("shop", set_values={"TOKEN": "s3cr3t"})
    assert "s3cr3t" not in repr(change) and "s3cr3t" not in str(change)
    with pytest.raises(CodebError, match="nothing to change"):
        EnvChange.of("shop")
