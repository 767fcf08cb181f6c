# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pooling, unpooling and nearest-upsampling kernels of the native backend (Cython).

The semantics are the backend contract in ``aekernels._dispatch`` (read it first);
``aekernels._api`` validates the public arguments and allocates every output before
calling these.  This module re-checks what its memory accesses rely on (shapes,
window geometry, index ranges) and raises ValueError instead of touching memory out
of bounds.  The C-level kernels (``*_c``, declared in ``_pool.pxd``) run without the
GIL and can be cimported by other extensions.

Layout of the work (memory-bound kernels: one pass over the data, inner loops over
contiguous memory that the compiler vectorises):

* The hot loops of max/avg pooling are C, embedded below and instantiated per dtype,
  written in the branch-free form GCC vectorises (the NaN rule included), and cloned
  for AVX2 with a baseline fallback picked at load time.  Cython does the rest:
  checks, per-call tables, OpenMP.
* NCHW: OpenMP over the N*C planes, each plane row by row.  Rows whose K x K window
  (K = 2 or 3, stride 1 or 2, dilation 1) lies inside the image vertically compute
  their interior columns in one pass (taps unrolled, vectorised over ``ow``); every
  other row folds the window taps one by one into the output row (inner loop over the
  contiguous ``ow`` range where that tap is in-image, taken from a per-call table, so
  the loops carry no bounds tests).
* NCHW max pooling with a 2 x 2 window, stride 2 and no padding or dilation (LeNet-5,
  the conv autoencoder) has a kernel of its own: tasks are ranges of whole planes, and
  4 output columns go per step in GCC/Clang vector extensions (the generic rows keep
  short rows such as OW = 7 scalar).
* Interior rows with stride 2 (K = 2 or 3) also go 4 output columns per step in vector
  extensions (even / odd input columns by shuffles), prefetching the rows ahead.
* NCHW average-pool backward gathers per gx row: each plane's gradient is divided by
  the window sizes once, then every gx row sums the rows of the windows covering it (a
  stride-2 row as its even and odd columns, each tap a contiguous shifted add).  The
  2 x 2 / stride 2 windows do not overlap: one streaming pass writes each gx element.
* NHWC: OpenMP over (n, output row); per output pixel the inner loop runs over C.
  Average-pool backward in NHWC gathers per input row, so no two tasks write one element.
* Scatters (max-pool backward, unpool) own whole (n, c) planes (NCHW) or
  (n, channel block) slabs (NHWC) per task, so they need no atomics.
* Every output element is computed by one task in a fixed order: results are
  deterministic and do not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy

import numpy as np

__all__ = [
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
    "avg_pool2d_backward", "max_unpool2d_forward", "max_unpool2d_backward",
    "upsample_nearest2d_forward", "upsample_nearest2d_backward", "indices_below",
    "set_num_threads", "get_num_threads",
]

# ----------------------------------------------------------------------------------
# The hot loops of max/avg pooling, in C so that GCC if-converts and vectorises them
# (one definition, instantiated per dtype by the AEK_DEFINE_KERNELS macro) and can
# clone them for AVX2/AVX-512.  Cython drives them: checks, tables, OpenMP.

# Editing note: the kernels sit inside one multi-line C macro, so every line of its
# body ends in a backslash, written as a double backslash in this Python string.
# Check vectorisation after edits: gcc -fopt-info-vec on the generated _pool.c.
cdef extern from * nogil:
    """
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    #ifdef _OPENMP
    #include <omp.h>
    static int aek_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int aek_omp_max_threads(void) { return 1; }   /* built without OpenMP: serial */
    #endif

    /* Clones for AVX2 and baseline x86-64, picked at load time (GCC ifunc, x86-64 Linux).
       Pooling is memory-bound: AVX2 mostly saves instructions.  No AVX-512 clone for the
       row kernels: with 16-float vectors the short rows of typical CNN planes (OW =
       7..56) would mostly run in remainder code.  The 2 x 2 / stride 2 kernel works on
       4 output columns at a time, so AVX-512 adds no width there, only its compare and
       select forms (AEK_CLONES_V4).  Define AEK_NO_CLONES to build the baseline path
       only. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \\
        && !defined(AEK_NO_CLONES)
    #define AEK_CLONES __attribute__((target_clones("avx2", "default")))
    #define AEK_CLONES_V4 __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
    #define AEK_CLONES_ON 1
    #else
    #define AEK_CLONES
    #define AEK_CLONES_V4
    #endif
    #if defined(__GNUC__)
    #define AEK_INLINE __attribute__((always_inline))
    #define AEK_NOINLINE __attribute__((noinline))
    #define AEK_R __restrict__
    #else
    #define AEK_INLINE
    #define AEK_NOINLINE
    #define AEK_R
    #endif
    #define AEK_CB 64   /* NHWC generic path: channels per block of local accumulators */
    #define AEK_BL 8    /* NCHW fast paths: output columns per block (a whole AVX2 vector) */

    typedef struct {
        Py_ssize_t N, C, H, W, OH, OW, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw;
    } aek_geom_t;

    /* Per-call tables, shared read-only by all threads. */
    typedef struct {
        Py_ssize_t* owlo;      /* [kw] tap column j is in-image for ow in [owlo[j], owhi[j]) */
        Py_ssize_t* owhi;
        Py_ssize_t* ja;        /* [OW] in-image taps of output column ow: j in [ja, jb) */
        Py_ssize_t* jb;
        Py_ssize_t* ia;        /* [OH] in-image taps of output row oh: i in [ia, ib) */
        Py_ssize_t* ib;
        Py_ssize_t* rowdiv;    /* [OH] average-pool divisor = rowdiv[oh] * coldiv[ow] */
        Py_ssize_t* coldiv;    /* [OW] */
    } aek_tab_t;

    /* Taps t in [0, k) whose position start + t*d lies in [0, size): t in [*lo, *hi). */
    static inline void aek_span(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size,
                                Py_ssize_t* lo, Py_ssize_t* hi)
    {
        Py_ssize_t a = 0, b;
        if (start < 0) a = (-start + d - 1) / d;
        if (start >= size) {
            b = 0;
        } else {
            b = (size - 1 - start) / d + 1;
            if (b > k) b = k;
        }
        if (a > k) a = k;   /* keep both ends in [0, k] even when no tap qualifies */
        if (b < a) b = a;
        *lo = a;
        *hi = b;
    }

    /* The max-pool update rule, branch-free: take v if it is greater, or if it is the first
       NaN.  The running "max is NaN" flag nn is built from loaded values only (never by
       comparing the running max with itself): that is the form GCC if-converts and
       vectorises.  Expects T m, IT t, int nn in scope. */
    #define AEK_MAXSTEP(T, IT, load, tap) { \\
            T v_ = (load); \\
            int vn_ = (v_ != v_); \\
            int u_ = ((v_ > m) | vn_) & !nn; \\
            m = u_ ? v_ : m; \\
            t = u_ ? (IT)(tap) : t; \\
            nn |= vn_; }
    #define AEK_MAXSTEP_NOIDX(T, IT, load, tap) { \\
            T v_ = (load); \\
            int vn_ = (v_ != v_); \\
            int u_ = ((v_ > m) | vn_) & !nn; \\
            m = u_ ? v_ : m; \\
            nn |= vn_; }
    /* Taps 1.. of a K x K window (K = 2 or 3, a compile-time constant at each use), row
       pitch RW, in row-major order; tap 0 is the starting value. */
    #define AEK_KXK_TAPS(STEP, T, IT, P, RW) \\
            STEP(T, IT, (P)[1], 1) \\
            if (K == 3) STEP(T, IT, (P)[2], 2) \\
            STEP(T, IT, (P)[RW], RW) \\
            STEP(T, IT, (P)[(RW) + 1], (RW) + 1) \\
            if (K == 3) { \\
                STEP(T, IT, (P)[(RW) + 2], (RW) + 2) \\
                STEP(T, IT, (P)[2 * (RW)], 2 * (RW)) \\
                STEP(T, IT, (P)[2 * (RW) + 1], 2 * (RW) + 1) \\
                STEP(T, IT, (P)[2 * (RW) + 2], 2 * (RW) + 2) }
    /* The same taps through three row pointers r0, r1, r2 at column S*ow (tap value =
       offset from tap 0, row pitch W). */
    #define AEK_KXK_ROWS(STEP, T, IT) \\
            STEP(T, IT, r0[S * ow + 1], 1) \\
            if (K == 3) STEP(T, IT, r0[S * ow + 2], 2) \\
            STEP(T, IT, r1[S * ow], W) \\
            STEP(T, IT, r1[S * ow + 1], W + 1) \\
            if (K == 3) { \\
                STEP(T, IT, r1[S * ow + 2], W + 2) \\
                STEP(T, IT, r2[S * ow], 2 * W) \\
                STEP(T, IT, r2[S * ow + 1], 2 * W + 1) \\
                STEP(T, IT, r2[S * ow + 2], 2 * W + 2) }
    /* NHWC: taps 1..NT-1 at element offsets o1.. (locals), plane-position deltas d1.. */
    #define AEK_NHWC_TAPS(STEP, T, IT) \\
            STEP(T, IT, xv[o1 + c], d1) STEP(T, IT, xv[o2 + c], d2) STEP(T, IT, xv[o3 + c], d3) \\
            if (NT == 9) { \\
                STEP(T, IT, xv[o4 + c], d4) STEP(T, IT, xv[o5 + c], d5) \\
                STEP(T, IT, xv[o6 + c], d6) STEP(T, IT, xv[o7 + c], d7) \\
                STEP(T, IT, xv[o8 + c], d8) }
    /* Average pooling step: s += tap. */
    #define AEK_ADD(T, IT, load, tap) s += (load);
    #define AEK_MAXFAST_ARGS(T) const T* AEK_R x0, Py_ssize_t W, T* AEK_R yr, \\
            int64_t* AEK_R ir, Py_ssize_t n, int64_t base
    #define AEK_AVGFAST_ARGS(T) const T* AEK_R x0, Py_ssize_t W, T* AEK_R yr, Py_ssize_t n, T d
    #define AEK_NHWCFAST_ARGS(T) const T* AEK_R xv, T* AEK_R yv, int64_t* AEK_R iv, \\
            Py_ssize_t C, const Py_ssize_t* o, const Py_ssize_t* dp, int64_t p0
    /* Every kernel below is defined once, for element type T, window-offset type IT
       (int32 for float so the selects stay as wide as T; int64 for double) and name
       maker AEK_FN, and instantiated per dtype at the end. */
    #define AEK_DEFINE_KERNELS(T, IT, AEK_FN, SUF, VEC) \\
    /* ===== NCHW max pooling ===== */ \\
     \\
    /* Interior output row, K x K window (K = 2 or 3), stride S, dilation 1: every tap is \\
       in-image for ow in [0, n); x0 points at tap (0, 0) of column 0.  Columns go in blocks \\
       of AEK_BL (a constant trip count GCC turns into whole vectors); the last block is \\
       shifted back to end at n (recomputing a few columns rewrites the same values), so \\
       short rows (OW = 7, 14, 28, 56...) need little or no scalar remainder. */ \\
    static inline AEK_INLINE void AEK_FN(maxrow_fast)(AEK_MAXFAST_ARGS(T), const int K, \\
                                                     const int S) \\
    { \\
        Py_ssize_t b0, k, ow; \\
        const T* AEK_R r0 = x0; \\
        const T* AEK_R r1 = x0 + W; \\
        const T* AEK_R r2 = x0 + 2 * W; \\
        if ((VEC) && AEK_VEC22 && S == 2 && n >= 4) { \\
            /* vector extensions, 4 columns per step (the last step shifted back) */ \\
            for (b0 = 0;; b0 += 4) { \\
                if (b0 > n - 4) b0 = n - 4; \\
                if (ir) AEK_MAXS2_BLOCK(SUF, K, x0, W, yr, ir, base, b0) \\
                else AEK_MAXS2_BLOCK(SUF, K, x0, W, yr, (int64_t*)NULL, base, b0) \\
                if (b0 + 4 >= n) break; \\
            } \\
            return; \\
        } \\
        if (K == 2 && n >= AEK_BL) { \\
            for (b0 = 0;; b0 += AEK_BL) { \\
                if (b0 > n - AEK_BL) b0 = n - AEK_BL; \\
                if (ir) { \\
                    for (k = 0; k < AEK_BL; k++) { \\
                        const T* p = x0 + S * (b0 + k); \\
                        T m = p[0]; \\
                        IT t = 0; \\
                        int nn = (m != m); \\
                        AEK_KXK_TAPS(AEK_MAXSTEP, T, IT, p, W) \\
                        yr[b0 + k] = m; \\
                        ir[b0 + k] = base + S * (b0 + k) + (int64_t)t; \\
                    } \\
                } else { \\
                    for (k = 0; k < AEK_BL; k++) { \\
                        const T* p = x0 + S * (b0 + k); \\
                        T m = p[0]; \\
                        int nn = (m != m); \\
                        AEK_KXK_TAPS(AEK_MAXSTEP_NOIDX, T, IT, p, W) \\
                        yr[b0 + k] = m; \\
                    } \\
                } \\
                if (b0 + AEK_BL >= n) break; \\
            } \\
            return; \\
        } \\
        /* K = 3 (and short rows): one plain loop over three row pointers; GCC vectorises \\
           this form well, while the block form above loses its vectors for 3 x 3. */ \\
        if (ir) { \\
            for (ow = 0; ow < n; ow++) { \\
                T m = r0[S * ow]; \\
                IT t = 0; \\
                int nn = (m != m); \\
                AEK_KXK_ROWS(AEK_MAXSTEP, T, IT) \\
                yr[ow] = m; \\
                ir[ow] = base + S * ow + (int64_t)t; \\
            } \\
        } else { \\
            for (ow = 0; ow < n; ow++) { \\
                T m = r0[S * ow]; \\
                int nn = (m != m); \\
                AEK_KXK_ROWS(AEK_MAXSTEP_NOIDX, T, IT) \\
                yr[ow] = m; \\
            } \\
        } \\
    } \\
     \\
    /* One out-of-line function per (K, S), so each loop is compiled as hot code whatever \\
       GCC guesses about the branches of its caller. */ \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(maxrow_fast22)(AEK_MAXFAST_ARGS(T)) \\
    { AEK_FN(maxrow_fast)(x0, W, yr, ir, n, base, 2, 2); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(maxrow_fast32)(AEK_MAXFAST_ARGS(T)) \\
    { AEK_FN(maxrow_fast)(x0, W, yr, ir, n, base, 3, 2); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(maxrow_fast21)(AEK_MAXFAST_ARGS(T)) \\
    { AEK_FN(maxrow_fast)(x0, W, yr, ir, n, base, 2, 1); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(maxrow_fast31)(AEK_MAXFAST_ARGS(T)) \\
    { AEK_FN(maxrow_fast)(x0, W, yr, ir, n, base, 3, 1); } \\
     \\
    /* One output element, any geometry (border columns of the fast rows): scalar. */ \\
    static inline void AEK_FN(max_px)(const T* AEK_R xp, const aek_geom_t* g, \\
            const aek_tab_t* tb, Py_ssize_t oh, Py_ssize_t ow, T* AEK_R y, int64_t* AEK_R ind) \\
    { \\
        Py_ssize_t ia = tb->ia[oh], ib = tb->ib[oh], ja = tb->ja[ow], jb = tb->jb[ow]; \\
        Py_ssize_t i, j, best = (oh * g->sh - g->pt + ia * g->dh) * g->W \\
                                + ow * g->sw - g->pl + ja * g->dw; \\
        T m = xp[best]; \\
        for (i = ia; i < ib; i++) { \\
            Py_ssize_t row = (oh * g->sh - g->pt + i * g->dh) * g->W + ow * g->sw - g->pl; \\
            for (j = ja; j < jb; j++) { \\
                T v = xp[row + j * g->dw]; \\
                if ((v > m) || (v != v && m == m)) { \\
                    m = v; \\
                    best = row + j * g->dw; \\
                } \\
            } \\
        } \\
        *y = m; \\
        if (ind) *ind = best; \\
    } \\
     \\
    /* Max pooling of one NCHW plane: x (H, W) -> y, ind (OH, OW); ind may be NULL. */ \\
    AEK_CLONES static void AEK_FN(maxplane_nchw)(const T* AEK_R xp, T* AEK_R yp, \\
            int64_t* AEK_R ip, const aek_geom_t* g, const aek_tab_t* tb) \\
    { \\
        const Py_ssize_t W = g->W, OW = g->OW, sw = g->sw, K = g->kh; \\
        const int fast = g->dh == 1 && g->dw == 1 && g->kh == g->kw && g->sh == sw \\
                         && (K == 2 || K == 3) && (sw == 1 || sw == 2) \\
                         && g->H * W < ((Py_ssize_t)1 << 31); \\
        /* interior columns: every tap j in-image <=> ow in [owlo[0], owhi[kw-1]); the \\
           table entries can exceed OW (a left pad wider than the output), hence the clamp */ \\
        const Py_ssize_t owa = tb->owlo[0] < OW ? tb->owlo[0] : OW; \\
        const Py_ssize_t owb = tb->owhi[g->kw - 1] > owa ? tb->owhi[g->kw - 1] : owa; \\
        Py_ssize_t oh, ow, i, j; \\
        for (oh = 0; oh < g->OH; oh++) { \\
            T* AEK_R yr = yp + oh * OW; \\
            int64_t* AEK_R ir = ip ? ip + oh * OW : NULL; \\
            const Py_ssize_t ia = tb->ia[oh], ib = tb->ib[oh]; \\
            Py_ssize_t ih; \\
            if (fast && ia == 0 && ib == K) { \\
                const T* x0; \\
                int64_t base; \\
                ih = oh * g->sh - g->pt; \\
                x0 = xp + ih * W + owa * sw - g->pl; \\
                base = (int64_t)(ih * W + owa * sw - g->pl); \\
                if (K == 2 && sw == 2) \\
                    AEK_FN(maxrow_fast22)(x0, W, yr + owa, ir ? ir + owa : NULL, owb - owa, base); \\
                else if (K == 3 && sw == 2) \\
                    AEK_FN(maxrow_fast32)(x0, W, yr + owa, ir ? ir + owa : NULL, owb - owa, base); \\
                else if (K == 2) \\
                    AEK_FN(maxrow_fast21)(x0, W, yr + owa, ir ? ir + owa : NULL, owb - owa, base); \\
                else \\
                    AEK_FN(maxrow_fast31)(x0, W, yr + owa, ir ? ir + owa : NULL, owb - owa, base); \\
                for (ow = 0; ow < owa; ow++) \\
                    AEK_FN(max_px)(xp, g, tb, oh, ow, yr + ow, ir ? ir + ow : NULL); \\
                for (ow = owb; ow < OW; ow++) \\
                    AEK_FN(max_px)(xp, g, tb, oh, ow, yr + ow, ir ? ir + ow : NULL); \\
                continue; \\
            } \\
            /* General geometry: start every column at its first in-image tap, then fold in \\
               tap after tap over the contiguous ow range where it is in-image.  Re-visiting \\
               a column's first tap is harmless (a value never beats itself), so only tap \\
               (ia, 0) is skipped. */ \\
            ih = oh * g->sh - g->pt + ia * g->dh; \\
            for (ow = 0; ow < OW; ow++) { \\
                Py_ssize_t p = ih * W + ow * sw - g->pl + tb->ja[ow] * g->dw; \\
                yr[ow] = xp[p]; \\
                if (ir) ir[ow] = p; \\
            } \\
            for (i = ia; i < ib; i++) { \\
                const T* xr; \\
                ih = oh * g->sh - g->pt + i * g->dh; \\
                xr = xp + ih * W; \\
                for (j = 0; j < g->kw; j++) { \\
                    const Py_ssize_t off = j * g->dw - g->pl, lo = tb->owlo[j], hi = tb->owhi[j]; \\
                    if (i == ia && j == 0) continue; \\
                    if (ir) { \\
                        const int64_t base = ih * W + off; \\
                        for (ow = lo; ow < hi; ow++) { \\
                            T v = xr[ow * sw + off], cur = yr[ow]; \\
                            int u = (v > cur) | ((v != v) & (cur == cur)); \\
                            yr[ow] = u ? v : cur; \\
                            ir[ow] = u ? base + ow * sw : ir[ow]; \\
                        } \\
                    } else { \\
                        for (ow = lo; ow < hi; ow++) { \\
                            T v = xr[ow * sw + off], cur = yr[ow]; \\
                            int u = (v > cur) | ((v != v) & (cur == cur)); \\
                            yr[ow] = u ? v : cur; \\
                        } \\
                    } \\
                } \\
            } \\
        } \\
    } \\
     \\
    /* ===== NHWC max pooling ===== */ \\
     \\
    /* One output pixel whose NT = K*K taps (K = 2 or 3) are all in-image, vectorised over \\
       C: xv = tap 0's channel vector, o[k] = element offset of tap k, dp[k] = its plane \\
       position minus tap 0's (p0). */ \\
    static inline AEK_INLINE void AEK_FN(maxpx_nhwc_fast)(AEK_NHWCFAST_ARGS(T), const int NT) \\
    { \\
        const Py_ssize_t o1 = o[1], o2 = o[2], o3 = o[3]; \\
        const Py_ssize_t o4 = NT == 9 ? o[4] : 0, o5 = NT == 9 ? o[5] : 0, o6 = NT == 9 ? o[6] : 0; \\
        const Py_ssize_t o7 = NT == 9 ? o[7] : 0, o8 = NT == 9 ? o[8] : 0; \\
        const IT d1 = (IT)dp[1], d2 = (IT)dp[2], d3 = (IT)dp[3]; \\
        const IT d4 = NT == 9 ? (IT)dp[4] : 0, d5 = NT == 9 ? (IT)dp[5] : 0; \\
        const IT d6 = NT == 9 ? (IT)dp[6] : 0, d7 = NT == 9 ? (IT)dp[7] : 0; \\
        const IT d8 = NT == 9 ? (IT)dp[8] : 0; \\
        Py_ssize_t c; \\
        if (iv) { \\
            for (c = 0; c < C; c++) { \\
                T m = xv[c]; \\
                IT t = 0; \\
                int nn = (m != m); \\
                AEK_NHWC_TAPS(AEK_MAXSTEP, T, IT) \\
                yv[c] = m; \\
                iv[c] = p0 + (int64_t)t; \\
            } \\
        } else { \\
            for (c = 0; c < C; c++) { \\
                T m = xv[c]; \\
                int nn = (m != m); \\
                AEK_NHWC_TAPS(AEK_MAXSTEP_NOIDX, T, IT) \\
                yv[c] = m; \\
            } \\
        } \\
    } \\
     \\
    /* Max pooling of output row oh of NHWC image xn: y / ind rows (OW, C). */ \\
    AEK_CLONES static void AEK_FN(maxrow_nhwc)(const T* AEK_R xn, T* AEK_R yrow, \\
            int64_t* AEK_R irow, const aek_geom_t* g, const aek_tab_t* tb, Py_ssize_t oh) \\
    { \\
        const Py_ssize_t C = g->C, W = g->W, ia = tb->ia[oh], ib = tb->ib[oh]; \\
        const Py_ssize_t nt = g->kh * g->kw; \\
        const int fastk = g->kh == g->kw && (g->kh == 2 || g->kh == 3) \\
                          && g->H * W < ((Py_ssize_t)1 << 31); \\
        Py_ssize_t o[9], dp[9]; \\
        Py_ssize_t ow, i, j, c0, c, cn, k; \\
        T m[AEK_CB]; \\
        IT t[AEK_CB]; \\
        if (fastk) { \\
            for (i = 0, k = 0; i < g->kh; i++) \\
                for (j = 0; j < g->kw; j++, k++) { \\
                    dp[k] = i * g->dh * W + j * g->dw; \\
                    o[k] = dp[k] * C; \\
                } \\
        } \\
        for (ow = 0; ow < g->OW; ow++) { \\
            T* AEK_R yv = yrow + ow * C; \\
            int64_t* AEK_R iv = irow ? irow + ow * C : NULL; \\
            const Py_ssize_t ja = tb->ja[ow], jb = tb->jb[ow]; \\
            const Py_ssize_t ih0 = oh * g->sh - g->pt + ia * g->dh; \\
            const Py_ssize_t iw0 = ow * g->sw - g->pl + ja * g->dw; \\
            if (fastk && ia == 0 && ib == g->kh && ja == 0 && jb == g->kw) { \\
                if (nt == 4) \\
                    AEK_FN(maxpx_nhwc_fast)(xn + (ih0 * W + iw0) * C, yv, iv, C, o, dp, \\
                                            (int64_t)(ih0 * W + iw0), 4); \\
                else \\
                    AEK_FN(maxpx_nhwc_fast)(xn + (ih0 * W + iw0) * C, yv, iv, C, o, dp, \\
                                            (int64_t)(ih0 * W + iw0), 9); \\
                continue; \\
            } \\
            /* generic: channel blocks in local arrays, taps in row-major order */ \\
            for (c0 = 0; c0 < C; c0 += AEK_CB) { \\
                const T* AEK_R xv = xn + (ih0 * W + iw0) * C + c0; \\
                const IT p0 = (IT)(ih0 * W + iw0); \\
                cn = C - c0 < AEK_CB ? C - c0 : AEK_CB; \\
                for (c = 0; c < cn; c++) { m[c] = xv[c]; t[c] = p0; } \\
                for (i = ia; i < ib; i++) { \\
                    const Py_ssize_t ih = oh * g->sh - g->pt + i * g->dh; \\
                    for (j = ja; j < jb; j++) { \\
                        const Py_ssize_t iw = ow * g->sw - g->pl + j * g->dw; \\
                        const IT p = (IT)(ih * W + iw); \\
                        if (i == ia && j == ja) continue; \\
                        xv = xn + (ih * W + iw) * C + c0; \\
                        if (iv) { \\
                            for (c = 0; c < cn; c++) { \\
                                T v = xv[c], cur = m[c]; \\
                                int u = (v > cur) | ((v != v) & (cur == cur)); \\
                                m[c] = u ? v : cur; \\
                                t[c] = u ? p : t[c]; \\
                            } \\
                        } else { \\
                            for (c = 0; c < cn; c++) { \\
                                T v = xv[c], cur = m[c]; \\
                                int u = (v > cur) | ((v != v) & (cur == cur)); \\
                                m[c] = u ? v : cur; \\
                            } \\
                        } \\
                    } \\
                } \\
                for (c = 0; c < cn; c++) yv[c0 + c] = m[c]; \\
                if (iv) for (c = 0; c < cn; c++) iv[c0 + c] = (int64_t)t[c]; \\
            } \\
        } \\
    } \\
     \\
    /* ===== average pooling ===== */ \\
     \\
    /* NCHW interior row, K x K (K = 2 or 3), stride S, dilation 1, one divisor d; blocks \\
       as in maxrow_fast.  Sums start from 0 in row-major tap order, like every other path \\
       (and the NHWC kernel), so all paths round identically. */ \\
    static inline AEK_INLINE void AEK_FN(avgrow_fast)(AEK_AVGFAST_ARGS(T), const int K, \\
                                                     const int S) \\
    { \\
        Py_ssize_t b0, k, ow; \\
        const T* AEK_R r0 = x0; \\
        const T* AEK_R r1 = x0 + W; \\
        const T* AEK_R r2 = x0 + 2 * W; \\
        if ((VEC) && AEK_VEC22 && S == 2 && n >= 4) { \\
            for (b0 = 0;; b0 += 4) {     /* as in maxrow_fast */ \\
                if (b0 > n - 4) b0 = n - 4; \\
                AEK_AVGS2_BLOCK(SUF, K, x0, W, yr, d, b0) \\
                if (b0 + 4 >= n) break; \\
            } \\
            return; \\
        } \\
        if (K == 2 && n >= AEK_BL) { \\
            for (b0 = 0;; b0 += AEK_BL) { \\
                if (b0 > n - AEK_BL) b0 = n - AEK_BL; \\
                for (k = 0; k < AEK_BL; k++) { \\
                    const T* p = x0 + S * (b0 + k); \\
                    T s = (T)0 + p[0]; \\
                    AEK_KXK_TAPS(AEK_ADD, T, IT, p, W) \\
                    yr[b0 + k] = s / d; \\
                } \\
                if (b0 + AEK_BL >= n) break; \\
            } \\
            return; \\
        } \\
        for (ow = 0; ow < n; ow++) { \\
            T s = (T)0 + r0[S * ow]; \\
            AEK_KXK_ROWS(AEK_ADD, T, IT) \\
            yr[ow] = s / d; \\
        } \\
    } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(avgrow_fast22)(AEK_AVGFAST_ARGS(T)) \\
    { AEK_FN(avgrow_fast)(x0, W, yr, n, d, 2, 2); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(avgrow_fast32)(AEK_AVGFAST_ARGS(T)) \\
    { AEK_FN(avgrow_fast)(x0, W, yr, n, d, 3, 2); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(avgrow_fast21)(AEK_AVGFAST_ARGS(T)) \\
    { AEK_FN(avgrow_fast)(x0, W, yr, n, d, 2, 1); } \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(avgrow_fast31)(AEK_AVGFAST_ARGS(T)) \\
    { AEK_FN(avgrow_fast)(x0, W, yr, n, d, 3, 1); } \\
     \\
    /* One output element, any geometry (border columns of the fast rows): the sum from 0 \\
       over the in-image taps in row-major order, as the row-wise form below. */ \\
    static inline void AEK_FN(avg_px)(const T* AEK_R xp, const aek_geom_t* g, \\
            const aek_tab_t* tb, Py_ssize_t oh, Py_ssize_t ow, T* AEK_R y) \\
    { \\
        Py_ssize_t i, j; \\
        T s = 0; \\
        for (i = tb->ia[oh]; i < tb->ib[oh]; i++) { \\
            const T* AEK_R xr = xp + (oh * g->sh - g->pt + i * g->dh) * g->W \\
                                + ow * g->sw - g->pl; \\
            for (j = tb->ja[ow]; j < tb->jb[ow]; j++) s += xr[j * g->dw]; \\
        } \\
        *y = s / (T)(tb->rowdiv[oh] * tb->coldiv[ow]); \\
    } \\
     \\
    /* Average pooling of one NCHW plane: x (H, W) -> y (OH, OW). */ \\
    AEK_CLONES static void AEK_FN(avgplane_nchw)(const T* AEK_R xp, T* AEK_R yp, \\
            const aek_geom_t* g, const aek_tab_t* tb) \\
    { \\
        const Py_ssize_t W = g->W, OW = g->OW, sw = g->sw, K = g->kh; \\
        const int fast = g->dh == 1 && g->dw == 1 && g->kh == g->kw && g->sh == sw \\
                         && (K == 2 || K == 3) && (sw == 1 || sw == 2); \\
        const Py_ssize_t owa = tb->owlo[0] < OW ? tb->owlo[0] : OW;     /* as in maxplane */ \\
        const Py_ssize_t owb = tb->owhi[g->kw - 1] > owa ? tb->owhi[g->kw - 1] : owa; \\
        Py_ssize_t oh, ow, i, j; \\
        for (oh = 0; oh < g->OH; oh++) { \\
            T* AEK_R yr = yp + oh * OW; \\
            const Py_ssize_t ia = tb->ia[oh], ib = tb->ib[oh], rd = tb->rowdiv[oh]; \\
            if (fast && ia == 0 && ib == K && owb > owa) { \\
                const Py_ssize_t ih = oh * g->sh - g->pt; \\
                const T* x0 = xp + ih * W + owa * sw - g->pl; \\
                const T d = (T)(rd * tb->coldiv[owa]);   /* interior columns share one */ \\
                if (K == 2 && sw == 2) AEK_FN(avgrow_fast22)(x0, W, yr + owa, owb - owa, d); \\
                else if (K == 3 && sw == 2) AEK_FN(avgrow_fast32)(x0, W, yr + owa, owb - owa, d); \\
                else if (K == 2) AEK_FN(avgrow_fast21)(x0, W, yr + owa, owb - owa, d); \\
                else AEK_FN(avgrow_fast31)(x0, W, yr + owa, owb - owa, d); \\
                for (ow = 0; ow < owa; ow++) AEK_FN(avg_px)(xp, g, tb, oh, ow, yr + ow); \\
                for (ow = owb; ow < OW; ow++) AEK_FN(avg_px)(xp, g, tb, oh, ow, yr + ow); \\
                continue; \\
            } \\
            /* any other row: sum tap by tap over the row */ \\
            for (ow = 0; ow < OW; ow++) yr[ow] = 0; \\
            for (i = ia; i < ib; i++) { \\
                const Py_ssize_t ih = oh * g->sh - g->pt + i * g->dh; \\
                const T* AEK_R xr = xp + ih * W; \\
                for (j = 0; j < g->kw; j++) { \\
                    const Py_ssize_t off = j * g->dw - g->pl, lo = tb->owlo[j], hi = tb->owhi[j]; \\
                    for (ow = lo; ow < hi; ow++) yr[ow] += xr[ow * sw + off]; \\
                } \\
            } \\
            for (ow = 0; ow < OW; ow++) yr[ow] = yr[ow] / (T)(rd * tb->coldiv[ow]); \\
        } \\
    } \\
     \\
    /* NHWC pixel with all NT = K*K taps in-image: sum over taps, vectorised over C. */ \\
    static inline AEK_INLINE void AEK_FN(avgpx_nhwc_fast)(const T* AEK_R xv, T* AEK_R yv, \\
            Py_ssize_t C, const Py_ssize_t* o, T d, const int NT) \\
    { \\
        const Py_ssize_t o1 = o[1], o2 = o[2], o3 = o[3]; \\
        const Py_ssize_t o4 = NT == 9 ? o[4] : 0, o5 = NT == 9 ? o[5] : 0, o6 = NT == 9 ? o[6] : 0; \\
        const Py_ssize_t o7 = NT == 9 ? o[7] : 0, o8 = NT == 9 ? o[8] : 0; \\
        Py_ssize_t c; \\
        for (c = 0; c < C; c++) { \\
            T s = (T)0 + xv[c]; \\
            AEK_NHWC_TAPS(AEK_ADD, T, IT) \\
            yv[c] = s / d; \\
        } \\
    } \\
     \\
    /* Average pooling of output row oh of NHWC image xn: y row (OW, C). */ \\
    AEK_CLONES static void AEK_FN(avgrow_nhwc)(const T* AEK_R xn, T* AEK_R yrow, \\
            const aek_geom_t* g, const aek_tab_t* tb, Py_ssize_t oh) \\
    { \\
        const Py_ssize_t C = g->C, W = g->W, ia = tb->ia[oh], ib = tb->ib[oh]; \\
        const int fastk = g->kh == g->kw && (g->kh == 2 || g->kh == 3); \\
        Py_ssize_t o[9]; \\
        Py_ssize_t ow, i, j, c, k; \\
        if (fastk) { \\
            for (i = 0, k = 0; i < g->kh; i++) \\
                for (j = 0; j < g->kw; j++, k++) o[k] = (i * g->dh * W + j * g->dw) * C; \\
        } \\
        for (ow = 0; ow < g->OW; ow++) { \\
            T* AEK_R yv = yrow + ow * C; \\
            const T d = (T)(tb->rowdiv[oh] * tb->coldiv[ow]); \\
            const Py_ssize_t ja = tb->ja[ow], jb = tb->jb[ow]; \\
            if (fastk && ia == 0 && ib == g->kh && ja == 0 && jb == g->kw) { \\
                const T* xv = xn + ((oh * g->sh - g->pt) * W + ow * g->sw - g->pl) * C; \\
                if (g->kh == 2) AEK_FN(avgpx_nhwc_fast)(xv, yv, C, o, d, 4); \\
                else AEK_FN(avgpx_nhwc_fast)(xv, yv, C, o, d, 9); \\
                continue; \\
            } \\
            for (c = 0; c < C; c++) yv[c] = 0; \\
            for (i = ia; i < ib; i++) { \\
                const Py_ssize_t ih = oh * g->sh - g->pt + i * g->dh; \\
                for (j = ja; j < jb; j++) { \\
                    const Py_ssize_t iw = ow * g->sw - g->pl + j * g->dw; \\
                    const T* AEK_R xv = xn + (ih * W + iw) * C; \\
                    for (c = 0; c < C; c++) yv[c] += xv[c]; \\
                } \\
            } \\
            for (c = 0; c < C; c++) yv[c] = yv[c] / d; \\
        } \\
    } \\
     \\
    /* NCHW average pooling backward, gather form, `planes` consecutive planes.  Each \\
       plane first divides gy by the window divisors once into q (OH, OW) (the interior \\
       columns share one divisor); each gx row ih then sums the q rows of the windows \\
       covering it, visited in (oh, j) order like the NHWC kernel, so both layouts give \\
       bitwise the same result.  A stride-2 row is built as its even and odd columns \\
       (ev, od: every tap then adds a contiguous, shifted q row) and interleaved at the \\
       end; stride 1 adds into the gx row directly.  scratch: OH*OW + W + 2 elements. \\
       AVX2, not AVX-512: 16-float vectors leave these short rows mostly to remainder \\
       code (3 x 3 / stride 2, 112 columns: 1.25x slower with them). */ \\
    AEK_CLONES AEK_NOINLINE static void AEK_FN(avgbwd_planes_nchw)(const T* AEK_R gy, \\
            T* AEK_R gx, Py_ssize_t planes, const aek_geom_t* g, const aek_tab_t* tb, \\
            T* AEK_R scratch) \\
    { \\
        const Py_ssize_t W = g->W, OW = g->OW, OHW = g->OH * OW, sw = g->sw; \\
        const Py_ssize_t owa = tb->owlo[0] < OW ? tb->owlo[0] : OW;     /* as in maxplane */ \\
        const Py_ssize_t owb = tb->owhi[g->kw - 1] > owa ? tb->owhi[g->kw - 1] : owa; \\
        T* AEK_R q = scratch; \\
        T* AEK_R ev = scratch + OHW; \\
        T* AEK_R od = ev + (W + 1) / 2; \\
        Py_ssize_t p, oh, ow, ih, i, j, m; \\
        for (p = 0; p < planes; p++) { \\
            const T* AEK_R gyp = gy + p * OHW; \\
            T* AEK_R gxp = gx + p * g->H * W; \\
            for (oh = 0; oh < g->OH; oh++) { \\
                const T* AEK_R gyr = gyp + oh * OW; \\
                T* AEK_R qr = q + oh * OW; \\
                const Py_ssize_t rd = tb->rowdiv[oh]; \\
                for (ow = 0; ow < owa; ow++) qr[ow] = gyr[ow] / (T)(rd * tb->coldiv[ow]); \\
                if (owb > owa) { \\
                    const T d = (T)(rd * tb->coldiv[owa]); \\
                    for (ow = owa; ow < owb; ow++) qr[ow] = gyr[ow] / d; \\
                } \\
                for (ow = owb; ow < OW; ow++) qr[ow] = gyr[ow] / (T)(rd * tb->coldiv[ow]); \\
            } \\
            for (ih = 0; ih < g->H; ih++) { \\
                T* AEK_R gxr = gxp + ih * W; \\
                if (sw == 2) { \\
                    for (m = 0; m < (W + 1) / 2; m++) ev[m] = 0; \\
                    for (m = 0; m < W / 2; m++) od[m] = 0; \\
                } else { \\
                    for (m = 0; m < W; m++) gxr[m] = 0; \\
                } \\
                for (i = g->kh - 1; i >= 0; i--) { \\
                    /* window row oh = t / sh covers gx row ih if that divides; strides 1 \\
                       and 2 without an integer division (dearer than a short row's adds) */ \\
                    const Py_ssize_t t = ih + g->pt - i * g->dh; \\
                    Py_ssize_t oh_; \\
                    if (t < 0) continue; \\
                    if (g->sh == 1) oh_ = t; \\
                    else if (g->sh == 2) { if (t & 1) continue; oh_ = t >> 1; } \\
                    else { if (t % g->sh != 0) continue; oh_ = t / g->sh; } \\
                    if (oh_ >= g->OH) continue; \\
                    const T* AEK_R qr = q + oh_ * OW; \\
                    for (j = 0; j < g->kw; j++) { \\
                        const Py_ssize_t off = j * g->dw - g->pl, lo = tb->owlo[j], hi = tb->owhi[j]; \\
                        if (sw == 2) { \\
                            /* column 2*ow + off = 2*(ow + sh) + par */ \\
                            const Py_ssize_t par = off & 1, sh = (off - par) / 2; \\
                            T* AEK_R ph = (par ? od : ev) + sh; \\
                            for (ow = lo; ow < hi; ow++) ph[ow] += qr[ow]; \\
                        } else if (sw == 1) { \\
                            for (ow = lo; ow < hi; ow++) gxr[ow + off] += qr[ow]; \\
                        } else { \\
                            for (ow = lo; ow < hi; ow++) gxr[ow * sw + off] += qr[ow]; \\
                        } \\
                    } \\
                } \\
                if (sw == 2) { \\
                    for (m = 0; m < W / 2; m++) { \\
                        gxr[2 * m] = ev[m]; \\
                        gxr[2 * m + 1] = od[m]; \\
                    } \\
                    if (W & 1) gxr[W - 1] = ev[W / 2]; \\
                } \\
            } \\
        } \\
    } \\
     \\
    /* NHWC average pooling backward, gather form: owns gx row ih of one image.  The output \\
       rows covering it are oh = (ih + pt - i*dh) / sh where that divides; taps i are \\
       visited descending, i.e. oh ascending (the NCHW order). */ \\
    AEK_CLONES static void AEK_FN(avgbwd_row_nhwc)(const T* AEK_R gyn, T* AEK_R gxr, \\
            const aek_geom_t* g, const aek_tab_t* tb, Py_ssize_t ih) \\
    { \\
        const Py_ssize_t C = g->C; \\
        Py_ssize_t oh, ow, i, j, c, q; \\
        memset(gxr, 0, (size_t)(g->W * C) * sizeof(T)); \\
        for (i = g->kh - 1; i >= 0; i--) { \\
            q = ih + g->pt - i * g->dh; \\
            if (q < 0 || q % g->sh != 0) continue; \\
            oh = q / g->sh; \\
            if (oh >= g->OH) continue; \\
            for (j = 0; j < g->kw; j++) { \\
                const Py_ssize_t off = j * g->dw - g->pl, lo = tb->owlo[j], hi = tb->owhi[j]; \\
                for (ow = lo; ow < hi; ow++) { \\
                    const T* AEK_R gyv = gyn + (oh * g->OW + ow) * C; \\
                    T* AEK_R gxv = gxr + (ow * g->sw + off) * C; \\
                    const T d = (T)(tb->rowdiv[oh] * tb->coldiv[ow]); \\
                    for (c = 0; c < C; c++) gxv[c] += gyv[c] / d; \\
                } \\
            } \\
        } \\
    }


    /* ===== NCHW max pooling: 2 x 2 window, stride 2, no padding, dilation 1 =====
       (LeNet-5, the conv autoencoder.)  Written with GCC/Clang vector extensions, 4 output
       columns (8 input columns of each row) per step: GCC unrolls a 4-iteration loop of
       the scalar form completely and then keeps it scalar, branching on every compare,
       and short rows (OW = 5, 7) are too short for wider blocks.  Floats travel in
       16-byte vectors.  Doubles travel in 32-byte vectors where AVX clones exist (one
       vector per step; the rare baseline clone then gets scalar code: GCC lowers 32-byte
       double compares without AVX element by element), else in 16-byte ones, which
       every target has (SSE2, NEON). */
    #if defined(__GNUC__)
    #define AEK_VEC22 1
    typedef float aek_vt_f32 __attribute__((vector_size(16)));     /* values */
    typedef int32_t aek_mt_f32 __attribute__((vector_size(16)));   /* their lane masks */
    typedef int64_t aek_qt_f32 __attribute__((vector_size(32)));   /* their plane positions */
    #define AEK_L_f32 4
    #if defined(AEK_CLONES_ON)
    #define AEK_L_f64 4
    #else
    #define AEK_L_f64 2
    #endif
    typedef double aek_vt_f64 __attribute__((vector_size(8 * AEK_L_f64)));
    typedef int64_t aek_mt_f64 __attribute__((vector_size(8 * AEK_L_f64)));
    typedef int64_t aek_qt_f64 __attribute__((vector_size(8 * AEK_L_f64)));
    #if defined(__clang__)
    #define AEK_SHUF(a, b, MT, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
    #else
    #define AEK_SHUF(a, b, MT, ...) __builtin_shuffle(a, b, (MT){__VA_ARGS__})
    #endif
    /* The even and the odd elements of the 2 * L at lo, hi (window columns 0 and 1). */
    #define AEK_EV_f32(lo, hi) AEK_SHUF(lo, hi, aek_mt_f32, 0, 2, 4, 6)
    #define AEK_OD_f32(lo, hi) AEK_SHUF(lo, hi, aek_mt_f32, 1, 3, 5, 7)
    #if AEK_L_f64 == 4
    #define AEK_EV_f64(lo, hi) AEK_SHUF(lo, hi, aek_mt_f64, 0, 2, 4, 6)
    #define AEK_OD_f64(lo, hi) AEK_SHUF(lo, hi, aek_mt_f64, 1, 3, 5, 7)
    #define AEK_COLS_f64 ((aek_qt_f64){0, 2, 4, 6})
    #else
    #define AEK_EV_f64(lo, hi) AEK_SHUF(lo, hi, aek_mt_f64, 0, 2)
    #define AEK_OD_f64(lo, hi) AEK_SHUF(lo, hi, aek_mt_f64, 1, 3)
    #define AEK_COLS_f64 ((aek_qt_f64){0, 2})
    #endif
    /* Plane positions of the lanes' windows relative to the first. */
    #define AEK_COLS_f32 ((aek_qt_f32){0, 2, 4, 6})
    /* int64 lanes from lane masks (for floats element by element: GCC makes that one
       vpmovsxdq, __builtin_convertvector two and an insert). */
    #define AEK_WIDEN_f32(v) ((aek_qt_f32){(v)[0], (v)[1], (v)[2], (v)[3]})
    #define AEK_WIDEN_f64(v) ((aek_qt_f64)(v))
    /* The max-pool update rule per lane: take tap v unless v <= m or m is a NaN (so a
       greater v or the first NaN wins); u = the lanes that took it. */
    #define AEK_V22_STEP(VT, MT, v) \\
            u = (MT)(~((v) <= m) & (m == m)); \\
            m = (VT)(((MT)(v) & u) | ((MT)m & ~u));
    /* L output columns from c0 on of the input row pair at r0 (SUF: f32 or f64): values
       to yr, plane positions base + 2*ow + tap offset (0, 1, W or W + 1) to ir unless ir
       is NULL.  The tap is tracked as two lane masks (right column, bottom row). */
    #define AEK_V22_LANES(SUF, r0, W, yr, ir, base, c0) { \\
            aek_vt_##SUF lo_, hi_, a, b, c, d, m; \\
            aek_mt_##SUF u, right, bottom; \\
            memcpy(&lo_, (r0) + 2 * (c0), sizeof(lo_)); \\
            memcpy(&hi_, (r0) + 2 * (c0) + AEK_L_##SUF, sizeof(hi_)); \\
            a = AEK_EV_##SUF(lo_, hi_); \\
            b = AEK_OD_##SUF(lo_, hi_); \\
            memcpy(&lo_, (r0) + (W) + 2 * (c0), sizeof(lo_)); \\
            memcpy(&hi_, (r0) + (W) + 2 * (c0) + AEK_L_##SUF, sizeof(hi_)); \\
            c = AEK_EV_##SUF(lo_, hi_); \\
            d = AEK_OD_##SUF(lo_, hi_); \\
            m = a; \\
            AEK_V22_STEP(aek_vt_##SUF, aek_mt_##SUF, b) right = u; \\
            AEK_V22_STEP(aek_vt_##SUF, aek_mt_##SUF, c) right &= ~u; bottom = u; \\
            AEK_V22_STEP(aek_vt_##SUF, aek_mt_##SUF, d) right |= u; bottom |= u; \\
            memcpy((yr) + (c0), &m, sizeof(m)); \\
            if (ir) { \\
                aek_qt_##SUF pos = AEK_COLS_##SUF + (int64_t)((base) + 2 * (c0)) \\
                                   - AEK_WIDEN_##SUF(right) \\
                                   + (AEK_WIDEN_##SUF(bottom) & (int64_t)(W)); \\
                memcpy((ir) + (c0), &pos, sizeof(pos)); } }
    /* Output columns b0..b0+3. */
    #define AEK_V22_BLOCK(SUF, r0, W, yr, ir, base, b0) { \\
            int h_; \\
            for (h_ = 0; h_ < 4; h_ += AEK_L_##SUF) \\
                AEK_V22_LANES(SUF, r0, W, yr, ir, base, (b0) + h_) }
    /* Average-pool backward: the gradients of 4 output columns b0.. from gyr, divided by
       d, each written twice (window columns 0 and 1) to gx rows r0 and r1. */
    #define AEK_DUPLO_f32(v) AEK_SHUF(v, v, aek_mt_f32, 0, 0, 1, 1)
    #define AEK_DUPHI_f32(v) AEK_SHUF(v, v, aek_mt_f32, 2, 2, 3, 3)
    #if AEK_L_f64 == 4
    #define AEK_DUPLO_f64(v) AEK_SHUF(v, v, aek_mt_f64, 0, 0, 1, 1)
    #define AEK_DUPHI_f64(v) AEK_SHUF(v, v, aek_mt_f64, 2, 2, 3, 3)
    #else
    #define AEK_DUPLO_f64(v) AEK_SHUF(v, v, aek_mt_f64, 0, 0)
    #define AEK_DUPHI_f64(v) AEK_SHUF(v, v, aek_mt_f64, 1, 1)
    #endif
    #define AEK_B22_BLOCK(SUF, gyr, d, r0, r1, b0) { \\
            int h_; \\
            for (h_ = 0; h_ < 4; h_ += AEK_L_##SUF) { \\
                aek_vt_##SUF v_, lo_, hi_; \\
                memcpy(&v_, (gyr) + (b0) + h_, sizeof(v_)); \\
                v_ = v_ / (d) + 0;      /* + 0: the sum from 0 of the scatter form */ \\
                lo_ = AEK_DUPLO_##SUF(v_); \\
                hi_ = AEK_DUPHI_##SUF(v_); \\
                memcpy((r0) + 2 * ((b0) + h_), &lo_, sizeof(lo_)); \\
                memcpy((r0) + 2 * ((b0) + h_) + AEK_L_##SUF, &hi_, sizeof(hi_)); \\
                memcpy((r1) + 2 * ((b0) + h_), &lo_, sizeof(lo_)); \\
                memcpy((r1) + 2 * ((b0) + h_) + AEK_L_##SUF, &hi_, sizeof(hi_)); } }
    /* Stride-2 rows of a K x K window (K = 2 or 3, dilation 1), L output columns from c0
       on (the interior rows of maxplane_nchw / avgplane_nchw): the taps of window column
       j of row `row` are its elements 2*c0 + j, + 2, ...: the even (j = 0) or odd (j = 1)
       ones of the 2L at row + 2*c0, and for j = 2 the odd ones of the 2L at row + 2*c0 + 1
       (which end at the last tap: nothing past the window is read). */
    #define AEK_LANE_f32 int32_t
    #define AEK_LANE_f64 int64_t
    #define AEK_S2_TAP(SUF, row, c0, j, v) { \\
            aek_vt_##SUF lo_, hi_; \\
            memcpy(&lo_, (row) + 2 * (c0) + ((j) == 2), sizeof(lo_)); \\
            memcpy(&hi_, (row) + 2 * (c0) + ((j) == 2) + AEK_L_##SUF, sizeof(hi_)); \\
            v = (j) == 0 ? AEK_EV_##SUF(lo_, hi_) : AEK_OD_##SUF(lo_, hi_); }
    /* Average: the sum from 0 in row-major tap order (as every other path), / d. */
    #define AEK_AVGS2_LANES(SUF, K, x0, W, yr, d, c0) { \\
            aek_vt_##SUF s_ = {0}, v_; \\
            int i_, j_; \\
            for (i_ = 0; i_ < (K); i_++) \\
                for (j_ = 0; j_ < (K); j_++) { \\
                    AEK_S2_TAP(SUF, (x0) + i_ * (W), c0, j_, v_) \\
                    s_ = s_ + v_; } \\
            s_ = s_ / (d); \\
            memcpy((yr) + (c0), &s_, sizeof(s_)); }
    /* Max: the AEK_V22_STEP rule tap by tap in row-major order; t_ = the offset of each
       lane's tap from its tap 0; plane positions base + 2*ow + t_ to ir unless NULL. */
    #define AEK_MAXS2_LANES(SUF, K, x0, W, yr, ir, base, c0) { \\
            aek_vt_##SUF m, v_; \\
            aek_mt_##SUF u, t_ = {0}; \\
            int i_, j_; \\
            AEK_S2_TAP(SUF, x0, c0, 0, m) \\
            for (i_ = 0; i_ < (K); i_++) \\
                for (j_ = 0; j_ < (K); j_++) { \\
                    if (i_ == 0 && j_ == 0) continue; \\
                    AEK_S2_TAP(SUF, (x0) + i_ * (W), c0, j_, v_) \\
                    AEK_V22_STEP(aek_vt_##SUF, aek_mt_##SUF, v_) \\
                    t_ = (t_ & ~u) | (u & (AEK_LANE_##SUF)(i_ * (W) + j_)); } \\
            memcpy((yr) + (c0), &m, sizeof(m)); \\
            if (ir) { \\
                aek_qt_##SUF pos = AEK_COLS_##SUF + (int64_t)((base) + 2 * (c0)) \\
                                   + AEK_WIDEN_##SUF(t_); \\
                memcpy((ir) + (c0), &pos, sizeof(pos)); } }
    /* The input rows of the output row AEK_PFROWS rows on, requested ahead: these rows
       read two or three streams of short rows, which the hardware prefetchers follow
       poorly once the planes come from DRAM (fp64 3 x 3 / stride 2 max and average
       pooling, 1 thread: 1.15-1.3x faster).  A prefetch never faults, so the rows may lie
       past the plane.  Then output columns b0..b0+3. */
    #ifndef AEK_PFROWS
    #define AEK_PFROWS 2
    #endif
    #define AEK_S2_PREFETCH(x0, W, b0) { \\
            __builtin_prefetch((x0) + (1 + 2 * AEK_PFROWS) * (W) + 2 * (b0)); \\
            __builtin_prefetch((x0) + (2 + 2 * AEK_PFROWS) * (W) + 2 * (b0)); }
    #define AEK_AVGS2_BLOCK(SUF, K, x0, W, yr, d, b0) { \\
            int h_; \\
            AEK_S2_PREFETCH(x0, W, b0) \\
            for (h_ = 0; h_ < 4; h_ += AEK_L_##SUF) \\
                AEK_AVGS2_LANES(SUF, K, x0, W, yr, d, (b0) + h_) }
    #define AEK_MAXS2_BLOCK(SUF, K, x0, W, yr, ir, base, b0) { \\
            int h_; \\
            AEK_S2_PREFETCH(x0, W, b0) \\
            for (h_ = 0; h_ < 4; h_ += AEK_L_##SUF) \\
                AEK_MAXS2_LANES(SUF, K, x0, W, yr, ir, base, (b0) + h_) }
    #else
    #define AEK_VEC22 0
    #define AEK_V22_BLOCK(SUF, r0, W, yr, ir, base, b0) { }
    #define AEK_B22_BLOCK(SUF, gyr, d, r0, r1, b0) { }
    #define AEK_AVGS2_BLOCK(SUF, K, x0, W, yr, d, b0) { }
    #define AEK_MAXS2_BLOCK(SUF, K, x0, W, yr, ir, base, b0) { }
    #endif
    #define AEK_FN_f32(name) aek_##name##_f32
    #define AEK_FN_f32w(name) aek_##name##_f32w
    #define AEK_FN_f64(name) aek_##name##_f64
    AEK_DEFINE_KERNELS(float, int32_t, AEK_FN_f32, f32, 1)
    AEK_DEFINE_KERNELS(float, int64_t, AEK_FN_f32w, f32, 0)  /* float planes of >= 2**31 elements */
    AEK_DEFINE_KERNELS(double, int64_t, AEK_FN_f64, f64, 1)

    #define AEK_DEFINE_POOL22(T, SUF, AEK_FN) \\
    /* One window of nr rows x nc columns (1 or 2 each) at p, plane position pos. */ \\
    static inline AEK_INLINE void AEK_FN(max22_px)(const T* AEK_R p, Py_ssize_t W, int nr, \\
            int nc, T* AEK_R y, int64_t* AEK_R ind, int64_t pos) \\
    { \\
        T m = p[0]; \\
        int64_t t = 0; \\
        int nn = (m != m); \\
        if (nc == 2) AEK_MAXSTEP(T, int64_t, p[1], 1) \\
        if (nr == 2) { \\
            AEK_MAXSTEP(T, int64_t, p[W], W) \\
            if (nc == 2) AEK_MAXSTEP(T, int64_t, p[W + 1], W + 1) \\
        } \\
        *y = m; \\
        if (ind) *ind = pos + t; \\
    } \\
    \\
    /* One output row from nr input rows at r0 (plane position base); windows of columns \\
       ow < nfull are 2 wide, the rest (ceil_mode, odd W: at most one) 1 wide.  Full \\
       windows go 4 at a time, the last step shifted back to end at nfull (it recomputes a \\
       few columns) so OW = 5, 7, 14 need no scalar remainder. */ \\
    static inline AEK_INLINE void AEK_FN(max22_row)(const T* AEK_R r0, T* AEK_R yr, \\
            int64_t* AEK_R ir, Py_ssize_t nfull, Py_ssize_t OW, Py_ssize_t W, int nr, \\
            int64_t base) \\
    { \\
        Py_ssize_t b0, ow = 0; \\
        if (AEK_VEC22 && nr == 2 && nfull >= 4) { \\
            for (b0 = 0;; b0 += 4) { \\
                if (b0 > nfull - 4) b0 = nfull - 4; \\
                __builtin_prefetch(r0 + 2 * AEK_PFROWS * W + 2 * b0);   /* as AEK_S2_PREFETCH */ \\
                __builtin_prefetch(r0 + (2 * AEK_PFROWS + 1) * W + 2 * b0); \\
                if (ir) AEK_V22_BLOCK(SUF, r0, W, yr, ir, base, b0) \\
                else AEK_V22_BLOCK(SUF, r0, W, yr, (int64_t*)NULL, base, b0) \\
                if (b0 + 4 >= nfull) break; \\
            } \\
            ow = nfull; \\
        } \\
        for (; ow < OW; ow++) \\
            AEK_FN(max22_px)(r0 + 2 * ow, W, nr, ow < nfull ? 2 : 1, yr + ow, \\
                             ir ? ir + ow : NULL, base + 2 * ow); \\
    } \\
    \\
    /* Max pooling of `planes` consecutive NCHW planes (H, W) -> (OH, OW); ind may be \\
       NULL.  Windows of rows oh < H/2 are 2 rows high; ceil_mode with an odd H adds a \\
       last row of windows on input row H - 1 alone (the same for columns).  One call per \\
       range of planes: no per-row call or table. */ \\
    AEK_CLONES_V4 AEK_NOINLINE static void AEK_FN(maxpool22_nchw)(const T* AEK_R x, \\
            T* AEK_R y, int64_t* AEK_R ind, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W, \\
            Py_ssize_t OH, Py_ssize_t OW) \\
    { \\
        const Py_ssize_t fh = H / 2 < OH ? H / 2 : OH, fw = W / 2 < OW ? W / 2 : OW; \\
        Py_ssize_t p, oh; \\
        for (p = 0; p < planes; p++) { \\
            const T* AEK_R xp = x + p * H * W; \\
            T* AEK_R yp = y + p * OH * OW; \\
            int64_t* AEK_R ip = ind ? ind + p * OH * OW : NULL; \\
            for (oh = 0; oh < OH; oh++) \\
                AEK_FN(max22_row)(xp + 2 * oh * W, yp + oh * OW, ip ? ip + oh * OW : NULL, fw, \\
                                  OW, W, oh < fh ? 2 : 1, 2 * oh * W); \\
        } \\
    } \\
    /* Average pooling backward of `planes` consecutive NCHW planes, same geometry: the \\
       windows do not overlap, so every gx element is 0 + its window's gy / divisor \\
       (the value of the scatter form) or 0 where no window reaches (floor mode, odd \\
       size), written in one streaming pass.  Full windows share one divisor per row; \\
       the 1-wide ones of ceil_mode take theirs from the table. */ \\
    AEK_CLONES_V4 AEK_NOINLINE static void AEK_FN(avgbwd22_nchw)(const T* AEK_R gy, \\
            T* AEK_R gx, Py_ssize_t planes, const aek_geom_t* g, const aek_tab_t* tb) \\
    { \\
        const Py_ssize_t H = g->H, W = g->W, OH = g->OH, OW = g->OW; \\
        const Py_ssize_t fh = H / 2 < OH ? H / 2 : OH, fw = W / 2 < OW ? W / 2 : OW; \\
        const Py_ssize_t rows = fh + OH, cols = fw + OW;   /* rows, columns reached */ \\
        Py_ssize_t p, oh, ow, b0, c; \\
        for (p = 0; p < planes; p++) { \\
            const T* AEK_R gyp = gy + p * OH * OW; \\
            T* AEK_R gxp = gx + p * H * W; \\
            for (oh = 0; oh < OH; oh++) { \\
                const T* AEK_R gyr = gyp + oh * OW; \\
                T* AEK_R r0 = gxp + 2 * oh * W; \\
                T* r1 = oh < fh ? r0 + W : r0;   /* a 1-high window: r0 twice */ \\
                const Py_ssize_t rd = tb->rowdiv[oh]; \\
                ow = 0; \\
                if (fw > 0) { \\
                    const T d = (T)(rd * tb->coldiv[0]); \\
                    if (AEK_VEC22 && fw >= 4) { \\
                        for (b0 = 0;; b0 += 4) { \\
                            if (b0 > fw - 4) b0 = fw - 4; \\
                            AEK_B22_BLOCK(SUF, gyr, d, r0, r1, b0) \\
                            if (b0 + 4 >= fw) break; \\
                        } \\
                        ow = fw; \\
                    } \\
                    for (; ow < fw; ow++) { \\
                        const T v = gyr[ow] / d + 0; \\
                        r0[2 * ow] = v; r0[2 * ow + 1] = v; r1[2 * ow] = v; r1[2 * ow + 1] = v; \\
                    } \\
                } \\
                for (; ow < OW; ow++) { \\
                    const T v = gyr[ow] / (T)(rd * tb->coldiv[ow]) + 0; \\
                    r0[fw + ow] = v; r1[fw + ow] = v; \\
                } \\
                for (c = cols; c < W; c++) { r0[c] = 0; r1[c] = 0; } \\
            } \\
            for (c = rows * W; c < H * W; c++) gxp[c] = 0; \\
        } \\
    }

    AEK_DEFINE_POOL22(float, f32, AEK_FN_f32)
    AEK_DEFINE_POOL22(double, f64, AEK_FN_f64)

    /* Whether some p[i], read as unsigned (a negative int64 is >= 2**63), is >= bound:
       the pooling-index range check.  An OR of compares, no early exit: the loop
       vectorises (AVX-512 has unsigned 64-bit compares; AVX2 flips the sign bits). */
    AEK_CLONES_V4 AEK_NOINLINE static int aek_any_at_or_above(const int64_t* AEK_R p,
            Py_ssize_t n, uint64_t bound)
    {
        Py_ssize_t i;
        int bad = 0;
        for (i = 0; i < n; i++) bad |= (uint64_t)p[i] >= bound;
        return bad;
    }
    """
    int aek_omp_max_threads()
    ctypedef struct aek_geom_t:
        Py_ssize_t N, C, H, W, OH, OW, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw
    ctypedef struct aek_tab_t:
        Py_ssize_t* owlo
        Py_ssize_t* owhi
        Py_ssize_t* ja
        Py_ssize_t* jb
        Py_ssize_t* ia
        Py_ssize_t* ib
        Py_ssize_t* rowdiv
        Py_ssize_t* coldiv
    void aek_maxplane_nchw_f32(const float* xp, float* yp, int64_t* ip, const aek_geom_t* g,
                              const aek_tab_t* tb)
    int aek_any_at_or_above(const int64_t* p, Py_ssize_t n, uint64_t bound)
    void aek_maxpool22_nchw_f32(const float* x, float* y, int64_t* ind, Py_ssize_t planes,
                                Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
    void aek_maxpool22_nchw_f64(const double* x, double* y, int64_t* ind, Py_ssize_t planes,
                                Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
    void aek_avgbwd22_nchw_f32(const float* gy, float* gx, Py_ssize_t planes,
                               const aek_geom_t* g, const aek_tab_t* tb)
    void aek_avgbwd22_nchw_f64(const double* gy, double* gx, Py_ssize_t planes,
                               const aek_geom_t* g, const aek_tab_t* tb)
    void aek_maxrow_nhwc_f32(const float* xn, float* yrow, int64_t* irow, const aek_geom_t* g,
                            const aek_tab_t* tb, Py_ssize_t oh)
    void aek_avgplane_nchw_f32(const float* xp, float* yp, const aek_geom_t* g, const aek_tab_t* tb)
    void aek_avgrow_nhwc_f32(const float* xn, float* yrow, const aek_geom_t* g, const aek_tab_t* tb,
                            Py_ssize_t oh)
    void aek_avgbwd_planes_nchw_f32(const float* gy, float* gx, Py_ssize_t planes,
                                    const aek_geom_t* g, const aek_tab_t* tb, float* scratch)
    void aek_avgbwd_row_nhwc_f32(const float* gyn, float* gxr, const aek_geom_t* g,
                                const aek_tab_t* tb, Py_ssize_t ih)
    void aek_maxplane_nchw_f32w(const float* xp, float* yp, int64_t* ip, const aek_geom_t* g,
                              const aek_tab_t* tb)
    void aek_maxrow_nhwc_f32w(const float* xn, float* yrow, int64_t* irow, const aek_geom_t* g,
                            const aek_tab_t* tb, Py_ssize_t oh)
    void aek_avgplane_nchw_f32w(const float* xp, float* yp, const aek_geom_t* g, const aek_tab_t* tb)
    void aek_avgrow_nhwc_f32w(const float* xn, float* yrow, const aek_geom_t* g, const aek_tab_t* tb,
                            Py_ssize_t oh)
    void aek_avgbwd_row_nhwc_f32w(const float* gyn, float* gxr, const aek_geom_t* g,
                                const aek_tab_t* tb, Py_ssize_t ih)
    void aek_maxplane_nchw_f64(const double* xp, double* yp, int64_t* ip, const aek_geom_t* g,
                              const aek_tab_t* tb)
    void aek_maxrow_nhwc_f64(const double* xn, double* yrow, int64_t* irow, const aek_geom_t* g,
                            const aek_tab_t* tb, Py_ssize_t oh)
    void aek_avgplane_nchw_f64(const double* xp, double* yp, const aek_geom_t* g, const aek_tab_t* tb)
    void aek_avgrow_nhwc_f64(const double* xn, double* yrow, const aek_geom_t* g, const aek_tab_t* tb,
                            Py_ssize_t oh)
    void aek_avgbwd_planes_nchw_f64(const double* gy, double* gx, Py_ssize_t planes,
                                    const aek_geom_t* g, const aek_tab_t* tb, double* scratch)
    void aek_avgbwd_row_nhwc_f64(const double* gyn, double* gxr, const aek_geom_t* g,
                                const aek_tab_t* tb, Py_ssize_t ih)


# ----------------------------------------------------------------------------------
# threads

# Threads used by every kernel of this module (prange(num_threads=...)).
cdef int _num_threads = max(1, aek_omp_max_threads())


def set_num_threads(n):
    """Set the number of OpenMP threads the pooling kernels use (an int >= 1)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _num_threads = <int>min(n, 1 << 16)


def get_num_threads():
    """Number of OpenMP threads the pooling kernels use."""
    return _num_threads


# ----------------------------------------------------------------------------------
# geometry helpers

cdef inline void _span(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size,
                       Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Taps t in [0, k) whose position start + t*d lies in [0, size) form [lo, hi).
    # (Also: outputs o in [0, nout) whose o*s + off lies in [0, size), with
    # start=off, k=nout, d=s.)  lo == hi when there are none; 0 <= lo <= hi <= k.
    cdef Py_ssize_t a = 0, b
    if start < 0:
        a = (-start + d - 1) // d
    if start >= size:
        b = 0
    else:
        b = (size - 1 - start) // d + 1
        if b > k:
            b = k
    if a > k:
        a = k
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b


cdef int _check_geom(const pool2d_geom_t* g) noexcept nogil:
    cdef Py_ssize_t o, a, b
    if (g.N < 0 or g.C < 0 or g.H < 0 or g.W < 0 or g.OH < 0 or g.OW < 0
            or g.kh < 1 or g.kw < 1 or g.sh < 1 or g.sw < 1 or g.dh < 1 or g.dw < 1
            or g.pt < 0 or g.pb < 0 or g.pl < 0 or g.pr < 0):
        return AEK_BAD_PARAM
    if g.N == 0 or g.C == 0 or g.OH == 0 or g.OW == 0:
        return AEK_OK
    for o in range(g.OH):
        _span(o * g.sh - g.pt, g.kh, g.dh, g.H, &a, &b)
        if a == b:
            return AEK_EMPTY_WINDOW
    for o in range(g.OW):
        _span(o * g.sw - g.pl, g.kw, g.dw, g.W, &a, &b)
        if a == b:
            return AEK_EMPTY_WINDOW
    return AEK_OK


cdef inline int _threads(int nthreads, Py_ssize_t work, Py_ssize_t elems) noexcept nogil:
    # Threads for `work` independent tasks touching `elems` elements in all: below
    # ~32K elements the fork/join costs more than it saves (as torch's grain size).
    if nthreads < 1 or elems < 32768:
        nthreads = 1
    if work < nthreads:
        nthreads = <int>work if work > 0 else 1
    return nthreads


cdef int _tab_init(aek_tab_t* t, const pool2d_geom_t* g, bint count_include_pad,
                   Py_ssize_t divisor_override) noexcept nogil:
    # The per-call tables of aek_tab_t (one malloc, released with free(t.owlo)).
    cdef Py_ssize_t j, o, a, b
    t.owlo = <Py_ssize_t*>malloc((2 * g.kw + 3 * g.OW + 3 * g.OH + 1) * sizeof(Py_ssize_t))
    if t.owlo == NULL:
        return AEK_NO_MEMORY
    t.owhi = t.owlo + g.kw
    t.ja = t.owhi + g.kw
    t.jb = t.ja + g.OW
    t.coldiv = t.jb + g.OW
    t.ia = t.coldiv + g.OW
    t.ib = t.ia + g.OH
    t.rowdiv = t.ib + g.OH
    for j in range(g.kw):
        _span(j * g.dw - g.pl, g.OW, g.sw, g.W, &t.owlo[j], &t.owhi[j])
    for o in range(g.OW):
        _span(o * g.sw - g.pl, g.kw, g.dw, g.W, &t.ja[o], &t.jb[o])
        if divisor_override > 0:
            t.coldiv[o] = divisor_override
        elif count_include_pad:
            _span(o * g.sw, g.kw, g.dw, g.W + g.pl + g.pr, &a, &b)
            t.coldiv[o] = b - a
        else:
            t.coldiv[o] = t.jb[o] - t.ja[o]
    for o in range(g.OH):
        _span(o * g.sh - g.pt, g.kh, g.dh, g.H, &t.ia[o], &t.ib[o])
        if divisor_override > 0:
            t.rowdiv[o] = 1
        elif count_include_pad:
            _span(o * g.sh, g.kh, g.dh, g.H + g.pt + g.pb, &a, &b)
            t.rowdiv[o] = b - a
        else:
            t.rowdiv[o] = t.ib[o] - t.ia[o]
    return AEK_OK


# ----------------------------------------------------------------------------------
# max pooling, forward

cdef inline void _to_aek(const pool2d_geom_t* g, aek_geom_t* a) noexcept nogil:
    a.N = g.N
    a.C = g.C
    a.H = g.H
    a.W = g.W
    a.OH = g.OH
    a.OW = g.OW
    a.kh = g.kh
    a.kw = g.kw
    a.sh = g.sh
    a.sw = g.sw
    a.pt = g.pt
    a.pb = g.pb
    a.pl = g.pl
    a.pr = g.pr
    a.dh = g.dh
    a.dw = g.dw


cdef inline bint _is_pool22(const pool2d_geom_t* g) noexcept nogil:
    # 2 x 2 window, stride 2, no padding, no dilation (LeNet-5, the conv autoencoder)
    return (g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.pt == 0 and g.pl == 0
            and g.dh == 1 and g.dw == 1)


cdef inline Py_ssize_t _plane_tasks(Py_ssize_t P, int nt, Py_ssize_t* per) noexcept nogil:
    # Tasks of P planes on nt threads: ranges of whole planes, a few per thread so that
    # a core slowed by other load is evened out.  Returns their number; *per = planes
    # per range (the last range may have fewer).
    cdef Py_ssize_t ntask = min(P, 4 * nt) if nt > 1 else 1
    per[0] = (P + ntask - 1) // ntask
    return (P + per[0] - 1) // per[0]


cdef void _max_pool22_nchw(const pool_float_t* x, pool_float_t* y, int64_t* ind,
                           const pool2d_geom_t* g, int nthreads) noexcept nogil:
    # Tasks are ranges of whole planes (_plane_tasks), one kernel call each.
    # _check_geom has run: every window starts inside the image.
    cdef Py_ssize_t P = g.N * g.C, HW = g.H * g.W, OHW = g.OH * g.OW
    cdef Py_ssize_t q, p0, per
    cdef int nt = _threads(nthreads, P, P * (HW + OHW))
    cdef Py_ssize_t ntask = _plane_tasks(P, nt, &per)
    for q in prange(ntask, num_threads=nt, schedule="dynamic"):
        p0 = q * per
        if pool_float_t is float:
            aek_maxpool22_nchw_f32(x + p0 * HW, y + p0 * OHW,
                                   (ind + p0 * OHW) if ind != NULL else NULL,
                                   min(per, P - p0), g.H, g.W, g.OH, g.OW)
        else:
            aek_maxpool22_nchw_f64(x + p0 * HW, y + p0 * OHW,
                                   (ind + p0 * OHW) if ind != NULL else NULL,
                                   min(per, P - p0), g.H, g.W, g.OH, g.OW)


cdef int max_pool2d_forward_c(const pool_float_t* x, pool_float_t* y, int64_t* ind,
                              const pool2d_geom_t* g, bint nhwc,
                              int nthreads) noexcept nogil:
    cdef int rc = _check_geom(g)
    cdef Py_ssize_t p, r, n, HW = g.H * g.W, OHW = g.OH * g.OW, C = g.C
    cdef bint big = HW >= (<Py_ssize_t>1 << 31)
    cdef aek_tab_t t
    cdef aek_geom_t a
    cdef int nt
    if rc != AEK_OK or g.N == 0 or g.C == 0 or OHW == 0:
        return rc
    if not nhwc and _is_pool22(g):
        _max_pool22_nchw(x, y, ind, g, nthreads)
        return AEK_OK
    _to_aek(g, &a)
    rc = _tab_init(&t, g, False, 0)
    if rc != AEK_OK:
        return rc
    if nhwc:
        # rows (n, oh); vectorised over C
        nt = _threads(nthreads, g.N * g.OH, g.N * C * (HW + OHW))
        for r in prange(g.N * g.OH, num_threads=nt, schedule="guided"):
            n = r // g.OH
            if pool_float_t is float:
                if big:
                    aek_maxrow_nhwc_f32w(x + n * HW * C, y + r * g.OW * C,
                                         (ind + r * g.OW * C) if ind != NULL else NULL,
                                         &a, &t, r % g.OH)
                else:
                    aek_maxrow_nhwc_f32(x + n * HW * C, y + r * g.OW * C,
                                        (ind + r * g.OW * C) if ind != NULL else NULL,
                                        &a, &t, r % g.OH)
            else:
                aek_maxrow_nhwc_f64(x + n * HW * C, y + r * g.OW * C,
                                    (ind + r * g.OW * C) if ind != NULL else NULL,
                                    &a, &t, r % g.OH)
    else:
        # (n, c) planes
        nt = _threads(nthreads, g.N * C, g.N * C * (HW + OHW))
        for p in prange(g.N * C, num_threads=nt, schedule="guided"):
            if pool_float_t is float:
                aek_maxplane_nchw_f32(x + p * HW, y + p * OHW,
                                      (ind + p * OHW) if ind != NULL else NULL, &a, &t)
            else:
                aek_maxplane_nchw_f64(x + p * HW, y + p * OHW,
                                      (ind + p * OHW) if ind != NULL else NULL, &a, &t)
    free(t.owlo)
    return AEK_OK


# ----------------------------------------------------------------------------------
# scatter / gather by plane index (max-pool backward, unpool)

cdef Py_ssize_t _scatter_plane(const pool_float_t* src, const int64_t* ind, pool_float_t* dst,
                               Py_ssize_t ns, Py_ssize_t nd, bint accumulate) noexcept nogil:
    # dst (nd,) = 0; dst[ind[p]] (+)= src[p] for p in order.  Returns # bad indices.
    cdef Py_ssize_t p, bad = 0
    cdef int64_t k
    memset(dst, 0, nd * sizeof(pool_float_t))
    if accumulate:
        for p in range(ns):
            k = ind[p]
            if <uint64_t>k >= <uint64_t>nd:
                bad += 1
            else:
                dst[k] += src[p]
    else:
        for p in range(ns):
            k = ind[p]
            if <uint64_t>k >= <uint64_t>nd:
                bad += 1
            else:
                dst[k] = src[p]
    return bad


cdef Py_ssize_t _scatter_slab_nhwc(const pool_float_t* src, const int64_t* ind,
                                   pool_float_t* dst, Py_ssize_t ns, Py_ssize_t nd,
                                   Py_ssize_t C, Py_ssize_t c0, Py_ssize_t c1,
                                   bint accumulate) noexcept nogil:
    # One image: src, ind (ns, C) -> dst (nd, C), channels [c0, c1) only.
    cdef Py_ssize_t p, c, bad = 0
    cdef int64_t k
    cdef const pool_float_t* sv
    cdef const int64_t* kv
    if c0 == 0 and c1 == C:
        memset(dst, 0, nd * C * sizeof(pool_float_t))
    else:
        for p in range(nd):
            memset(dst + p * C + c0, 0, (c1 - c0) * sizeof(pool_float_t))
    for p in range(ns):
        sv = src + p * C
        kv = ind + p * C
        if accumulate:
            for c in range(c0, c1):
                k = kv[c]
                if <uint64_t>k >= <uint64_t>nd:
                    bad += 1
                else:
                    dst[k * C + c] += sv[c]
        else:
            for c in range(c0, c1):
                k = kv[c]
                if <uint64_t>k >= <uint64_t>nd:
                    bad += 1
                else:
                    dst[k * C + c] = sv[c]
    return bad


cdef int _scatter(const pool_float_t* src, const int64_t* ind, pool_float_t* dst,
                  Py_ssize_t N, Py_ssize_t C, Py_ssize_t ns, Py_ssize_t nd, bint nhwc,
                  bint accumulate, int nthreads) noexcept nogil:
    # src, ind (N, C, ns) [or (N, ns, C)] -> dst (N, C, nd) [or (N, nd, C)]
    cdef Py_ssize_t p, nblk, bs, bad = 0
    cdef int nt
    if N == 0 or C == 0 or nd == 0:
        return AEK_BAD_INDEX if (N > 0 and C > 0 and ns > 0) else AEK_OK
    if not nhwc:
        nt = _threads(nthreads, N * C, N * C * (ns + nd))
        for p in prange(N * C, num_threads=nt, schedule="guided"):
            bad += _scatter_plane(src + p * ns, ind + p * ns, dst + p * nd, ns, nd, accumulate)
    else:
        # Tasks are (image, channel block) slabs; blocks of >= 16 channels keep the
        # strided rows a cache line wide.  Split channels only when there are too
        # few images to feed the threads.
        nblk = 1
        if N < 4 * nthreads:
            nblk = (4 * nthreads + N - 1) // N
            if nblk > C // 16:
                nblk = C // 16
            if nblk < 1:
                nblk = 1
        bs = (C + nblk - 1) // nblk
        nblk = (C + bs - 1) // bs
        nt = _threads(nthreads, N * nblk, N * C * (ns + nd))
        for p in prange(N * nblk, num_threads=nt, schedule="guided"):
            bad += _scatter_slab_nhwc(src + (p // nblk) * ns * C, ind + (p // nblk) * ns * C,
                                      dst + (p // nblk) * nd * C, ns, nd, C,
                                      (p % nblk) * bs, min(C, (p % nblk + 1) * bs),
                                      accumulate)
    return AEK_BAD_INDEX if bad != 0 else AEK_OK


cdef int max_pool2d_backward_c(const pool_float_t* gy, const int64_t* ind, pool_float_t* gx,
                               Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                               int nthreads) noexcept nogil:
    if N < 0 or C < 0 or H < 0 or W < 0 or OH < 0 or OW < 0:
        return AEK_BAD_PARAM
    return _scatter(gy, ind, gx, N, C, OH * OW, H * W, nhwc, True, nthreads)


cdef int max_unpool2d_forward_c(const pool_float_t* x, const int64_t* ind, pool_float_t* y,
                                Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                                int nthreads) noexcept nogil:
    if N < 0 or C < 0 or H < 0 or W < 0 or OH < 0 or OW < 0:
        return AEK_BAD_PARAM
    return _scatter(x, ind, y, N, C, H * W, OH * OW, nhwc, False, nthreads)


cdef int max_unpool2d_backward_c(const pool_float_t* gy, const int64_t* ind, pool_float_t* gx,
                                 Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t OH, Py_ssize_t OW, bint nhwc,
                                 int nthreads) noexcept nogil:
    # gx[p] = gy[ind[p]] per plane; out-of-range indices give 0 and an error code.
    cdef Py_ssize_t p, q, c, bad = 0, HW = H * W, OHW = OH * OW
    cdef int64_t k
    cdef const pool_float_t* src
    cdef const int64_t* kv
    cdef pool_float_t* dv
    cdef int nt
    if N < 0 or C < 0 or H < 0 or W < 0 or OH < 0 or OW < 0:
        return AEK_BAD_PARAM
    if N == 0 or C == 0 or HW == 0:
        return AEK_OK
    if not nhwc:
        nt = _threads(nthreads, N * C, 2 * N * C * HW)
        for p in prange(N * C, num_threads=nt, schedule="guided"):
            src = gy + p * OHW
            kv = ind + p * HW
            dv = gx + p * HW
            for q in range(HW):
                k = kv[q]
                if <uint64_t>k >= <uint64_t>OHW:
                    bad += 1
                    dv[q] = 0
                else:
                    dv[q] = src[k]
    else:
        nt = _threads(nthreads, N * H, 2 * N * C * HW)
        for p in prange(N * H, num_threads=nt, schedule="guided"):
            src = gy + (p // H) * OHW * C
            kv = ind + p * W * C
            dv = gx + p * W * C
            for q in range(W):
                for c in range(C):
                    k = kv[q * C + c]
                    if <uint64_t>k >= <uint64_t>OHW:
                        bad += 1
                        dv[q * C + c] = 0
                    else:
                        dv[q * C + c] = src[k * C + c]
    return AEK_BAD_INDEX if bad != 0 else AEK_OK


# ----------------------------------------------------------------------------------
# average pooling

cdef int avg_pool2d_forward_c(const pool_float_t* x, pool_float_t* y,
                              const pool2d_geom_t* g, bint count_include_pad,
                              Py_ssize_t divisor_override, bint nhwc,
                              int nthreads) noexcept nogil:
    cdef int rc = _check_geom(g)
    cdef Py_ssize_t p, r, n, HW = g.H * g.W, OHW = g.OH * g.OW, C = g.C
    cdef aek_tab_t t
    cdef aek_geom_t a
    cdef int nt
    if rc != AEK_OK or g.N == 0 or g.C == 0 or OHW == 0:
        return rc
    _to_aek(g, &a)
    rc = _tab_init(&t, g, count_include_pad, divisor_override)
    if rc != AEK_OK:
        return rc
    if nhwc:
        nt = _threads(nthreads, g.N * g.OH, g.N * C * (HW + OHW))
        for r in prange(g.N * g.OH, num_threads=nt, schedule="guided"):
            n = r // g.OH
            if pool_float_t is float:
                aek_avgrow_nhwc_f32(x + n * HW * C, y + r * g.OW * C, &a, &t, r % g.OH)
            else:
                aek_avgrow_nhwc_f64(x + n * HW * C, y + r * g.OW * C, &a, &t, r % g.OH)
    else:
        nt = _threads(nthreads, g.N * C, g.N * C * (HW + OHW))
        for p in prange(g.N * C, num_threads=nt, schedule="guided"):
            if pool_float_t is float:
                aek_avgplane_nchw_f32(x + p * HW, y + p * OHW, &a, &t)
            else:
                aek_avgplane_nchw_f64(x + p * HW, y + p * OHW, &a, &t)
    free(t.owlo)
    return AEK_OK


cdef int avg_pool2d_backward_c(const pool_float_t* gy, pool_float_t* gx,
                               const pool2d_geom_t* g, bint count_include_pad,
                               Py_ssize_t divisor_override, bint nhwc,
                               int nthreads) noexcept nogil:
    cdef int rc = _check_geom(g)
    cdef Py_ssize_t p, r, n, HW = g.H * g.W, OHW = g.OH * g.OW, C = g.C
    cdef aek_tab_t t
    cdef aek_geom_t a
    cdef int nt
    if rc != AEK_OK or g.N == 0 or g.C == 0 or HW == 0:
        return rc
    if OHW == 0:        # no window: the gradient is 0
        memset(gx, 0, g.N * g.C * HW * sizeof(pool_float_t))
        return AEK_OK
    _to_aek(g, &a)
    rc = _tab_init(&t, g, count_include_pad, divisor_override)
    if rc != AEK_OK:
        return rc
    if nhwc:
        # gather form over gx rows (n, ih): no two tasks write the same element
        nt = _threads(nthreads, g.N * g.H, g.N * C * (HW + OHW))
        for r in prange(g.N * g.H, num_threads=nt, schedule="guided"):
            n = r // g.H
            if pool_float_t is float:
                aek_avgbwd_row_nhwc_f32(gy + n * OHW * C, gx + r * g.W * C, &a, &t, r % g.H)
            else:
                aek_avgbwd_row_nhwc_f64(gy + n * OHW * C, gx + r * g.W * C, &a, &t, r % g.H)
    else:
        rc = _avg_bwd_nchw(gy, gx, g, &a, &t, nthreads)
    free(t.owlo)
    return rc


cdef int _avg_bwd_nchw(const pool_float_t* gy, pool_float_t* gx, const pool2d_geom_t* g,
                       const aek_geom_t* a, const aek_tab_t* t, int nthreads) noexcept nogil:
    # Tasks are ranges of whole planes (_plane_tasks).  The
    # 2 x 2 / stride 2 windows do not overlap: one streaming pass; the gather kernel
    # of any other geometry takes a scratch per task (the plane's scaled gradient and
    # a gx row's even and odd columns).
    cdef Py_ssize_t P = g.N * g.C, HW = g.H * g.W, OHW = g.OH * g.OW
    cdef Py_ssize_t q, p0, per, nomem = 0
    cdef pool_float_t* scratch
    cdef int nt = _threads(nthreads, P, P * (HW + OHW))
    cdef Py_ssize_t ntask = _plane_tasks(P, nt, &per)
    for q in prange(ntask, num_threads=nt, schedule="dynamic"):
        p0 = q * per
        if _is_pool22(g):
            if pool_float_t is float:
                aek_avgbwd22_nchw_f32(gy + p0 * OHW, gx + p0 * HW, min(per, P - p0), a, t)
            else:
                aek_avgbwd22_nchw_f64(gy + p0 * OHW, gx + p0 * HW, min(per, P - p0), a, t)
            continue
        scratch = <pool_float_t*>malloc((OHW + g.W + 2) * sizeof(pool_float_t))
        if scratch == NULL:
            nomem += 1
        else:
            if pool_float_t is float:
                aek_avgbwd_planes_nchw_f32(gy + p0 * OHW, gx + p0 * HW, min(per, P - p0),
                                           a, t, scratch)
            else:
                aek_avgbwd_planes_nchw_f64(gy + p0 * OHW, gx + p0 * HW, min(per, P - p0),
                                           a, t, scratch)
            free(scratch)
    return AEK_NO_MEMORY if nomem != 0 else AEK_OK


# ----------------------------------------------------------------------------------
# nearest upsampling by integer factors

cdef int upsample_nearest2d_forward_c(const pool_float_t* x, pool_float_t* y,
                                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t fh, Py_ssize_t fw, bint nhwc,
                                      int nthreads) noexcept nogil:
    # Each task builds the first output row of its input row, then copies it fh-1 times.
    cdef Py_ssize_t r, w, b, a, c, OW = W * fw, rowlen
    cdef const pool_float_t* xr
    cdef pool_float_t* yr
    cdef pool_float_t v
    cdef int nt
    if N < 0 or C < 0 or H < 0 or W < 0 or fh < 1 or fw < 1:
        return AEK_BAD_PARAM
    if N == 0 or C == 0 or H == 0 or W == 0:
        return AEK_OK
    if not nhwc:
        rowlen = OW
        nt = _threads(nthreads, N * C * H, N * C * H * W * (fh * fw + 1))
        for r in prange(N * C * H, num_threads=nt, schedule="guided"):
            xr = x + r * W
            yr = y + r * fh * OW
            for w in range(W):
                v = xr[w]
                for b in range(fw):
                    yr[w * fw + b] = v
            for a in range(1, fh):
                memcpy(yr + a * OW, yr, OW * sizeof(pool_float_t))
    else:
        rowlen = OW * C
        nt = _threads(nthreads, N * H, N * C * H * W * (fh * fw + 1))
        for r in prange(N * H, num_threads=nt, schedule="guided"):
            xr = x + r * W * C
            yr = y + r * fh * rowlen
            for w in range(W):
                for b in range(fw):
                    memcpy(yr + (w * fw + b) * C, xr + w * C, C * sizeof(pool_float_t))
            for a in range(1, fh):
                memcpy(yr + a * rowlen, yr, rowlen * sizeof(pool_float_t))
    return AEK_OK


cdef int upsample_nearest2d_backward_c(const pool_float_t* gy, pool_float_t* gx,
                                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t fh, Py_ssize_t fw, bint nhwc,
                                       int nthreads) noexcept nogil:
    # gx[h, w] = sum over the fh x fw block, added in row-major (a, b) order.
    cdef Py_ssize_t r, w, b, a, c, OW = W * fw
    cdef const pool_float_t* gyr
    cdef pool_float_t* gxr
    cdef pool_float_t s
    cdef int nt
    if N < 0 or C < 0 or H < 0 or W < 0 or fh < 1 or fw < 1:
        return AEK_BAD_PARAM
    if N == 0 or C == 0 or H == 0 or W == 0:
        return AEK_OK
    if not nhwc:
        nt = _threads(nthreads, N * C * H, N * C * H * W * (fh * fw + 1))
        for r in prange(N * C * H, num_threads=nt, schedule="guided"):
            gxr = gx + r * W
            for w in range(W):
                gxr[w] = 0
            for a in range(fh):
                gyr = gy + (r * fh + a) * OW
                for b in range(fw):
                    for w in range(W):
                        gxr[w] += gyr[w * fw + b]
    else:
        nt = _threads(nthreads, N * H, N * C * H * W * (fh * fw + 1))
        for r in prange(N * H, num_threads=nt, schedule="guided"):
            gxr = gx + r * W * C
            memset(gxr, 0, W * C * sizeof(pool_float_t))
            for a in range(fh):
                gyr = gy + (r * fh + a) * OW * C
                for w in range(W):
                    for b in range(fw):
                        for c in range(C):
                            gxr[w * C + c] += gyr[(w * fw + b) * C + c]
    return AEK_OK


# ----------------------------------------------------------------------------------
# Python entry points (the backend contract): check, then run without the GIL.

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)


cdef object _float_dtype(object a, str name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    dt = a.dtype
    if dt != _F32 and dt != _F64:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
    return dt


cdef tuple _dims(object a, str name, object dtype, bint nhwc):
    """(N, C, H, W) of a 4-D C-contiguous array of ``dtype``, whatever the layout."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: dtype must be {dtype}, got {a.dtype}")
    if a.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D array, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous")
    s = a.shape
    return (s[0], s[3], s[1], s[2]) if nhwc else (s[0], s[1], s[2], s[3])


cdef _writeable(object a, str name):
    if not a.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")


cdef _raise(int rc, str what):
    if rc == AEK_OK:
        return
    if rc == AEK_BAD_INDEX:
        raise ValueError(f"{what}: indices out of range for the plane (refused)")
    if rc == AEK_EMPTY_WINDOW:
        raise ValueError(f"{what}: a pooling window lies entirely in the padding")
    if rc == AEK_NO_MEMORY:
        raise MemoryError(what)
    raise ValueError(f"{what}: invalid kernel/stride/dilation/padding")


cdef inline Py_ssize_t _size(object a):
    return a.size


cdef _fill_geom(pool2d_geom_t* g, tuple xd, tuple yd, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw):
    g.N = xd[0]
    g.C = xd[1]
    g.H = xd[2]
    g.W = xd[3]
    g.OH = yd[2]
    g.OW = yd[3]
    g.kh = kh
    g.kw = kw
    g.sh = sh
    g.sw = sw
    g.pt = pt
    g.pb = pb
    g.pl = pl
    g.pr = pr
    g.dh = dh
    g.dw = dw


cdef int _max_fwd_mv(const pool_float_t[:, :, :, ::1] x, pool_float_t[:, :, :, ::1] y,
                     int64_t[:, :, :, ::1] ind, bint with_ind, pool2d_geom_t* g, bint nhwc):
    cdef int rc, nt = _num_threads
    cdef int64_t* ip = &ind[0, 0, 0, 0] if with_ind else NULL
    with nogil:
        rc = max_pool2d_forward_c(&x[0, 0, 0, 0], &y[0, 0, 0, 0], ip, g, nhwc, nt)
    return rc


def max_pool2d_forward(x, y, indices, kh, kw, sh, sw, pt, pl, dh, dw, nhwc):
    """x (N,C,H,W) -> y, indices (N,C,OH,OW) (indices may be None); see _dispatch."""
    cdef pool2d_geom_t g
    cdef bint lay = bool(nhwc)
    dt = _float_dtype(x, "x")
    xd = _dims(x, "x", dt, lay)
    yd = _dims(y, "y", dt, lay)
    _writeable(y, "y")
    if yd[0] != xd[0] or yd[1] != xd[1]:
        raise ValueError(f"y: shape {y.shape} does not match x {x.shape}")
    if indices is not None:
        _dims(indices, "indices", _I64, lay)
        _writeable(indices, "indices")
        if indices.shape != y.shape:
            raise ValueError(f"indices: shape {indices.shape} != y shape {y.shape}")
    _fill_geom(&g, xd, yd, kh, kw, sh, sw, pt, 0, pl, 0, dh, dw)
    rc = _check_geom(&g)
    if rc == AEK_OK and _size(y) > 0:
        ind = indices if indices is not None else np.empty((1, 1, 1, 1), np.int64)
        if dt == _F32:
            rc = _max_fwd_mv[float](x, y, ind, indices is not None, &g, lay)
        else:
            rc = _max_fwd_mv[double](x, y, ind, indices is not None, &g, lay)
    _raise(rc, "max_pool2d_forward")


cdef int _avg_mv(const pool_float_t[:, :, :, ::1] src, pool_float_t[:, :, :, ::1] dst,
                 pool2d_geom_t* g, bint cip, Py_ssize_t dov, bint nhwc, bint backward):
    cdef int rc, nt = _num_threads
    with nogil:
        if backward:
            rc = avg_pool2d_backward_c(&src[0, 0, 0, 0], &dst[0, 0, 0, 0], g, cip, dov, nhwc, nt)
        else:
            rc = avg_pool2d_forward_c(&src[0, 0, 0, 0], &dst[0, 0, 0, 0], g, cip, dov, nhwc, nt)
    return rc


cdef _avg_entry(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, count_include_pad,
                divisor_override, nhwc, bint backward):
    # forward: x -> y;  backward: x is gy (pooled), y is gx (input-sized)
    cdef pool2d_geom_t g
    cdef bint lay = bool(nhwc)
    cdef str what = "avg_pool2d_backward" if backward else "avg_pool2d_forward"
    names = ("gy", "gx") if backward else ("x", "y")
    dt = _float_dtype(x, names[0])
    sd = _dims(x, names[0], dt, lay)
    dd = _dims(y, names[1], dt, lay)
    _writeable(y, names[1])
    if sd[0] != dd[0] or sd[1] != dd[1]:
        raise ValueError(f"{names[1]}: shape {y.shape} does not match {names[0]} {x.shape}")
    dov = 0 if divisor_override is None else int(divisor_override)
    if backward:
        _fill_geom(&g, dd, sd, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    else:
        _fill_geom(&g, sd, dd, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    rc = _check_geom(&g)
    if rc == AEK_OK and (dov < 0 or dov >= 2**62):
        rc = AEK_BAD_PARAM
    if rc == AEK_OK and _size(y) > 0:
        if backward and _size(x) == 0:
            y[...] = 0
        elif dt == _F32:
            rc = _avg_mv[float](x, y, &g, bool(count_include_pad), dov, lay, backward)
        else:
            rc = _avg_mv[double](x, y, &g, bool(count_include_pad), dov, lay, backward)
    _raise(rc, what)


def avg_pool2d_forward(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                       count_include_pad, divisor_override, nhwc):
    """x (N,C,H,W) -> y (N,C,OH,OW): windowed mean; see _dispatch for the divisor."""
    _avg_entry(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, count_include_pad,
               divisor_override, nhwc, False)


def avg_pool2d_backward(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                        count_include_pad, divisor_override, nhwc):
    """gy (N,C,OH,OW) -> gx (N,C,H,W): adjoint of avg_pool2d_forward."""
    _avg_entry(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, count_include_pad,
               divisor_override, nhwc, True)


cdef int _index_mv(const pool_float_t[:, :, :, ::1] src, const int64_t[:, :, :, ::1] ind,
                   pool_float_t[:, :, :, ::1] dst, Py_ssize_t N, Py_ssize_t C,
                   Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                   bint nhwc, int op):
    # op 0: max-pool backward (src=gy, dst=gx); 1: unpool forward (src=x, dst=y);
    # 2: unpool backward (src=gy, dst=gx)
    cdef int rc, nt = _num_threads
    with nogil:
        if op == 0:
            rc = max_pool2d_backward_c(&src[0, 0, 0, 0], &ind[0, 0, 0, 0], &dst[0, 0, 0, 0],
                                       N, C, H, W, OH, OW, nhwc, nt)
        elif op == 1:
            rc = max_unpool2d_forward_c(&src[0, 0, 0, 0], &ind[0, 0, 0, 0], &dst[0, 0, 0, 0],
                                        N, C, H, W, OH, OW, nhwc, nt)
        else:
            rc = max_unpool2d_backward_c(&src[0, 0, 0, 0], &ind[0, 0, 0, 0], &dst[0, 0, 0, 0],
                                         N, C, H, W, OH, OW, nhwc, nt)
    return rc


cdef _index_entry(src, indices, dst, nhwc, int op, str what, tuple names, bint ind_like_src):
    cdef bint lay = bool(nhwc)
    dt = _float_dtype(src, names[0])
    sd = _dims(src, names[0], dt, lay)
    dd = _dims(dst, names[1], dt, lay)
    _dims(indices, "indices", _I64, lay)
    _writeable(dst, names[1])
    if sd[0] != dd[0] or sd[1] != dd[1]:
        raise ValueError(f"{names[1]}: shape {dst.shape} does not match {names[0]} {src.shape}")
    like = src if ind_like_src else dst
    if indices.shape != like.shape:
        raise ValueError(f"indices: shape {indices.shape} must equal "
                         f"{names[0] if ind_like_src else names[1]} shape {like.shape}")
    if _size(dst) == 0:
        return
    if _size(src) == 0:       # nothing to scatter / no plane to gather from
        if op == 2 and _size(indices) > 0:
            _raise(AEK_BAD_INDEX, what)
        dst[...] = 0
        return
    # (N, C, H, W) of the pooled-input side and (OH, OW) of the pooled side
    if op == 0:
        big, small = dd, sd
    elif op == 1:
        big, small = sd, dd
    else:
        big, small = dd, sd
    if dt == _F32:
        rc = _index_mv[float](src, indices, dst, big[0], big[1], big[2], big[3],
                              small[2], small[3], lay, op)
    else:
        rc = _index_mv[double](src, indices, dst, big[0], big[1], big[2], big[3],
                               small[2], small[3], lay, op)
    _raise(rc, what)


def max_pool2d_backward(gy, indices, gx, nhwc):
    """gy, indices (N,C,OH,OW) -> gx (N,C,H,W): gx = 0; gx.flat[indices] += gy per plane."""
    _index_entry(gy, indices, gx, nhwc, 0, "max_pool2d_backward", ("gy", "gx"), True)


def max_unpool2d_forward(x, indices, y, nhwc):
    """x, indices (N,C,H,W) -> y (N,C,OH,OW): y = 0; y.flat[indices] = x per plane."""
    _index_entry(x, indices, y, nhwc, 1, "max_unpool2d_forward", ("x", "y"), True)


def max_unpool2d_backward(gy, indices, gx, nhwc):
    """gy (N,C,OH,OW), indices (N,C,H,W) -> gx (N,C,H,W): gx = gy.flat[indices] per plane."""
    _index_entry(gy, indices, gx, nhwc, 2, "max_unpool2d_backward", ("gy", "gx"), False)


cdef bint _indices_below(const int64_t* p, Py_ssize_t n, uint64_t bound,
                         int nthreads) noexcept nogil:
    # Chunks of the flat array, a few per thread (a core slowed by other load is
    # evened out); each returns whether it holds an index >= bound.
    cdef Py_ssize_t q, per, nchunk
    cdef int bad = 0
    cdef int nt = _threads(nthreads, n, n)
    nchunk = 4 * nt if nt > 1 else 1
    per = (n + nchunk - 1) // nchunk
    nchunk = (n + per - 1) // per
    for q in prange(nchunk, num_threads=nt, schedule="dynamic"):
        bad += aek_any_at_or_above(p + q * per, min(per, n - q * per), bound)
    return bad == 0


def indices_below(indices, bound):
    """Whether every element of ``indices`` (int64, C-contiguous), read as unsigned, is
    < ``bound`` (an int >= 0): so negative indices fail.  Threaded; the GIL is released."""
    cdef const int64_t[::1] flat
    cdef Py_ssize_t n
    cdef uint64_t b
    cdef bint ok
    cdef int nt = _num_threads
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"indices: expected a numpy.ndarray, got {type(indices).__name__}")
    if indices.dtype != _I64:
        raise TypeError(f"indices: dtype must be int64, got {indices.dtype}")
    if not indices.flags.c_contiguous:
        raise ValueError("indices: must be C-contiguous")
    if isinstance(bound, bool) or not isinstance(bound, int) or not 0 <= bound < 2**64:
        raise ValueError(f"indices_below: bound must be an int in [0, 2**64), got {bound!r}")
    n = indices.size
    if n == 0:
        return True
    flat = indices.reshape(-1)
    b = bound
    with nogil:
        ok = _indices_below(&flat[0], n, b, nt)
    return ok


cdef int _ups_mv(const pool_float_t[:, :, :, ::1] src, pool_float_t[:, :, :, ::1] dst,
                 Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                 Py_ssize_t fh, Py_ssize_t fw, bint nhwc, bint backward):
    cdef int rc, nt = _num_threads
    with nogil:
        if backward:
            rc = upsample_nearest2d_backward_c(&src[0, 0, 0, 0], &dst[0, 0, 0, 0],
                                               N, C, H, W, fh, fw, nhwc, nt)
        else:
            rc = upsample_nearest2d_forward_c(&src[0, 0, 0, 0], &dst[0, 0, 0, 0],
                                              N, C, H, W, fh, fw, nhwc, nt)
    return rc


cdef _ups_entry(src, dst, fh, fw, nhwc, bint backward):
    cdef bint lay = bool(nhwc)
    cdef str what = "upsample_nearest2d_backward" if backward else "upsample_nearest2d_forward"
    names = ("gy", "gx") if backward else ("x", "y")
    dt = _float_dtype(src, names[0])
    sd = _dims(src, names[0], dt, lay)
    dd = _dims(dst, names[1], dt, lay)
    _writeable(dst, names[1])
    if fh < 1 or fw < 1:
        raise ValueError(f"{what}: scale factors must be >= 1, got ({fh}, {fw})")
    small, big = (dd, sd) if backward else (sd, dd)
    if (big[0] != small[0] or big[1] != small[1] or big[2] != small[2] * fh
            or big[3] != small[3] * fw):
        raise ValueError(f"{what}: {names[1]} shape {dst.shape} does not match "
                         f"{names[0]} shape {src.shape} with factors ({fh}, {fw})")
    if _size(dst) == 0:
        return
    if dt == _F32:
        rc = _ups_mv[float](src, dst, small[0], small[1], small[2], small[3], fh, fw,
                            lay, backward)
    else:
        rc = _ups_mv[double](src, dst, small[0], small[1], small[2], small[3], fh, fw,
                             lay, backward)
    _raise(rc, what)


def upsample_nearest2d_forward(x, y, fh, fw, nhwc):
    """x (N,C,H,W) -> y (N,C,H*fh,W*fw): y[.., h, w] = x[.., h // fh, w // fw]."""
    _ups_entry(x, y, fh, fw, nhwc, False)


def upsample_nearest2d_backward(gy, gx, fh, fw, nhwc):
    """gy (N,C,H*fh,W*fw) -> gx (N,C,H,W): sum over each fh x fw block."""
    _ups_entry(gy, gx, fh, fw, nhwc, True)
