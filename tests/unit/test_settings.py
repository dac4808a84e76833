"""Host settings for ACME issuance: validated before anything runs, rendered into the main
Caddyfile's global options only when the server gets its certificates through ACME."""

from __future__ import annotations

import pytest

from codeb_infra.config.app import HostSettings
from codeb_infra.domain.errors import CodebError
from codeb_infra.templates.caddy import render_caddyfile

STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME = {"tls": "acme", "acme_ca": STAGING, "acme_ca_root": "/etc/codeb/test-ca.pem", "acme_email": "ops@codeb.kr"}


def check(key: str, value: str, accepted: bool, reason: str) -> None:
    """``value`` for host data ``key`` is kept as given, or refused with an error naming the key."""
    if accepted:
        assert getattr(HostSettings.from_data({key: value}), key) == value
    else:
        with pytest.raises(CodebError, match=f"invalid host data: {key}: {reason}"):
            HostSettings.from_data({key: value})


def global_options(caddyfile: str) -> list[str]:
    block = caddyfile[caddyfile.index("{\n") + 2 : caddyfile.index("\n}")]
    return [line.strip() for line in block.splitlines()]


@pytest.mark.parametrize(
    "url",
    [
        STAGING,
        "https://acme.zerossl.com/v2/DV90",
        "https://10.89.0.20:9443/acme/local/directory",
        "https://ca.internal",
    ],
)
def test_acme_ca_accepts_https_directory_urls(url: str) -> None:
    assert HostSettings.from_data({"acme_ca": url}).acme_ca == url


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.example.com/directory",
        "acme.example.com/directory",
        "https://",
        "https://ca.example.com/dir ectory",
        "https://ca.example.com/{dir}",
        'https://ca.example.com/"x"',
        "https://ca.example.com/'x'",
        "-https://ca.example.com",
        "https://ca.example.com/dir\nadmin 0.0.0.0:2019",
        "https://ca.example.com/dir;rm",
        "https://user@ca.example.com/dir",
    ],
)
def test_acme_ca_refuses_anything_but_a_plain_https_url(url: str) -> None:
    with pytest.raises(CodebError, match=r"invalid host data: acme_ca: .*https:// ACME directory URL"):
        HostSettings.from_data({"acme_ca": url})


@pytest.mark.parametrize(
    "path, accepted",
    [
        ("/etc/codeb/test-ca.pem", True),
        ("/var/lib/ca/root.crt", True),
        ("root.crt", False),
        ("etc/ca.pem", False),
        ("/etc/my ca.pem", False),
        ("/etc/{ca}.pem", False),
        ("/etc/'ca'.pem", False),
        ("-/etc/ca.pem", False),
        ("/etc/ca.pem\n}", False),
    ],
)
def test_acme_ca_root_is_a_plain_absolute_path(path: str, accepted: bool) -> None:
    check("acme_ca_root", path, accepted, "")


@pytest.mark.parametrize(
    "email, accepted",
    [
        ("ops@codeb.kr", True),
        ("first.last+certs@mail.example.com", True),
        ("ops@codeb.test", True),
        ("ops", False),
        ("ops@", False),
        ("@codeb.kr", False),
        ("ops@codeb", False),
        ("o ps@codeb.kr", False),
        ("ops@codeb.kr }", False),
        ("{ops}@codeb.kr", False),
        ("'ops'@codeb.kr", False),
        ('"ops"@codeb.kr', False),
        ("-ops@codeb.kr", False),
        ("ops@codeb.kr\nadmin off", False),
        ("a@b@codeb.kr", False),
    ],
)
def test_acme_email_is_an_address_without_spaces_quotes_or_braces(email: str, accepted: bool) -> None:
    check("acme_email", email, accepted, ".*must be an email address")


def test_every_bad_acme_key_is_named_in_one_error() -> None:
    with pytest.raises(CodebError) as error:
        HostSettings.from_data({"acme_ca": "http://x", "acme_ca_root": "x.pem", "acme_email": "x"})
    assert [part.split(":")[0] for part in str(error.value).removeprefix("invalid host data: ").split("; ")] == [
        "acme_ca",
        "acme_ca_root",
        "acme_email",
    ]


def test_caddyfile_names_the_acme_issuer_when_tls_is_acme() -> None:
    text = render_caddyfile(HostSettings.from_data(ACME))
    assert global_options(text) == [
        "email ops@codeb.kr",
        f"acme_ca {STAGING}",
        "acme_ca_root /etc/codeb/test-ca.pem",
        "admin localhost:2019",
    ]
    assert text.rstrip().endswith("import /etc/caddy/sites/*.caddy")


def test_caddyfile_leaves_caddys_default_ca_when_none_is_given() -> None:
    assert global_options(render_caddyfile(HostSettings())) == ["admin localhost:2019"]
    only_email = HostSettings.from_data({"acme_email": "ops@codeb.kr"})
    assert global_options(render_caddyfile(only_email)) == ["email ops@codeb.kr", "admin localhost:2019"]


@pytest.mark.parametrize("tls, extra", [("internal", []), ("off", ["auto_https off"])])
def test_caddyfile_has_no_acme_options_without_acme(tls: str, extra: list[str]) -> None:
    settings = HostSettings.from_data({**ACME, "tls": tls})
    assert settings.acme_options == {}
    assert global_options(render_caddyfile(settings)) == [*extra, "admin localhost:2019"]
