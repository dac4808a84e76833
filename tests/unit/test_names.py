import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.domain import names
from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment, Slot

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z", fullmatch=True)


@pytest.mark.parametrize(
    "bad", ["../x", "a;rm -rf /", "MyApp", "a" * 64, "-rf", "", "a_b", "app-", "-app", "a b", "app\n", None, 5]
)
def test_bad_project_names_are_refused_with_a_clear_message(bad):
    with pytest.raises(CodebError, match="invalid project name"):
        names.project_name(bad)


@pytest.mark.parametrize("good", ["a", "myapp", "my-app", "a1", "9lives", "a" * 63])
def test_dns_labels_are_project_names(good):
    assert names.project_name(good) == good


@given(LABEL)
def test_every_dns_label_is_accepted_and_makes_a_valid_container_name(label):
    assert names.project_name(label) == label
    for env in Environment:
        assert names.container_name(label, env, Slot.BLUE) == f"{label}-{env.value}-blue"


@given(st.text(min_size=1, max_size=70))
def test_names_outside_the_label_alphabet_never_pass(text):
    try:
        names.project_name(text)
    except CodebError:
        return
    import re

    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", text)


@pytest.mark.parametrize("bad", ["prod", "Production", "", "dev"])
def test_only_production_and_staging(bad):
    with pytest.raises(CodebError, match="production, staging"):
        names.environment(bad)


@pytest.mark.parametrize("bad", ["my app:1", "-rf", "app\n:1", "a;b", "", "UPPER/app"])
def test_bad_images(bad):
    with pytest.raises(CodebError, match="invalid image"):
        names.image_reference(bad)


@pytest.mark.parametrize(
    "good", ["nginx", "localhost/app:v1", "ghcr.io/team/app:1.2.3", "registry:5000/a/b@sha256:" + "0" * 64]
)
def test_good_images(good):
    assert names.image_reference(good) == good


@pytest.mark.parametrize("bad", [0, 70000, -1, "abc", "", True, "3000x"])
def test_container_port_range(bad):
    with pytest.raises(CodebError, match="container port"):
        names.container_port(bad)


def test_domains_follow_the_documented_shape():
    assert names.default_domain("myapp", Environment.PRODUCTION, "codeb.kr") == "myapp.codeb.kr"
    assert names.default_domain("myapp", Environment.STAGING, "codeb.kr") == "myapp-staging.codeb.kr"
    assert names.preview_domain("myapp", Environment.PRODUCTION, "codeb.kr") == "myapp-preview.codeb.kr"
    assert names.preview_domain("myapp", Environment.STAGING, "codeb.kr") == "myapp-staging-preview.codeb.kr"


@pytest.mark.parametrize("bad", ["health", "/a b", "/x'y", "/\n"])
def test_health_paths(bad):
    with pytest.raises(CodebError, match="health path"):
        names.health_path(bad)
