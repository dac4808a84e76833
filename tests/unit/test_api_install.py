"""The API's installation and audit operations, given facts; its server-side files as rendered."""

from __future__ import annotations

from pyinfra.facts.server import Arch

from codeb_infra.api.config import ApiPaths
from codeb_infra.commands import api as api_commands
from codeb_infra.controller import wheelhouse
from codeb_infra.facts.api import PythonRelease, VenvDigest
from codeb_infra.operations import api
from codeb_infra.templates import api as api_templates
from tests.unit.fake_host import commands, fact


def test_a_venv_built_from_the_same_wheelhouse_is_left_alone(monkeypatch) -> None:
    current = wheelhouse.digest("3.13", "x86_64")
    built: list[str] = []
    monkeypatch.setattr(wheelhouse, "build", lambda *a: built.append("built") or "/tmp/w.tar")
    out, noops = commands(
        api.venv,
        {PythonRelease: "3.13", Arch: "x86_64", fact(VenvDigest, venv="/opt/codeb/api/venv"): current},
        path="/opt/codeb/api/venv",
    )
    assert out == [] and noops == [f"/opt/codeb/api/venv is built from wheelhouse {current}"] and built == []


def test_a_stale_venv_is_reinstalled_without_an_index_and_the_digest_written_last(monkeypatch, tmp_path) -> None:
    archive = tmp_path / "wheels.tar"
    archive.write_bytes(b"wheels")
    monkeypatch.setattr(wheelhouse, "build", lambda python, machine: str(archive))
    # files.put itself is pyinfra's (needs a whole state): stands for "upload src to dest" here.
    monkeypatch.setattr(api.files.put, "_inner", lambda src, dest, mode: iter([f"upload {src} {dest} {mode}"]))
    out, _ = commands(
        api.venv,
        {PythonRelease: "3.13", Arch: "aarch64", fact(VenvDigest, venv="/opt/codeb/api/venv"): "old"},
        path="/opt/codeb/api/venv",
    )
    upload, install = out
    assert upload.startswith(f"upload {archive} /opt/codeb/api/wheelhouse-") and upload.endswith(" 600")
    assert install.count("--no-index") == 2 and "--index-url" not in install
    assert install.rindex(f"> {api_commands.digest_file('/opt/codeb/api/venv')}") > install.rindex("--force-reinstall")


def test_the_wheelhouse_digest_follows_python_machine_and_pins() -> None:
    assert wheelhouse.digest("3.13", "x86_64") != wheelhouse.digest("3.11", "x86_64")
    assert wheelhouse.digest("3.13", "x86_64") != wheelhouse.digest("3.13", "aarch64")
    assert all("==" in pin for pin in wheelhouse.requirements())
    assert any(pin.startswith("fastapi==") for pin in wheelhouse.requirements())


def test_the_api_inventory_holds_the_app_settings_and_no_ssh_or_secret_data() -> None:
    text = api_templates.render_inventory(
        {
            "base_domain": "codeb.test",
            "tls": "internal",
            "ssh_key": "/k",
            "ssh_port": 22,
            "private_address": "10.0.0.2",
            "pdns_key_file": "/etc/codeb/secrets/pdns-api.key",
        }
    )
    scope: dict = {}
    exec(text, scope)
    assert scope["app"] == [
        (
            "@local",
            {
                "base_domain": "codeb.test",
                "private_address": "10.0.0.2",
                "pdns_key_file": "/etc/codeb/secrets/pdns-api.key",
                "tls": "internal",
            },
        )
    ]


def test_the_api_site_drops_key_headers_from_its_log_and_follows_tls_modes() -> None:
    site = api_templates.render_site(
        base_domain="codeb.test", tls="internal", access_log="/var/log/caddy/api.access.log"
    )
    assert (
        site.count("delete") == 4
        and "resp_headers>Set-Cookie delete" in site
        and "request>headers>X-Api-Key delete" in site
        and "request>headers>Authorization delete" in site
    )
    assert "tls internal" in site and "reverse_proxy 127.0.0.1:9100" in site
    assert api_templates.render_site(base_domain="x.kr", tls="off", access_log="/l").count("http://api.x.kr {") == 1
    assert "tls internal" not in api_templates.render_site(base_domain="x.kr", tls="acme", access_log="/l")
    unit = api_templates.render_unit(
        python="/opt/codeb/api/venv/bin/python", paths=ApiPaths(), state_dir="/var/lib/codeb/api"
    )
    assert "Environment=CODEB_API_HOST=127.0.0.1" in unit and "Environment=CODEB_API_PORT=9100" in unit


def test_a_change_over_ssh_appends_one_row_where_the_api_is_installed() -> None:
    out, _ = commands(api.audit_entry, {}, python=api.API_PYTHON, entry={"tool": "promote", "outcome": "allowed"})
    assert len(out) == 1 and out[0].startswith("if [ -x /opt/codeb/api/venv/bin/python ] ; then")
    assert "audit-append" in out[0]
