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
// load_part(p, n): lanes [0, n) from p, the rest zero, n in [1, W).
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

}  // namespace simd
}  // namespace aek
