"""Pooling kernels: max with indices, max backward, avg, avg backward, unpool on
2x2 (128,32,28,28) and 3x3 s2 p1 (8,64,112,112); see conftest.py."""
import pytest

from aekernels.bench import IMPLEMENTATIONS as IMPLS, cases

CASES = [c for c in cases() if c.family == "pool"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id.split("/", 1)[1].replace("/", "-"))
def test_pool(run_case, case, impl):
    run_case(case, impl)
