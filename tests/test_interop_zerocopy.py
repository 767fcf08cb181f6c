"""Zero-copy input: every kernel reads a contiguous foreign array in place.

The backend is replaced by a recorder that notes the data pointer of every array a
kernel receives, so the check is exact (a pointer, not a timing) and independent of
which backend is built.  Sources: CPU torch tensors, JAX arrays, a buffer-protocol
memoryview, an ``__array_interface__`` object and a DLPack-only object.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import aekernels
from aekernels import _api


class Recorder:
    """A fake backend: every kernel records the data pointers of its array arguments."""

    def __init__(self):
        self.pointers: list[int] = []

    def __getattr__(self, name):
        def kernel(*args):
            self.pointers += [a.ctypes.data for a in args if isinstance(a, np.ndarray)]
        return kernel


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(_api, "kernels", lambda: rec)
    return rec


# --------------------------------------------------------------------------------- sources


class ArrayInterface:
    """Exposes a NumPy array only through __array_interface__."""

    def __init__(self, a):
        self._a = a
        self.__array_interface__ = a.__array_interface__


class DLPackOnly:
    """Exposes a NumPy array only through the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def _numpy_source(wrap):
    def make(a):
        a = np.ascontiguousarray(a)
        return wrap(a), a.ctypes.data
    return make


def _memoryview(a):
    a = np.ascontiguousarray(a)
    buf = bytearray(a.tobytes())
    mv = memoryview(buf).cast("B").cast(a.dtype.char, a.shape)
    return mv, np.frombuffer(buf, np.uint8).ctypes.data


def _torch(a):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(np.ascontiguousarray(a).copy())
    return t, t.data_ptr()


def _jax(a):
    jax = pytest.importorskip("jax")
    j = jax.numpy.asarray(a)
    assert j.dtype == a.dtype
    return j, j.unsafe_buffer_pointer()


SOURCES = {
    "torch": _torch,
    "jax": _jax,
    "memoryview": _memoryview,
    "array_interface": _numpy_source(ArrayInterface),
    "dlpack": _numpy_source(DLPackOnly),
}


@contextlib.contextmanager
def _x64(source):
    """JAX needs x64 for float64 data and int64 indices."""
    if source == "jax":
        jax = pytest.importorskip("jax")
        with jax.enable_x64(True):
            yield
    else:
        yield


def _calls():
    """(kernel name, args builder) for every public kernel; arrays given as NumPy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((3, 4, 3, 3))
    b = rng.standard_normal(3)
    gy = rng.standard_normal((2, 3, 4, 4))
    wt = rng.standard_normal((4, 2, 3, 3))
    v, idx = rng.standard_normal((2, 4, 3, 3)), np.zeros((2, 4, 3, 3), np.int64)
    ga = rng.standard_normal((2, 4, 3, 3))
    up = rng.standard_normal((2, 4, 12, 12))
    return [
        ("conv2d", lambda A: aekernels.conv2d(A(x), A(w), A(b))),
        ("conv2d_backward_input", lambda A: aekernels.conv2d_backward_input(A(gy), A(w), x.shape)),
        ("conv2d_backward_filter", lambda A: aekernels.conv2d_backward_filter(A(x), A(gy), w.shape)),
        ("conv2d_backward_bias", lambda A: aekernels.conv2d_backward_bias(A(gy))),
        ("conv_transpose2d", lambda A: aekernels.conv_transpose2d(A(x), A(wt))),
        ("max_pool2d", lambda A: aekernels.max_pool2d(A(x), 2, return_indices=True)),
        ("max_pool2d_backward", lambda A: aekernels.max_pool2d_backward(A(v), A(idx), x.shape)),
        ("avg_pool2d", lambda A: aekernels.avg_pool2d(A(x), 2)),
        ("avg_pool2d_backward", lambda A: aekernels.avg_pool2d_backward(A(ga), x.shape, 2)),
        ("max_unpool2d", lambda A: aekernels.max_unpool2d(A(v), A(idx), 2)),
        ("max_unpool2d_backward", lambda A: aekernels.max_unpool2d_backward(A(x), A(idx))),
        ("upsample_nearest2d", lambda A: aekernels.upsample_nearest2d(A(x), 2)),
        ("upsample_nearest2d_backward", lambda A: aekernels.upsample_nearest2d_backward(A(up), 2)),
    ]


CALLS = _calls()


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_contiguous_input_is_not_copied(name, call, dtype, source, recorder):
    made = []

    def A(a):
        a = a if a.dtype == np.int64 else a.astype(dtype)
        obj, ptr = SOURCES[source](a)
        made.append((obj, ptr))          # keep the object alive while the kernel runs
        return obj

    with _x64(source):
        call(A)
    assert made
    for _, ptr in made:
        assert ptr in recorder.pointers, f"{name}: an input from {source} was copied"


def test_non_contiguous_input_is_copied_once_and_correct():
    """Strided views are accepted (copied once) and give the contiguous result."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 4)).transpose(0, 3, 1, 2)      # NCHW view of NHWC data
    w = rng.standard_normal((3, 4, 3, 3))
    t = torch.from_numpy(x)
    assert not t.is_contiguous()
    np.testing.assert_array_equal(aekernels.conv2d(t, w), aekernels.conv2d(np.ascontiguousarray(x), w))
    np.testing.assert_array_equal(aekernels.max_pool2d(t[:, :, ::2], 2),
                                  aekernels.max_pool2d(np.ascontiguousarray(x[:, :, ::2]), 2))


def test_torch_tensor_that_requires_grad_is_refused_clearly():
    torch = pytest.importorskip("torch")
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match=r"^x: cannot be viewed as a NumPy array"):
        aekernels.max_pool2d(x, 2)
    assert aekernels.max_pool2d(x.detach(), 2).shape == (1, 2, 2, 2)


def test_torch_adapter_passes_pointers_through(recorder):
    """aekernels.interop.torch hands tensor memory to the kernels and wraps the result."""
    torch = pytest.importorskip("torch")
    from aekernels.interop import torch as aet

    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    y = aet.conv2d(x, w)
    assert recorder.pointers == [x.data_ptr(), w.data_ptr(), y.data_ptr()]
    recorder.pointers.clear()
    v, idx = aet.max_pool2d(x, 2, return_indices=True)
    assert recorder.pointers == [x.data_ptr(), v.data_ptr(), idx.data_ptr()]
