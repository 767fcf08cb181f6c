"""Determinism: the same inputs and thread count give bitwise the same outputs, on both
backends, including the backward-filter/bias reductions (parallel partial sums must be
combined in a fixed order), and whatever the address of the input buffers."""
import numpy as np
import pytest

import aekernels
import hardening_workloads as W
from hardening_util import backends

REPEATS = 4


def _copy_elsewhere(a):
    """Same values, different buffer (and a different 16-byte alignment offset)."""
    if not isinstance(a, np.ndarray):
        return a
    raw = np.empty(a.nbytes + 64, np.uint8)
    off = (-raw.ctypes.data) % 64 + a.itemsize   # aligned for the dtype, not to 64 bytes
    b = raw[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    b[...] = a
    return b


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("kernel", W.KERNELS)
def test_same_inputs_same_thread_count_bitwise_same(kernel, layout, threads):
    before = aekernels.get_num_threads()
    aekernels.set_num_threads(threads)
    try:
        for b in backends():
            with aekernels.use_backend(b):
                # backward filter/bias reduce over N*OH*OW = 3*20*20 positions
                args, kwargs = W.workload(kernel, n=3, c=6, hw=20, layout=layout,
                                          dtype=np.float32)
                first = W.as_tuple(W.call(kernel, args, kwargs))
                for i in range(REPEATS):
                    moved = [_copy_elsewhere(a) for a in args] if i % 2 else args
                    again = W.as_tuple(W.call(kernel, moved, kwargs))
                    for x, y in zip(first, again):
                        np.testing.assert_array_equal(
                            x, y, strict=True,
                            err_msg=f"[{b}] {kernel} {layout} threads={threads}: run {i + 1} "
                                    f"differs{' (inputs at another address)' if i % 2 else ''}")
    finally:
        aekernels.set_num_threads(before)
