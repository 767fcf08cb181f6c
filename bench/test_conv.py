"""Conv kernels on every DESIGN.md shape: forward, backward-input, backward-filter,
conv_transpose2d (the adjoint of the shape's forward conv); see conftest.py."""
import pytest

from aekernels.bench import IMPLEMENTATIONS as IMPLS, cases

CASES = [c for c in cases() if c.family == "conv"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id.split("/", 1)[1].replace("/", "-"))
def test_conv(run_case, case, impl):
    run_case(case, impl)
