"""The shared part of migrations: the target the inventory marks, preflight results, exit rule."""

from __future__ import annotations

import pytest

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.migrate import Check, check_target, exit_code, record_path, report

HOSTS = {"storage": {}, "storage-target": {"migrate_target": "storage"}, "app-target": {"migrate_target": "app"}}


def test_exit_one_when_a_check_fails() -> None:
    good = Check(name="target reachable", ok=True, detail="ssh answers")
    bad = Check(name="free disk", ok=False, detail="2 MiB free, 60 MiB needed")
    assert exit_code([good]) == 0
    assert exit_code([good, bad]) == 1
    assert exit_code([]) == 0
    text = report([good, bad])
    assert "[ok] target reachable: ssh answers" in text
    assert "[FAIL] free disk: 2 MiB free, 60 MiB needed" in text
    assert text.endswith("preflight failed: free disk")
    assert report([good]).endswith("preflight passed")


def test_target_must_be_marked_for_the_role() -> None:
    check_target("storage", "storage-target", HOSTS)
    check_target("app", "app-target", HOSTS)
    with pytest.raises(CodebError, match="storage: host data must have migrate_target: 'storage'"):
        check_target("storage", "storage", HOSTS)
    with pytest.raises(CodebError, match="app-target: host data must have migrate_target: 'storage'"):
        check_target("storage", "app-target", HOSTS)
    with pytest.raises(CodebError, match="nowhere: not in the inventory"):
        check_target("storage", "nowhere", HOSTS)
    with pytest.raises(CodebError, match="cannot migrate 'backup'"):
        check_target("backup", "storage-target", HOSTS)


def test_record_path() -> None:
    assert record_path("storage") == "/opt/codeb/migration/storage.json"
