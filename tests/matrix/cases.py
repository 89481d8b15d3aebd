"""The fault matrix: one case per fault kind (or pair), with the final state the issue's fixes require.

Expectations come from issue 7's defect list and the status-item protocol, not from what the code does
today: a case that fails names the defect it shows (`defect`). Submission ids are fixed per case so a failing
case is reproducible; every case runs in a fresh moto account and a fresh virtual clock.

The cases live in `cases_v5.py` and `cases_v6.py`; `case.py` holds `Case` and `Expect`, `setups.py` the cases'
own setups and checks.
"""

from __future__ import annotations

from tests.matrix.case import N1, S1, Case, Expect
from tests.matrix.cases_v5 import V5_CASES
from tests.matrix.cases_v6 import V6_CASES

CASES = V5_CASES + V6_CASES

__all__ = ["CASES", "N1", "S1", "Case", "Expect"]
