# cython: language_level=3
"""C-level pooling, unpooling and upsampling kernels of aekernels.

Other Cython extensions can use them without Python overhead::

    cimport aekernels._pool as akp
    from libc.stdint cimport int64_t

    cdef akp.pool2d_geom_t g
    ...                                   # fill every field (see below)
    with nogil:
        rc = akp.max_pool2d_forward_c(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &ind[0, 0, 0, 0],
                                      &g, False, 2)
    if rc != akp.AEK_OK: ...

Every array is C-contiguous, (N, C, H, W) when ``nhwc`` is false, (N, H, W, C) when it
is true.  The semantics are those of the backend contract in ``aekernels._dispatch``.
The functions release nothing and acquire nothing (call them without the GIL), write
every element of their output, are deterministic, and run on ``nthreads`` OpenMP
threads (``nthreads`` < 1 means 1).  They never read or write outside the arrays the
sizes describe: an invalid geometry or an out-of-range index is reported by the
return code (``AEK_*``), in which case the output may be partly written.
"""
from libc.stdint cimport int64_t

# float32 / float64: the element type of every data array of one call.
ctypedef fused pool_float_t:
    float
    double

cdef struct pool2d_geom_t:
    # Window geometry of one pooling call.
    Py_ssize_t N, C          # batch, channels
    Py_ssize_t H, W          # pooled input (x of the forward, gx of the backward)
    Py_ssize_t OH, OW        # pooled output (y of the forward, gy of the backward)
    Py_ssize_t kh, kw        # window, >= 1
    Py_ssize_t sh, sw        # stride, >= 1
    Py_ssize_t pt, pb        # top / bottom padding, >= 0 (pb is only used by avg divisors)
    Py_ssize_t pl, pr        # left / right padding, >= 0 (pr is only used by avg divisors)
    Py_ssize_t dh, dw        # dilation, >= 1

cdef enum:
    AEK_OK = 0
    AEK_BAD_PARAM = 1        # a size < 0, a kernel/stride/dilation < 1, a padding < 0
    AEK_EMPTY_WINDOW = 2     # some pooling window has no in-image position
    AEK_BAD_INDEX = 3        # an index outside its plane
    AEK_NO_MEMORY = 4

# x (N,C,H,W) -> y, ind (N,C,OH,OW); ind may be NULL.  Max over in-image window
# positions in row-major order; strictly greater or the first NaN wins; ind = h*W + w.
cdef int max_pool2d_forward_c(const pool_float_t* x, pool_float_t* y, int64_t* ind,
                              const pool2d_geom_t* g, bint nhwc,
                              int nthreads) noexcept nogil

# gy, ind (N,C,OH,OW) -> gx (N,C,H,W): gx = 0; gx[n,c].flat[ind] += gy (row-major order).
cdef int max_pool2d_backward_c(const pool_float_t* gy, const int64_t* ind, pool_float_t* gx,
                               Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                               int nthreads) noexcept nogil

# x (N,C,H,W) -> y (N,C,OH,OW): sum of in-image window positions / divisor, with
# divisor = divisor_override if > 0, else (count_include_pad ? rows in [-pt, H+pb) *
# cols in [-pl, W+pr) : rows in [0, H) * cols in [0, W)) of the window.
cdef int avg_pool2d_forward_c(const pool_float_t* x, pool_float_t* y,
                              const pool2d_geom_t* g, bint count_include_pad,
                              Py_ssize_t divisor_override, bint nhwc,
                              int nthreads) noexcept nogil

# gy (N,C,OH,OW) -> gx (N,C,H,W): the adjoint of avg_pool2d_forward_c.
cdef int avg_pool2d_backward_c(const pool_float_t* gy, pool_float_t* gx,
                               const pool2d_geom_t* g, bint count_include_pad,
                               Py_ssize_t divisor_override, bint nhwc,
                               int nthreads) noexcept nogil

# x, ind (N,C,H,W) -> y (N,C,OH,OW): y = 0; y[n,c].flat[ind] = x (row-major, last wins).
cdef int max_unpool2d_forward_c(const pool_float_t* x, const int64_t* ind, pool_float_t* y,
                                Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                                int nthreads) noexcept nogil

# gy (N,C,OH,OW), ind (N,C,H,W) -> gx (N,C,H,W): gx = gy[n,c].flat[ind].
cdef int max_unpool2d_backward_c(const pool_float_t* gy, const int64_t* ind, pool_float_t* gx,
                                 Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                                 int nthreads) noexcept nogil

# x (N,C,H,W) -> y (N,C,H*fh,W*fw): y[.., h, w] = x[.., h // fh, w // fw].
cdef int upsample_nearest2d_forward_c(const pool_float_t* x, pool_float_t* y,
                                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t fh, Py_ssize_t fw, bint nhwc,
                                      int nthreads) noexcept nogil

# gy (N,C,H*fh,W*fw) -> gx (N,C,H,W): the adjoint (sum over each fh x fw block).
cdef int upsample_nearest2d_backward_c(const pool_float_t* gy, pool_float_t* gx,
                                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t fh, Py_ssize_t fw, bint nhwc,
                                       int nthreads) noexcept nogil
