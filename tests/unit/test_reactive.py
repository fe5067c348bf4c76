"""vango_mp.reactive: one behaviour per test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp import reactive
from vango_mp.reactive import SMALL_OWNER
from vango_mp.reactive import (
    Computed,
    CycleError,
    Owner,
    Reaction,
    Signal,
    SignalWriteInRender,
    batch,
    computed,
    current_owner,
    effect,
    is_debug,
    memo,
    on_cleanup,
    rendering,
    set_debug,
    signal,
    untracked,
)


@pytest.fixture(autouse=True)
def _debug_off():
    set_debug(False)
    yield
    set_debug(False)


# region Signal


def test_signal_get_returns_initial_value():
    assert signal(3).get() == 3


def test_signal_set_changes_value():
    s = signal(1)
    s.set(2)
    assert s.get() == 2 and s.peek() == 2


def test_signal_update_applies_function_to_current_value():
    s = signal(10)
    s.update(lambda v: v + 5)
    assert s.get() == 15


def test_signal_value_property_reads_and_writes():
    s: Signal[str] = signal("a")
    s.value = "b"
    assert s.value == "b"


def test_signal_set_equal_value_does_not_notify():
    s = signal([1, 2])
    runs = []
    effect(lambda: runs.append(s.get()))
    s.set([1, 2])  # equal, not identical
    assert len(runs) == 1


def test_signal_peek_is_not_tracked():
    s = signal(1)
    runs = []
    effect(lambda: runs.append(s.peek()))
    s.set(2)
    assert runs == [1]


# endregion
# region Computed


def test_computed_is_lazy():
    calls = []
    c = computed(lambda: calls.append(1) or 1)
    assert calls == []
    c.get()
    assert calls == [1]


def test_computed_caches_until_dependency_changes():
    s = signal(2)
    calls = []

    def double():
        calls.append(1)
        return s.get() * 2

    c = computed(double)
    assert (c.get(), c.get(), c.peek()) == (4, 4, 4)
    assert len(calls) == 1
    s.set(3)
    assert c.get() == 6
    assert len(calls) == 2


def test_computed_unrelated_signal_change_does_not_recompute():
    s, other = signal(1), signal(1)
    calls = []
    c = computed(lambda: calls.append(1) or s.get())
    c.get()
    other.set(2)
    c.get()
    assert len(calls) == 1


def test_memo_is_computed():
    assert memo is computed
    assert isinstance(memo(lambda: 1), Computed)


def test_diamond_dependency_computes_once_per_change():
    a = signal(1)
    b = computed(lambda: a.get() + 1)
    c = computed(lambda: a.get() * 2)
    calls = []

    def d_fn():
        calls.append(1)
        return b.get() + c.get()

    d = computed(d_fn)
    seen = []
    effect(lambda: seen.append(d.get()))
    a.set(5)
    assert seen == [4, 16]
    assert len(calls) == 2


def test_computed_unchanged_result_does_not_rerun_dependents():
    s = signal(3)
    parity = computed(lambda: s.get() % 2)
    runs = []
    effect(lambda: runs.append(parity.get()))
    s.set(5)  # parity still 1
    assert runs == [1]


def test_computed_error_is_cached_and_reraised():
    calls = []

    def boom():
        calls.append(1)
        raise ValueError("bad")

    c = computed(boom)
    for _ in range(3):
        with pytest.raises(ValueError, match="bad"):
            c.get()
    assert len(calls) == 1


def test_computed_recovers_from_error_when_dependency_changes():
    s = signal(0)
    c = computed(lambda: 10 // s.get())
    with pytest.raises(ZeroDivisionError):
        c.get()
    s.set(2)
    assert c.get() == 5


def test_computed_reading_itself_raises_cycle_error():
    c: Computed[int] = computed(lambda: c.get() + 1)
    with pytest.raises(CycleError):
        c.get()


def test_mutually_dependent_computeds_raise_cycle_error():
    a: Computed[int] = computed(lambda: b.get())
    b: Computed[int] = computed(lambda: a.get())
    with pytest.raises(CycleError):
        a.get()


def test_computed_subscribes_on_first_subscriber_and_releases_on_last():
    s = signal(1)
    c = computed(lambda: s.get())
    c.get()
    assert s._targets is None  # unobserved: no subscription held
    dispose = effect(lambda: c.get())
    assert s._targets is not None
    dispose()
    assert s._targets is None


def test_signal_write_inside_computed_raises():
    s = signal(0)
    c = computed(lambda: s.set(1))
    with pytest.raises(RuntimeError, match="side effects"):
        c.get()


# endregion
# region Effect


def test_effect_runs_immediately():
    runs = []
    effect(lambda: runs.append(1))
    assert runs == [1]


def test_effect_reruns_when_dependency_changes():
    s = signal("a")
    seen = []
    effect(lambda: seen.append(s.get()))
    s.set("b")
    assert seen == ["a", "b"]


def test_effect_cleanup_runs_before_next_run():
    s = signal(0)
    log = []

    def fx():
        v = s.get()
        log.append(f"run{v}")
        return lambda: log.append(f"clean{v}")

    effect(fx)
    s.set(1)
    assert log == ["run0", "clean0", "run1"]


def test_effect_dispose_runs_cleanup_and_stops_updates():
    s = signal(0)
    log = []

    def fx():
        log.append(s.get())
        return lambda: log.append("clean")

    dispose = effect(fx)
    dispose()
    s.set(1)
    assert log == [0, "clean"]


def test_effect_dynamic_dependency_switch_drops_old_branch():
    flag, a, b = signal(True), signal("a"), signal("b")
    runs = []
    effect(lambda: runs.append(a.get() if flag.get() else b.get()))
    flag.set(False)
    assert runs == [True and "a", "b"]
    a.set("A")  # no longer read
    assert runs == ["a", "b"]
    b.set("B")
    assert runs == ["a", "b", "B"]


def test_effect_first_run_error_propagates_and_disposes():
    s = signal(0)
    runs = []

    def fx():
        runs.append(s.get())
        raise KeyError("x")

    with pytest.raises(KeyError):
        effect(fx)
    s.set(1)
    assert runs == [0]


def test_effect_writing_its_own_dependency_forever_raises_cycle_error():
    s = signal(0)
    with pytest.raises(CycleError):
        effect(lambda: s.set(s.get() + 1))


def test_effect_writing_its_own_dependency_until_stable_settles():
    s = signal(0)

    def fx():
        if s.get() < 5:
            s.set(s.get() + 1)

    effect(fx)
    assert s.peek() == 5


def test_effect_failing_cleanup_disposes_effect():
    s = signal(0)
    runs = []

    def fx():
        runs.append(s.get())
        return lambda: 1 / 0

    effect(fx)
    with pytest.raises(ZeroDivisionError):
        s.set(1)
    s.set(2)
    assert runs == [0]


# endregion
# region Batch and untracked


def test_batch_coalesces_effect_runs():
    a, b = signal(1), signal(2)
    runs = []
    effect(lambda: runs.append(a.get() + b.get()))
    with batch():
        a.set(10)
        b.set(20)
        assert runs == [3]  # deferred until the batch ends
    assert runs == [3, 30]


def test_nested_batch_flushes_only_at_outermost():
    s = signal(0)
    runs = []
    effect(lambda: runs.append(s.get()))
    with batch():
        with batch():
            s.set(1)
        assert runs == [0]
    assert runs == [0, 1]


def test_batch_runs_all_effects_and_reraises_first_error():
    s = signal(0)
    ran = []

    def failing(tag):
        def fx():
            if s.get():
                ran.append(tag)
                raise RuntimeError(tag)

        return fx

    effect(failing("first"))
    effect(failing("second"))
    effect(lambda: s.get() and ran.append("third"))
    with pytest.raises(RuntimeError, match="first"):
        with batch():
            s.set(1)
    assert ran == ["first", "second", "third"]


def test_batch_body_error_wins_and_effects_still_run():
    s = signal(0)
    runs = []
    effect(lambda: runs.append(s.get()))
    with pytest.raises(ValueError):
        with batch():
            s.set(1)
            raise ValueError("body")
    assert runs == [0, 1]


def test_computed_read_inside_batch_sees_new_value():
    s = signal(1)
    c = computed(lambda: s.get() * 10)
    effect(lambda: c.get())
    with batch():
        s.set(2)
        assert c.get() == 20


def test_untracked_returns_result_without_tracking():
    s = signal(1)
    runs = []
    effect(lambda: runs.append(untracked(lambda: s.get())))
    s.set(2)
    assert runs == [1]


# endregion
# region Reaction


def test_reaction_track_returns_result():
    r = Reaction(lambda: None)
    assert r.track(lambda: 42) == 42


def test_reaction_invalidates_once_on_change():
    s = signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(s.get)
    s.set(1)
    assert calls == [1]


def test_reaction_not_invalidated_again_until_retracked():
    s = signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(s.get)
    s.set(1)
    s.set(2)
    assert calls == [1]
    r.track(s.get)
    s.set(3)
    assert calls == [1, 1]


def test_reaction_invalidates_once_per_batch():
    a, b = signal(0), signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(lambda: a.get() + b.get())
    with batch():
        a.set(1)
        b.set(1)
        assert calls == []
    assert calls == [1]


def test_reaction_retrack_replaces_dependencies():
    a, b = signal(0), signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(a.get)
    r.track(b.get)
    a.set(1)
    assert calls == []
    b.set(1)
    assert calls == [1]


def test_reaction_track_after_dispose_runs_untracked():
    s = signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.dispose()
    assert r.track(s.get) == 0
    s.set(1)
    assert calls == []


def test_reaction_dispose_stops_invalidation():
    s = signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(s.get)
    r.dispose()
    s.set(1)
    assert calls == []


def test_reaction_ignores_computed_that_did_not_change():
    s = signal(2)
    even = computed(lambda: s.get() % 2 == 0)
    calls = []
    r = Reaction(lambda: calls.append(1))
    r.track(even.get)
    s.set(4)
    assert calls == []


def test_reaction_write_during_track_invalidates_after_track():
    s = signal(0)
    calls = []
    r = Reaction(lambda: calls.append(1))

    def render():
        v = s.get()
        s.set(v + 1)
        assert calls == []  # deferred to the end of track
        return v

    r.track(render)
    assert calls == [1]


# endregion
# region Owner


def test_owner_dispose_disposes_effects_and_runs_cleanups():
    s = signal(0)
    log = []
    owner = Owner()

    def setup():
        effect(lambda: log.append(s.get()) or (lambda: log.append("clean")))

    owner.run(setup)
    owner.dispose()
    s.set(1)
    assert log == [0, "clean"]


def test_owner_dispose_disposes_reactions():
    s = signal(0)
    calls = []
    owner = Owner()
    r = owner.run(lambda: Reaction(lambda: calls.append(1)))
    r.track(s.get)
    owner.dispose()
    s.set(1)
    assert calls == []


def test_owner_dispose_disposes_child_owners():
    log = []
    parent = Owner()
    child = parent.run(Owner)
    child.on_cleanup(lambda: log.append("child"))
    parent.dispose()
    assert log == ["child"] and child.disposed


def test_owner_disposes_children_in_reverse_creation_order_then_cleanups():
    log = []
    owner = Owner()

    def setup():
        effect(lambda: lambda: log.append("effect1"))
        effect(lambda: lambda: log.append("effect2"))
        on_cleanup(lambda: log.append("cleanup"))

    owner.run(setup)
    owner.dispose()
    assert log == ["effect2", "effect1", "cleanup"]


def test_owner_run_sets_current_owner():
    owner = Owner()
    assert owner.run(current_owner) is owner
    assert current_owner() is None


def test_owner_dispose_raises_first_error_after_running_all():
    log = []
    owner = Owner()
    owner.on_cleanup(lambda: log.append("a"))
    owner.on_cleanup(lambda: 1 / 0)
    owner.on_cleanup(lambda: log.append("c"))
    with pytest.raises(ZeroDivisionError):
        owner.dispose()
    assert log == ["c", "a"]


def test_disposed_effect_is_removed_from_owner():
    owner = Owner()
    dispose = owner.run(lambda: effect(lambda: None))
    dispose()
    assert not owner._children  # None (held one) or an empty dict


def test_disposed_child_owner_is_removed_from_parent():
    parent = Owner()
    child = Owner(parent)
    child.dispose()
    assert not parent._children


def test_owner_keeps_one_child_then_many_in_creation_order():
    """One child is held alone, a second turns the holder into a dict: disposal order is unchanged."""
    order: list[str] = []
    parent = Owner()
    first = Owner(parent)
    first.on_cleanup(lambda: order.append("first"))
    first.dispose()  # dropped while held alone
    assert not parent._children
    for name in ("a", "b", "c"):
        Owner(parent).on_cleanup(lambda name=name: order.append(name))
    parent.on_cleanup(lambda: order.append("parent"))
    parent.dispose()
    assert order == ["first", "c", "b", "a", "parent"]


@given(st.integers(0, 3 * SMALL_OWNER), st.sets(st.integers(0, 3 * SMALL_OWNER)))
def test_owner_children_held_alone_listed_or_mapped_dispose_in_reverse_once(n: int, early: set[int]) -> None:
    """However many children (alone, a list, past SMALL_OWNER a dict) and whichever are disposed
    early, disposal runs each remaining one once, newest first."""
    order: list[int] = []
    parent = Owner()
    kids = []
    for i in range(n):
        kid = Owner(parent)
        kid.on_cleanup(lambda i=i: order.append(i))
        kids.append(kid)
        if i - 1 in early:
            kids[i - 1].dispose()  # dropped while the holder is still growing
    for i in sorted(early):
        if i < n:
            kids[i].dispose()
    held = parent._children
    members = [] if held is None else list(held) if type(held) in (list, dict) else [held]
    assert members == [k for i, k in enumerate(kids) if i not in early]  # the disposed are forgotten
    parent.dispose()
    gone_early = [i for i in range(n) if i in early]
    assert sorted(order[:len(gone_early)]) == gone_early
    assert order[len(gone_early):] == [i for i in reversed(range(n)) if i not in early]
    assert all(k.disposed for k in kids) and len(order) == n


def test_owner_disposes_computed_which_keeps_last_value():
    s = signal(1)
    owner = Owner()
    c = owner.run(lambda: computed(lambda: s.get() * 2))
    effect(c.get)
    owner.dispose()
    s.set(5)
    assert c.get() == 2


def test_on_cleanup_on_disposed_owner_runs_immediately():
    log = []
    owner = Owner()
    owner.dispose()
    owner.on_cleanup(lambda: log.append("late"))
    assert log == ["late"]


def test_creating_in_disposed_owner_raises():
    owner = Owner()

    def setup():
        owner.dispose()
        effect(lambda: None)

    with pytest.raises(RuntimeError, match="disposed Owner"):
        owner.run(setup)


def test_on_cleanup_without_owner_raises():
    with pytest.raises(RuntimeError, match="no current Owner"):
        on_cleanup(lambda: None)


# endregion
# region Debug


def test_set_debug_toggles_flag():
    set_debug(True)
    assert is_debug()
    set_debug(False)
    assert not is_debug()


def test_debug_write_in_render_raises():
    set_debug(True)
    s = signal(0)
    with rendering():
        with pytest.raises(SignalWriteInRender, match="during a component render"):
            s.set(1)
    assert issubclass(SignalWriteInRender, RuntimeError)


def test_non_debug_write_in_render_allowed():
    s = signal(0)
    with rendering():
        s.set(1)
    assert s.get() == 1


def test_debug_write_outside_render_allowed():
    set_debug(True)
    s = signal(0)
    with rendering():
        pass
    s.set(1)
    assert s.get() == 1


def test_debug_effect_created_in_render_may_write():
    set_debug(True)
    s = signal(0)
    with rendering():
        effect(lambda: s.set(1))
    assert s.get() == 1


# endregion
# region Consistency


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-3, 3)), max_size=30))
def test_effect_always_sees_value_of_fresh_computation(writes):
    # Dynamic graph: `pick` chooses which branch `total` reads.
    sigs = [signal(0), signal(1), signal(2)]
    pick = computed(lambda: sigs[0].get() % 2 == 0)
    total = computed(lambda: (sigs[1].get() if pick.get() else sigs[2].get()) + sigs[0].get())
    seen = []
    dispose = effect(lambda: seen.append(total.get()))
    for index, value in writes:
        sigs[index].set(value)
        a, b, c = (x.peek() for x in sigs)
        expected = (b if a % 2 == 0 else c) + a
        assert seen[-1] == expected
    assert all(x != y for x, y in zip(seen, seen[1:]))  # never re-ran for nothing
    dispose()
    assert all(x._targets is None for x in sigs)


# endregion
# region Memory


def test_unobserved_computed_is_not_referenced_by_its_source():
    s = signal(1)
    c = computed(lambda: s.get())
    c.get()
    assert s._targets is None and s._node is None


def test_effects_on_one_signal_run_in_creation_order():
    s = signal(0)
    order = []
    for tag in "abc":
        effect(lambda tag=tag: s.get() and order.append(tag))
    s.set(1)
    assert order == ["a", "b", "c"]


def test_no_batch_state_leaks_after_error():
    s = signal(0)
    effect(lambda: s.get() and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        s.set(1)
    assert reactive._batch_depth == 0 and reactive._pending == []


# endregion
