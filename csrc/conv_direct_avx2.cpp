// AVX2/FMA instantiations of the direct small-tap conv kernels
// (direct_templates.hpp), called only after CPUID says so (conv_direct.cpp).
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/direct_templates.hpp"
#include "aekernels/direct_ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx2 (traits in
// an anonymous namespace inside it), as in gemm_avx2.cpp: .ci/check_isa.py tells
// dispatched code from baseline code by that namespace.
namespace aek::avx2 {
namespace {

// Same traits as gemm_avx2.cpp plus add / store_part (kept per unit: an
// anonymous namespace per ISA unit is what keeps the instantiations apart).
struct F32x8 {
    using T = float;
    using R = __m256;
    static constexpr int W = 8;
    static R zero() { return _mm256_setzero_ps(); }
    static R load(const T* p) { return _mm256_loadu_ps(p); }
    static R bcast(const T* p) { return _mm256_broadcast_ss(p); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static void store(T* p, R r) { _mm256_storeu_ps(p, r); }
    static __m256i mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static R load_part(const T* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
    static void store_part(T* p, R r, int n) { _mm256_maskstore_ps(p, mask(n), r); }
};
struct F64x4 {
    using T = double;
    using R = __m256d;
    static constexpr int W = 4;
    static R zero() { return _mm256_setzero_pd(); }
    static R load(const T* p) { return _mm256_loadu_pd(p); }
    static R bcast(const T* p) { return _mm256_broadcast_sd(p); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static void store(T* p, R r) { _mm256_storeu_pd(p, r); }
    static __m256i mask(int n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static R load_part(const T* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
    static void store_part(T* p, R r, int n) { _mm256_maskstore_pd(p, mask(n), r); }
};

}  // namespace

// Register plans (16 ymm):
//   fwd_nchw 3 channels x 3 vectors: 9 accumulators + 3 input vectors + 1 broadcast
//   fwd_nhwc 6 pixels x 2 vectors:   12 accumulators + 2 weight vectors + 1 broadcast
//   bwf_nchw 3 channels x 3 taps:    9 accumulators + 3 dY vectors + 1 input vector
//   bwf_nhwc 10 accumulators (5 taps x 2 vectors) + 2 x 2 dY vectors + 2 broadcasts
#define AEK_DIRECT_AVX2(tname, V)                                                           \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx2_fwd_nchw, V::T) {                          \
        direct::fwd_nchw<V, 3, 3>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx2_fwd_nhwc, V::T) {                          \
        direct::fwd_nhwc<V, 6, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx2_bwf_nchw, V::T) {                          \
        direct::bwf_nchw<V, 3, 3>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx2_bwf_nhwc, V::T) {                          \
        direct::bwf_nhwc<V, 10, 2>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
    }

AEK_DIRECT_AVX2(f32, F32x8)
AEK_DIRECT_AVX2(f64, F64x4)

}  // namespace aek::avx2
