"""`lazy_exports` (mm_contracts/lazy_exports.py): an index name loads its module on first use, an unknown name is
an AttributeError naming the package (what `from package import missing` and `hasattr` rely on)."""

from __future__ import annotations

import sys

import pytest

from mm_contracts.lazy_exports import lazy_exports


def test_a_name_is_taken_from_its_module_and_the_module_is_imported_only_then() -> None:
    sys.modules.pop("colorsys", None)
    getattr_ = lazy_exports("pkg", {"rgb_to_hsv": "colorsys"})

    assert "colorsys" not in sys.modules
    assert getattr_("rgb_to_hsv")(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_exports("pkg", {})

    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'missing'"):
        getattr_("missing")


def test_the_three_indexes_answer_through_it() -> None:
    import mm_adapters.topcoder
    import mm_contracts.models
    import mm_contracts.settings

    assert mm_contracts.models.LifecycleRecord.__module__ == "mm_contracts.models.lifecycle"
    assert mm_contracts.settings.RouterSettings.__module__ == "mm_contracts.env_settings.router"
    assert mm_adapters.topcoder.TokenError.__module__ == "mm_adapters.topcoder.token"
    assert not hasattr(mm_contracts.models, "NoSuchModel")
