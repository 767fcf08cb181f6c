// Kernels written once against a small vector-traits interface and compiled
// in every ISA translation unit (generic, AVX2, AVX-512) with that unit's
// flags.  Each unit instantiates them with traits types from its own anonymous
// namespace, so every instantiation has internal linkage and can never be
// merged with another ISA's copy.  Nothing but <cstdint> may be included here.
//
// Traits V: V::T scalar, V::R register, V::W lanes; zero(), load(p) (unaligned),
// bcast(p), fma(a, b, c) = a*b + c, store(p, r) (unaligned).
#pragma once

#include <cstdint>

namespace aek {
namespace simd {

// Direct small-M correlation over a shifted slab (see slab_conv_nchw):
//   c[m*ldc + q] = sum_t w[m*ldw + t] * slab[toff[t] + q],  m < MR, q < nq
// vectorised along q.  For M (output channels) too small to fill a GEMM
// register tile: 1..3 channel first layers and their backward-input.
// nq must be a multiple of NV*W (callers pad the grid and the slab).
template <class V, int MR, int NV>
void shift_block(std::int64_t ntaps, const typename V::T* w, std::int64_t ldw,
                 const typename V::T* slab, const std::int64_t* toff, std::int64_t nq,
                 typename V::T* c, std::int64_t ldc) {
    using R = typename V::R;
    constexpr int W = V::W;
    for (std::int64_t q = 0; q < nq; q += NV * W) {
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

}  // namespace simd
}  // namespace aek
