// Kernels written once against a small vector-traits interface and compiled
// in every ISA translation unit (generic, AVX2, AVX-512) with that unit's
// flags.  Each unit instantiates them with traits types from its own anonymous
// namespace (inside aek::avx2 / aek::avx512 for the ISA units), so every
// instantiation has internal linkage and can never be merged with another ISA's
// copy; .ci/check_isa.py checks the built library for exactly that.  Nothing
// but <cstdint> may be included here.
//
// Traits V: V::T scalar, V::R register, V::W lanes; zero(), load(p) (unaligned),
// bcast(p), fma(a, b, c) = a*b + c, store(p, r) (unaligned), hsum(r) -> T,
// load_part(p, n): lanes [0, n) from p, the rest zero, n in [1, W);
// add(a, b), sub(a, b); store_part(p, r, n): lanes [0, n) only (the channel-vector kernel).
#pragma once

#include <cstdint>

namespace aek {
namespace simd {

// Direct small-M correlation over a shifted slab (see slab_conv_nchw):
//   c[m*ldc + q] = sum_t w[m*ldw + t] * slab[toff[t] + q],  m < MR, q < nq
// vectorised along q.  For M (output channels) too small to fill a GEMM
// register tile: 1..3 channel first layers and their backward-input.
// nq must be a multiple of W (callers pad the grid and the slab).
template <class V, int MR, int NV>
void shift_block(std::int64_t ntaps, const typename V::T* w, std::int64_t ldw,
                 const typename V::T* slab, const std::int64_t* toff, std::int64_t nq,
                 typename V::T* c, std::int64_t ldc) {
    using R = typename V::R;
    constexpr int W = V::W;
    std::int64_t q = 0;
    for (; q + NV * W <= nq; q += NV * W) {
        R acc[MR][NV];
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) acc[m][v] = V::zero();
        for (std::int64_t t = 0; t < ntaps; ++t) {
            const typename V::T* s = slab + toff[t] + q;
            R b[NV];
            for (int v = 0; v < NV; ++v) b[v] = V::load(s + v * W);
            for (int m = 0; m < MR; ++m) {
                const R a = V::bcast(w + m * ldw + t);
                for (int v = 0; v < NV; ++v) acc[m][v] = V::fma(a, b[v], acc[m][v]);
            }
        }
        for (int m = 0; m < MR; ++m)
            for (int v = 0; v < NV; ++v) V::store(c + m * ldc + q + v * W, acc[m][v]);
    }
    // grid tail, one vector at a time
    for (; q < nq; q += W) {
        R acc[MR];
        for (int m = 0; m < MR; ++m) acc[m] = V::zero();
        for (std::int64_t t = 0; t < ntaps; ++t) {
            const R b = V::load(slab + toff[t] + q);
            for (int m = 0; m < MR; ++m) acc[m] = V::fma(V::bcast(w + m * ldw + t), b, acc[m]);
        }
        for (int m = 0; m < MR; ++m) V::store(c + m * ldc + q, acc[m]);
    }
}

// All of M in blocks of MRMAX rows plus one remainder block.
template <class V, int MRMAX, int NV>
void shift_rows(std::int64_t M, std::int64_t ntaps, const typename V::T* w, std::int64_t ldw,
                const typename V::T* slab, const std::int64_t* toff, std::int64_t nq,
                typename V::T* c, std::int64_t ldc) {
    std::int64_t m = 0;
    for (; m + MRMAX <= M; m += MRMAX)
        shift_block<V, MRMAX, NV>(ntaps, w + m * ldw, ldw, slab, toff, nq, c + m * ldc, ldc);
    const std::int64_t r = M - m;
    w += m * ldw;
    c += m * ldc;
    // The remainder dispatches on a constant so every case keeps its
    // accumulators in registers.
    if (r == 1) shift_block<V, 1, NV>(ntaps, w, ldw, slab, toff, nq, c, ldc);
    if (r == 2 && MRMAX > 2) shift_block<V, (MRMAX > 2 ? 2 : 1), NV>(ntaps, w, ldw, slab, toff, nq, c, ldc);
    if (r == 3 && MRMAX > 3) shift_block<V, (MRMAX > 3 ? 3 : 1), NV>(ntaps, w, ldw, slab, toff, nq, c, ldc);
    if (r == 4 && MRMAX > 4) shift_block<V, (MRMAX > 4 ? 4 : 1), NV>(ntaps, w, ldw, slab, toff, nq, c, ldc);
    if (r == 5 && MRMAX > 5) shift_block<V, (MRMAX > 5 ? 5 : 1), NV>(ntaps, w, ldw, slab, toff, nq, c, ldc);
}

// Dot-product tile over a shifted slab (backward-filter):
//   c[m*ldc + n] (+)= sum_{r < rows, q < ow} arow[m][r*apitch + q] * b[boff[n] + r*bpitch + q]
// for m < MR, n < NR: vectorised along the reduction (q), reduced horizontally
// once per call.  Both operands are contiguous along q, so nothing is
// transposed or packed; the row tails use masked loads (zeros, no faults).
template <class V, int MR, int NR>
void dot_block(std::int64_t rows, std::int64_t ow, const typename V::T* const* arow,
               std::int64_t apitch, const typename V::T* b, const std::int64_t* boff,
               std::int64_t bpitch, typename V::T* c, std::int64_t ldc, int accumulate) {
    using R = typename V::R;
    constexpr int W = V::W;
    R s[MR][NR];
    for (int m = 0; m < MR; ++m)
        for (int n = 0; n < NR; ++n) s[m][n] = V::zero();
    const std::int64_t full = ow - ow % W;
    for (std::int64_t r = 0; r < rows; ++r) {
        const typename V::T* ap[MR];
        const typename V::T* bp[NR];
        for (int m = 0; m < MR; ++m) ap[m] = arow[m] + r * apitch;
        for (int n = 0; n < NR; ++n) bp[n] = b + boff[n] + r * bpitch;
        for (std::int64_t q = 0; q < full; q += W) {
            R av[MR];
            for (int m = 0; m < MR; ++m) av[m] = V::load(ap[m] + q);
            for (int n = 0; n < NR; ++n) {
                const R bv = V::load(bp[n] + q);
                for (int m = 0; m < MR; ++m) s[m][n] = V::fma(av[m], bv, s[m][n]);
            }
        }
        if (full < ow) {
            const int rem = static_cast<int>(ow - full);
            R av[MR];
            for (int m = 0; m < MR; ++m) av[m] = V::load_part(ap[m] + full, rem);
            for (int n = 0; n < NR; ++n) {
                const R bv = V::load_part(bp[n] + full, rem);
                for (int m = 0; m < MR; ++m) s[m][n] = V::fma(av[m], bv, s[m][n]);
            }
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int n = 0; n < NR; ++n) {
            const typename V::T r = V::hsum(s[m][n]);
            c[m * ldc + n] = accumulate ? c[m * ldc + n] + r : r;
        }
}

// M x N in whole MR x NR tiles: callers pad M (rows pointing at zeros) and N
// (taps pointing at a zero run) so that one instantiation serves every shape.
template <class V, int MR, int NR>
void dot_tiles(std::int64_t M, std::int64_t N, std::int64_t rows, std::int64_t ow,
               const typename V::T* const* arow, std::int64_t apitch, const typename V::T* b,
               const std::int64_t* boff, std::int64_t bpitch, typename V::T* c, std::int64_t ldc,
               int accumulate) {
    // Taps outer: the NR slab rows stay in L1 while the (aligned) dY rows
    // stream from L2.
    for (std::int64_t n = 0; n < N; n += NR)
        for (std::int64_t m = 0; m < M; m += MR)
            dot_block<V, MR, NR>(rows, ow, arow + m, apitch, b, boff + n, bpitch,
                                 c + m * ldc + n, ldc, accumulate);
}

// ---------------------------------------------------------------------------
// Channel-vector direct conv (cl_rows): vectors run along the output channels,
// broadcasts along the output pixels of one grid row.  The source is a
// "channel-blocked slab" (see build_cl_slab in conv.hpp): rows of Wp columns,
// each column holding one block of W channels contiguously, blocks of a row
// stored one after another:
//   src(row r, channel block cb, column b, lane l) = slab[r*rs + cb*cbs + b*W + l]
// so the MR pixels of a tile are MR*W consecutive elements and every
// broadcast has a compile-time displacement.  Taps are (ti, tj) offsets
// ioff[ti] (elements, whole rows) and joff[tj] (elements, whole columns).
// kPlanar: the slab is instead one zero-padded plane per channel (pixels 1
// apart, lanes ls apart, channel blocks cbs apart): building it from
// channel-major (NCHW) rows is a plain row copy instead of a W x W transpose
// per W columns, and the broadcasts keep their compile-time displacements.
// Packed weights of the output-channel block [m0, m0 + nvw): one row of nvw
// per reduction index k = ((ti*ncb + cb)*ntj + tj)*W + lane, starting at
// w + m0*Kt.  Output element (pixel b, channel m) of the row goes to
// out[b*ps + m*ms] (+ bias[m]); ms == 1 stores whole vectors.
template <class V, int MR, int NV, bool kPlanar>
void cl_tile(std::int64_t nti, const std::int64_t* ioff, std::int64_t ntj,
             const std::int64_t* joff, std::int64_t ncb, std::int64_t cbs, std::int64_t ls,
             const typename V::T* src, const typename V::T* w, std::int64_t mvalid,
             typename V::T* out, std::int64_t ps, std::int64_t ms, const typename V::T* bias) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
    const T* wk = w;
    for (std::int64_t ti = 0; ti < nti; ++ti) {
        const T* srow = src + ioff[ti];
        for (std::int64_t cb = 0; cb < ncb; ++cb) {
            const T* sc = srow + cb * cbs;
            for (std::int64_t tj = 0; tj < ntj; ++tj) {
                const T* s = sc + joff[tj];
                if constexpr (kPlanar) {
                    // one pointer stepped by the plane: unrolling would make the
                    // compiler keep a pointer per lane (spilled)
#pragma GCC unroll 1
                    for (int l = 0; l < W; ++l) {
                        R b[NV];
                        for (int v = 0; v < NV; ++v) b[v] = V::load(wk + v * W);
                        for (int r = 0; r < MR; ++r) {
                            const R a = V::bcast(s + r);
                            for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(a, b[v], acc[r][v]);
                        }
                        wk += NV * W;
                        s += ls;
                    }
                } else {
#pragma GCC unroll 16
                    for (int l = 0; l < W; ++l) {
                        R b[NV];
                        for (int v = 0; v < NV; ++v) b[v] = V::load(wk + v * W);
                        for (int r = 0; r < MR; ++r) {
                            const R a = V::bcast(s + r * W + l);
                            for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(a, b[v], acc[r][v]);
                        }
                        wk += NV * W;
                    }
                }
            }
        }
    }
    if (ms == 1) {
        for (int v = 0; v < NV; ++v) {
            const std::int64_t m0 = std::int64_t(v) * W;
            if (m0 >= mvalid) break;
            const int n = mvalid - m0 >= W ? W : static_cast<int>(mvalid - m0);
            const R bv = bias ? (n == W ? V::load(bias + m0) : V::load_part(bias + m0, n))
                              : V::zero();
            for (int r = 0; r < MR; ++r) {
                T* d = out + r * ps + m0;
                if (n == W)
                    V::store(d, V::add(acc[r][v], bv));
                else
                    V::store_part(d, V::add(acc[r][v], bv), n);
            }
        }
        return;
    }
    // channel-major output (NCHW) with unit pixel stride: transpose in
    // registers and store each channel's MR pixels as one partial vector
    if constexpr (V::kTranspose && MR < W) {
        if (ps == 1) {
            for (int v = 0; v < NV; ++v) {
                R t[W];
                for (int r = 0; r < W; ++r) t[r] = r < MR ? acc[r < MR ? r : 0][v] : V::zero();
                V::transpose(t);
                for (int l = 0; l < W; ++l) {
                    const std::int64_t m = std::int64_t(v) * W + l;
                    if (m >= mvalid) break;
                    const R bm = bias ? V::bcast(bias + m) : V::zero();
                    V::store_part(out + m * ms, V::add(t[l], bm), MR);
                }
            }
            return;
        }
    }
    // otherwise transpose through a small buffer
    alignas(64) T tile[MR][NV * W];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) V::store(&tile[r][v * W], acc[r][v]);
    for (std::int64_t m = 0; m < mvalid; ++m) {
        T* d = out + m * ms;
        const T bm = bias ? bias[m] : T(0);
        for (int r = 0; r < MR; ++r) d[r * ps] = tile[r][m] + bm;
    }
}

// One grid row of GB pixels for one output-channel block: tiles of at most
// MRMAX pixels, balanced so that no tile is much narrower than the others.
template <class V, int MRMAX, int NV, bool kPlanar>
void cl_row(std::int64_t GB, std::int64_t nti, const std::int64_t* ioff, std::int64_t ntj,
            const std::int64_t* joff, std::int64_t ncb, std::int64_t cbs, std::int64_t ls,
            const typename V::T* src, const typename V::T* w, std::int64_t mvalid,
            typename V::T* out, std::int64_t ps, std::int64_t ms, const typename V::T* bias) {
    constexpr int W = V::W;
    const std::int64_t ntile = (GB + MRMAX - 1) / MRMAX;
    const std::int64_t base = GB / ntile, extra = GB % ntile;
    std::int64_t b = 0;
    for (std::int64_t t = 0; t < ntile; ++t) {
        const std::int64_t width = base + (t < extra ? 1 : 0);
        const typename V::T* s = src + b * (kPlanar ? 1 : W);
        typename V::T* o = out + b * ps;
#define AEK_CL_CASE(n)                                                                      \
    case n:                                                                                 \
        cl_tile<V, (n <= MRMAX ? n : 1), NV, kPlanar>(nti, ioff, ntj, joff, ncb, cbs, ls, s, w, \
                                                      mvalid, o, ps, ms, bias);             \
        break;
        switch (width) {
            AEK_CL_CASE(1) AEK_CL_CASE(2) AEK_CL_CASE(3) AEK_CL_CASE(4) AEK_CL_CASE(5)
            AEK_CL_CASE(6) AEK_CL_CASE(7) AEK_CL_CASE(8) AEK_CL_CASE(9) AEK_CL_CASE(10)
            AEK_CL_CASE(11) AEK_CL_CASE(12) AEK_CL_CASE(13) AEK_CL_CASE(14)
            default: break;
        }
#undef AEK_CL_CASE
        b += width;
    }
}

// All output channels (blocks of NV*W, a last block of fewer vectors) for
// `rows` grid rows; slab rows are rs elements apart, output rows `as`.
// ls == 1: channel-blocked slab; otherwise a planar one with planes ls apart.
template <class V, int MRMAX, int NV>
void cl_rows(std::int64_t M, std::int64_t rows, std::int64_t GB, std::int64_t nti,
             const std::int64_t* ioff, std::int64_t ntj, const std::int64_t* joff,
             std::int64_t ncb, std::int64_t cbs, std::int64_t ls, const typename V::T* slab,
             std::int64_t rs,
             const typename V::T* wpk, typename V::T* out, std::int64_t as, std::int64_t ps,
             std::int64_t ms, const typename V::T* bias) {
    static_assert(MRMAX <= 14, "cl_row dispatches widths up to 14");
    constexpr int W = V::W;
    const std::int64_t Kt = nti * ncb * ntj * W;
    for (std::int64_t m0 = 0; m0 < M; m0 += NV * W) {
        const std::int64_t mvalid = M - m0 < NV * W ? M - m0 : NV * W;
        const typename V::T* w = wpk + m0 * Kt;
        const typename V::T* bm = bias ? bias + m0 : nullptr;
        typename V::T* o = out + m0 * ms;
        // the packed block is as wide as the vectors it needs
        const int nv = static_cast<int>((mvalid + W - 1) / W);
        for (std::int64_t a = 0; a < rows; ++a) {
#define AEK_CL_NV(n, planar)                                                                \
    case n:                                                                                 \
        cl_row<V, MRMAX, (n <= NV ? n : 1), planar>(GB, nti, ioff, ntj, joff, ncb, cbs, ls,   \
                                                    slab + a * rs, w, mvalid, o + a * as,   \
                                                    ps, ms, bm);                            \
        break;
            if (ls == 1) {
                switch (nv) {
                    AEK_CL_NV(1, false) AEK_CL_NV(2, false) AEK_CL_NV(3, false)
                    AEK_CL_NV(4, false)
                    default: break;
                }
            } else {
                switch (nv) {
                    AEK_CL_NV(1, true) AEK_CL_NV(2, true) AEK_CL_NV(3, true)
                    AEK_CL_NV(4, true)
                    default: break;
                }
            }
#undef AEK_CL_NV
        }
    }
}

// Backward-filter over a channel-blocked slab (cl_filter): vector column v
// (a channel block of one tap) starts at slab offset coff[v]; the reduction
// runs over the rows x GB grid pixels:
//   c[m*ldc + v*W + l] += sum_{a, b} g[(m/MR)*gbs + (a*GB + b)*gps + (m%MR)*gms]
//                                   * slab[a*rs + coff[v] + b*W + l]
// dY is read where it lies: channel-last (gps = channels, gms = 1) or
// channel-major (gps = 1, gms = the channel plane), so no copy is made.
template <class V, int MR, int NV>
void cl_ftile(const std::int64_t* coff, std::int64_t rows, std::int64_t GB,
              const typename V::T* slab, std::int64_t rs, const typename V::T* g,
              std::int64_t gps, std::int64_t gms, typename V::T* c, std::int64_t ldc) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
    const T* gm[MR];
    for (int r = 0; r < MR; ++r) gm[r] = g + r * gms;
    for (std::int64_t a = 0; a < rows; ++a) {
        const T* xp[NV];
        for (int v = 0; v < NV; ++v) xp[v] = slab + a * rs + coff[v];
        const std::int64_t p0 = a * GB * gps;
        for (std::int64_t b = 0; b < GB; ++b) {
            const std::int64_t p = p0 + b * gps;
            R gr[MR];
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r) gr[r] = V::bcast(gm[r] + p);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
                const R xv = V::load(xp[v] + b * W);
#pragma GCC unroll 8
                for (int r = 0; r < MR; ++r) acc[r][v] = V::fma(gr[r], xv, acc[r][v]);
            }
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) {
            T* d = c + r * ldc + v * W;
            V::store(d, V::add(V::load(d), acc[r][v]));
        }
}

// All Mpad (a multiple of MR) x ncol vector columns, NV columns at a time.
template <class V, int MR, int NV>
void cl_filter(std::int64_t Mpad, std::int64_t ncol, const std::int64_t* coff, std::int64_t rows,
               std::int64_t GB, const typename V::T* slab, std::int64_t rs,
               const typename V::T* g, std::int64_t gps, std::int64_t gms, std::int64_t gbs,
               typename V::T* c, std::int64_t ldc) {
    constexpr int W = V::W;
    for (std::int64_t v0 = 0; v0 < ncol; v0 += NV) {
        const std::int64_t nv = ncol - v0 < NV ? ncol - v0 : NV;
        for (std::int64_t m0 = 0; m0 < Mpad; m0 += MR) {
            const typename V::T* gb = g + (m0 / MR) * gbs;
            typename V::T* cb = c + m0 * ldc + v0 * W;
#define AEK_CLF_CASE(n)                                                                      \
    case n:                                                                                  \
        cl_ftile<V, MR, (n <= NV ? n : 1)>(coff + v0, rows, GB, slab, rs, gb, gps, gms, cb,  \
                                           ldc);                                             \
        break;
            switch (nv) {
                AEK_CLF_CASE(1) AEK_CLF_CASE(2) AEK_CLF_CASE(3) AEK_CLF_CASE(4)
                AEK_CLF_CASE(5) AEK_CLF_CASE(6) AEK_CLF_CASE(7) AEK_CLF_CASE(8)
                default: break;
            }
#undef AEK_CLF_CASE
        }
    }
}

// d[col*W + c] = s[c*cs + col] for c < nc, zero for nc <= c < W, col < n:
// channel-major rows into channel-blocked slab columns, W x W blocks
// transposed in registers (traits with kTranspose only).
template <class V>
void cl_transpose_rows(const typename V::T* s, std::int64_t cs, std::int64_t nc, std::int64_t n,
                       typename V::T* d) {
    using R = typename V::R;
    constexpr int W = V::W;
    for (std::int64_t c0 = 0; c0 < n; c0 += W) {
        const int w = n - c0 < W ? static_cast<int>(n - c0) : W;
        R t[W];
        for (int c = 0; c < W; ++c)
            t[c] = c >= nc ? V::zero()
                           : (w == W ? V::load(s + c * cs + c0) : V::load_part(s + c * cs + c0, w));
        V::transpose(t);
        for (int j = 0; j < w; ++j) V::store(d + (c0 + j) * W, t[j]);
    }
}

// d[k*R + r] = s[r*ls + k] for r < rows, k < n, zero for rows <= r < R: rows
// contiguous along the reduction into a GEMM micro-panel of R outer indices
// (gemm.hpp), W x W blocks transposed in registers (traits with a
// transpose: F32x16, F64x8).  Element by element a strided store each, this was a fifth of a 1x1
// NCHW backward-filter.
template <class V>
void pack_transposed(const typename V::T* s, std::int64_t ls, std::int64_t rows, std::int64_t n,
                     std::int64_t R, typename V::T* d) {
    using Reg = typename V::R;
    constexpr int W = V::W;
    for (std::int64_t rb = 0; rb < R; rb += W) {
        const int wr = R - rb < W ? static_cast<int>(R - rb) : W;  // lanes stored
        const std::int64_t left = rows - rb;
        const int nr = left <= 0 ? 0 : left < W ? static_cast<int>(left) : W;  // rows loaded
        for (std::int64_t k0 = 0; k0 < n; k0 += W) {
            const int w = n - k0 < W ? static_cast<int>(n - k0) : W;
            Reg t[W];
            for (int c = 0; c < W; ++c) {
                const typename V::T* src = s + (rb + c) * ls + k0;
                t[c] = c >= nr ? V::zero() : w == W ? V::load(src) : V::load_part(src, w);
            }
            V::transpose(t);
            for (int j = 0; j < w; ++j) {
                typename V::T* dst = d + (k0 + j) * R + rb;
                if (wr == W)
                    V::store(dst, t[j]);
                else
                    V::store_part(dst, t[j], wr);
            }
        }
    }
}

// Winograd F(2x2, 3x3) transforms (Lavin & Gray 2015) over channel vectors.
// A tile (ty, tx) reads the 4 x 4 window at slab rows 2ty.., columns 2tx.. of a
// channel-blocked slab (src(row r, block cb, column c, lane l) =
// slab[r*rs + cb*cbs + c*W + l], zero outside the image) and gives 16 planes
// p = 4i + j of B^T d B, stored at v[p*vps + cb*vcbs + (ty*TX + tx)*W + l]:
// per plane the channel-blocked "slab" of a 1x1 conv over the tiles (cl_rows).
// Consecutive tiles of a row share two columns: their column transforms are
// carried over instead of recomputed.
template <class V>
void wino_input(const typename V::T* slab, std::int64_t rs, std::int64_t cbs, std::int64_t ncb,
                std::int64_t TY, std::int64_t TX, typename V::T* v, std::int64_t vps,
                std::int64_t vcbs) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    // B^T applied down one column of the window: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    auto column = [&](const T* s, R* t) {
        const R d0 = V::load(s), d1 = V::load(s + rs), d2 = V::load(s + 2 * rs),
                d3 = V::load(s + 3 * rs);
        t[0] = V::sub(d0, d2);
        t[1] = V::add(d1, d2);
        t[2] = V::sub(d2, d1);
        t[3] = V::sub(d1, d3);
    };
    for (std::int64_t ty = 0; ty < TY; ++ty)
        for (std::int64_t cb = 0; cb < ncb; ++cb) {
            const T* s = slab + 2 * ty * rs + cb * cbs;
            T* d = v + cb * vcbs + ty * TX * W;
            R c0[4], c1[4], c2[4], c3[4];
            column(s, c0);
            column(s + W, c1);
            for (std::int64_t tx = 0; tx < TX; ++tx) {
                column(s + (2 * tx + 2) * W, c2);
                column(s + (2 * tx + 3) * W, c3);
                T* dt = d + tx * W;
                // ... and along each row: (t0 - t2, t1 + t2, t2 - t1, t1 - t3)
                for (int i = 0; i < 4; ++i) {
                    V::store(dt + (4 * i + 0) * vps, V::sub(c0[i], c2[i]));
                    V::store(dt + (4 * i + 1) * vps, V::add(c1[i], c2[i]));
                    V::store(dt + (4 * i + 2) * vps, V::sub(c2[i], c1[i]));
                    V::store(dt + (4 * i + 3) * vps, V::sub(c1[i], c3[i]));
                }
                for (int i = 0; i < 4; ++i) {
                    c0[i] = c2[i];
                    c1[i] = c3[i];
                }
            }
        }
}

// The inverse transform A^T m A of TY x TX tiles: plane p of tile t, channel
// k at m[(t*16 + p)*PS*W + k] (PS vectors of channels per plane; a tile's 16
// planes are adjacent) -> the 2 x 2 outputs (2ty + i, 2tx + j) for rows < OHv
// and columns < OW, channel k < K: out[k*ms + row*hs + col*ws] = bias[k] (if
// any) + result.  Channel-last outputs (ms == 1) are stored as vectors.
// Channel-major ones whose rows are contiguous (ws == 1, hs == OW) go through
// buf (min(2TY, OHv) * OW pixels of W lanes): the item's rows of a channel are
// one run, transposed W pixels at a time in registers (traits with
// kTranspose), so only its last store is partial.  PS is a template argument
// for the common plane widths (every load then has a constant displacement);
// PS = 0 reads it from ps.
template <class V, int PS>
void wino_output_ps(const typename V::T* m, std::int64_t ps, std::int64_t K, std::int64_t TY,
                    std::int64_t TX, std::int64_t OHv, std::int64_t OW, const typename V::T* bias,
                    typename V::T* out, std::int64_t ms, std::int64_t hs, std::int64_t ws,
                    typename V::T* buf) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    const std::int64_t pstride = (PS > 0 ? PS : ps) * W;
    const bool runs = ms != 1 && ws == 1 && hs == OW;
    const std::int64_t rows = OHv < 2 * TY ? OHv : 2 * TY, npix = rows * OW;
    for (std::int64_t k0 = 0; k0 < K; k0 += W) {
        const int kn = K - k0 < W ? static_cast<int>(K - k0) : W;
        const R bv = !bias ? V::zero() : kn == W ? V::load(bias + k0)
                                                 : V::load_part(bias + k0, kn);
        for (std::int64_t ty = 0; ty < TY; ++ty) {
            const int nrow = rows - 2 * ty < 2 ? static_cast<int>(rows - 2 * ty) : 2;
            for (std::int64_t tx = 0; tx < TX; ++tx) {
                const T* mt = m + (ty * TX + tx) * 16 * pstride + k0;
                // A^T down each column: (m0 + m1 + m2, m1 - m2 - m3); plane 5
                // (i = j = 1) enters all four outputs with +1: it carries the bias
                R s0[4], s1[4];
                for (int j = 0; j < 4; ++j) {
                    const R a = V::load(mt + j * pstride), c = V::load(mt + (8 + j) * pstride),
                            d = V::load(mt + (12 + j) * pstride);
                    const R b = j == 1 ? V::add(V::load(mt + 5 * pstride), bv)
                                       : V::load(mt + (4 + j) * pstride);
                    s0[j] = V::add(V::add(a, b), c);
                    s1[j] = V::sub(V::sub(b, c), d);
                }
                R o[2][2];
                o[0][0] = V::add(V::add(s0[0], s0[1]), s0[2]);
                o[0][1] = V::sub(V::sub(s0[1], s0[2]), s0[3]);
                o[1][0] = V::add(V::add(s1[0], s1[1]), s1[2]);
                o[1][1] = V::sub(V::sub(s1[1], s1[2]), s1[3]);
                const int ncol = OW - 2 * tx < 2 ? 1 : 2;
                for (int i = 0; i < nrow; ++i)
                    for (int j = 0; j < ncol; ++j) {
                        const std::int64_t r = 2 * ty + i, c = 2 * tx + j;
                        if (runs) {
                            V::store(buf + (r * OW + c) * W, o[i][j]);
                            continue;
                        }
                        if (ms == 1) {
                            T* d = out + r * hs + c * ws + k0;
                            if (kn == W)
                                V::store(d, o[i][j]);
                            else
                                V::store_part(d, o[i][j], kn);
                            continue;
                        }
                        alignas(64) T lane[W];
                        V::store(lane, o[i][j]);
                        for (int l = 0; l < kn; ++l) out[(k0 + l) * ms + r * hs + c * ws] = lane[l];
                    }
            }
        }
        if (!runs) continue;
        // buf pixel q, lane l -> out[(k0 + l)*ms + q]
        T* ok = out + k0 * ms;
        std::int64_t q0 = 0;
        if constexpr (V::kTranspose) {
            for (; q0 < npix; q0 += W) {
                const int n = npix - q0 < W ? static_cast<int>(npix - q0) : W;
                R t[W];
                for (int r = 0; r < W; ++r) t[r] = r < n ? V::load(buf + (q0 + r) * W) : V::zero();
                V::transpose(t);
                if (n == W) {
                    for (int l = 0; l < kn; ++l) V::store(ok + l * ms + q0, t[l]);
                } else {
                    for (int l = 0; l < kn; ++l) V::store_part(ok + l * ms + q0, t[l], n);
                }
            }
        }
        for (int l = 0; l < kn; ++l)
            for (std::int64_t q = q0; q < npix; ++q) ok[l * ms + q] = buf[q * W + l];
    }
}

template <class V>
void wino_output(const typename V::T* m, std::int64_t ps, std::int64_t K, std::int64_t TY,
                 std::int64_t TX, std::int64_t OHv, std::int64_t OW, const typename V::T* bias,
                 typename V::T* out, std::int64_t ms, std::int64_t hs, std::int64_t ws,
                 typename V::T* buf) {
    switch (ps) {
#define AEK_WINO_PS(n)                                                                    \
    case n:                                                                               \
        return wino_output_ps<V, n>(m, ps, K, TY, TX, OHv, OW, bias, out, ms, hs, ws, buf);
        AEK_WINO_PS(1) AEK_WINO_PS(2) AEK_WINO_PS(3) AEK_WINO_PS(4)
#undef AEK_WINO_PS
        default:
            return wino_output_ps<V, 0>(m, ps, K, TY, TX, OHv, OW, bias, out, ms, hs, ws, buf);
    }
}

}  // namespace simd
}  // namespace aek
