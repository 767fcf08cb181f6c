// AVX-512 (F/VL/BW/DQ) instantiations of the direct small-tap conv kernels
// (direct_templates.hpp), called only after CPUID says so (conv_direct.cpp).
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/direct_templates.hpp"
#include "aekernels/direct_ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx512 (traits in
// an anonymous namespace inside it), as in gemm_avx512.cpp: .ci/check_isa.py tells
// dispatched code from baseline code by that namespace.
namespace aek::avx512 {
namespace {

// Same traits as gemm_avx512.cpp plus add / store_part (kept per unit: an
// anonymous namespace per ISA unit is what keeps the instantiations apart).
struct F32x16 {
    using T = float;
    using R = __m512;
    static constexpr int W = 16;
    static R zero() { return _mm512_setzero_ps(); }
    static R load(const T* p) { return _mm512_loadu_ps(p); }
    static R bcast(const T* p) { return _mm512_set1_ps(*p); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static void store(T* p, R r) { _mm512_storeu_ps(p, r); }
    static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
    static R load_part(const T* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
    static void store_part(T* p, R r, int n) { _mm512_mask_storeu_ps(p, mask(n), r); }
};
struct F64x8 {
    using T = double;
    using R = __m512d;
    static constexpr int W = 8;
    static R zero() { return _mm512_setzero_pd(); }
    static R load(const T* p) { return _mm512_loadu_pd(p); }
    static R bcast(const T* p) { return _mm512_set1_pd(*p); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
    static R add(R a, R b) { return _mm512_add_pd(a, b); }
    static void store(T* p, R r) { _mm512_storeu_pd(p, r); }
    static __mmask8 mask(int n) { return static_cast<__mmask8>((1u << n) - 1u); }
    static R load_part(const T* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
    static void store_part(T* p, R r, int n) { _mm512_mask_storeu_pd(p, mask(n), r); }
};

}  // namespace

// Register plans (32 zmm):
//   fwd_nchw 6 channels x 4 vectors: 24 accumulators + 4 input vectors + 1 broadcast
//   fwd_nhwc 12 pixels x 2 vectors:  24 accumulators + 2 weight vectors + 1 broadcast
//   bwf_nchw 4 channels x 6 taps:    24 accumulators + 4 dY vectors + 1 input vector
//            (6 x 4 when K <= 6)
//   bwf_nhwc 24 accumulators (12 taps x 2 vectors) + 2 x 2 dY vectors + 2 broadcasts
#define AEK_DIRECT_AVX512(tname, V)                                                         \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx512_fwd_nchw, V::T) {                        \
        direct::fwd_nchw<V, 6, 4>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx512_fwd_nhwc, V::T) {                        \
        direct::fwd_nhwc<V, 12, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx512_bwf_nchw, V::T) {                        \
        if (K <= 6) /* one block holds every channel: 6 x 4 reads dY once */               \
            direct::bwf_nchw<V, 6, 4>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
        else                                                                                \
            direct::bwf_nchw<V, 4, 6>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx512_bwf_nhwc, V::T) {                        \
        direct::bwf_nhwc<V, 24, 2>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
    }

AEK_DIRECT_AVX512(f32, F32x16)
AEK_DIRECT_AVX512(f64, F64x8)

}  // namespace aek::avx512
