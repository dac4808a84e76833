import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeb_infra.domain.errors import CodebError
from codeb_infra.domain.names import Environment
from codeb_infra.domain.ports import allocate_base, historic_base, port_range

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z", fullmatch=True)


def test_historic_formula():
    assert historic_base("myapp", Environment.PRODUCTION) == 4000 + sum(map(ord, "myapp")) % 500
    assert historic_base("myapp", Environment.STAGING) == 4500 + sum(map(ord, "myapp")) % 500


def test_free_historic_base_is_kept():
    assert allocate_base("myapp", Environment.PRODUCTION, set()) == historic_base("myapp", Environment.PRODUCTION)


def test_anagrams_hash_alike_but_never_share_ports():
    first = allocate_base("abc", Environment.PRODUCTION, set())
    second = allocate_base("cba", Environment.PRODUCTION, {first, first + 1})
    assert historic_base("abc", Environment.PRODUCTION) == historic_base("cba", Environment.PRODUCTION)
    assert {first, first + 1}.isdisjoint({second, second + 1})


def test_green_never_leaves_the_range():
    # a name whose historic base is the range's last port
    name = "aaaao"  # 4 * 97 + 111 = 499
    assert historic_base(name, Environment.PRODUCTION) == 4499
    base = allocate_base(name, Environment.PRODUCTION, set())
    assert base + 1 <= 4499 and base >= 4000


def test_overlap_with_a_neighbour_is_skipped():
    base = historic_base("myapp", Environment.PRODUCTION)
    assert allocate_base("myapp", Environment.PRODUCTION, {base + 1}) not in (base - 1, base, base + 1)


def test_full_range_gives_a_clear_error():
    with pytest.raises(CodebError, match="no free port pair"):
        allocate_base("myapp", Environment.STAGING, set(port_range(Environment.STAGING)))


def test_last_pair_is_found():
    taken = set(port_range(Environment.PRODUCTION)) - {4200, 4201}
    assert allocate_base("zzz", Environment.PRODUCTION, taken) == 4200


@given(st.lists(LABEL, min_size=1, max_size=60, unique=True), st.sampled_from(list(Environment)))
def test_allocation_is_collision_free_and_in_range(projects, env):
    taken: set[int] = set()
    for project in projects:
        base = allocate_base(project, env, taken)
        assert base in port_range(env) and base + 1 in port_range(env)
        assert base not in taken and base + 1 not in taken
        taken |= {base, base + 1}


@given(LABEL, st.sets(st.integers(4000, 4499), max_size=100))
def test_allocation_is_stable(project, taken):
    try:
        first = allocate_base(project, Environment.PRODUCTION, taken)
    except CodebError:
        return
    assert allocate_base(project, Environment.PRODUCTION, taken) == first
