"""mm_adapters.dependency_slot: built once on first use, replaced by `use`, rebuilt after `use(None)`."""

from __future__ import annotations

from mm_adapters.dependency_slot import DependencySlot


class _Deps:
    pass


def test_built_on_first_use_and_then_reused() -> None:
    built: list[_Deps] = []

    def build() -> _Deps:
        built.append(_Deps())
        return built[-1]

    slot = DependencySlot(build)

    assert built == []  # nothing at construction
    first = slot.get()
    assert slot.get() is first
    assert built == [first]


def test_use_installs_and_none_forgets() -> None:
    calls = 0

    def build() -> _Deps:
        nonlocal calls
        calls += 1
        return _Deps()

    slot = DependencySlot(build)
    fake = _Deps()

    slot.use(fake)
    assert slot.get() is fake
    assert calls == 0

    slot.use(None)
    rebuilt = slot.get()
    assert rebuilt is not fake
    assert calls == 1
