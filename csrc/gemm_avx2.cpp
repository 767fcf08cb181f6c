// AVX2/FMA micro-kernels (compiled with -mavx2 -mfma, called only after CPUID).
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/simd_templates.hpp"
#include "aekernels/vec_avx2.hpp"
#include "aekernels/ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx2 (the traits in an
// anonymous namespace inside it): .ci/check_isa.py relies on that to tell dispatched
// AVX2 code from baseline code, and no shared template instantiated here can
// be merged with a generic copy of the same name.
namespace aek::avx2 {

// 6x16 fp32: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm
// (the BLIS Haswell shape: 2 loads and 12 FMAs per k keep both FMA pipes busy).
void gemm_ukernel_f32_6x16_avx2(std::int64_t kc, const float* a, const float* b, float* c,
                                std::int64_t ldc, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (std::int64_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += 6;
        b += 16;
    }
#define AEK_STORE_ROW(i, r0, r1)                                                   \
    do {                                                                           \
        float* ci = c + (i) * ldc;                                                 \
        if (accumulate) {                                                          \
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));                           \
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci + 8));                       \
        }                                                                          \
        _mm256_storeu_ps(ci, r0);                                                  \
        _mm256_storeu_ps(ci + 8, r1);                                              \
    } while (0)
    AEK_STORE_ROW(0, c00, c01);
    AEK_STORE_ROW(1, c10, c11);
    AEK_STORE_ROW(2, c20, c21);
    AEK_STORE_ROW(3, c30, c31);
    AEK_STORE_ROW(4, c40, c41);
    AEK_STORE_ROW(5, c50, c51);
#undef AEK_STORE_ROW
}

// 6x8 fp64: same register plan with 4-wide doubles.
void gemm_ukernel_f64_6x8_avx2(std::int64_t kc, const double* a, const double* b, double* c,
                               std::int64_t ldc, int accumulate) {
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    for (std::int64_t k = 0; k < kc; ++k) {
        const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
        __m256d ai;
        ai = _mm256_broadcast_sd(a + 0); c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01);
        ai = _mm256_broadcast_sd(a + 1); c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11);
        ai = _mm256_broadcast_sd(a + 2); c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21);
        ai = _mm256_broadcast_sd(a + 3); c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31);
        ai = _mm256_broadcast_sd(a + 4); c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41);
        ai = _mm256_broadcast_sd(a + 5); c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51);
        a += 6;
        b += 8;
    }
#define AEK_STORE_ROW(i, r0, r1)                                                   \
    do {                                                                           \
        double* ci = c + (i) * ldc;                                                \
        if (accumulate) {                                                          \
            r0 = _mm256_add_pd(r0, _mm256_loadu_pd(ci));                           \
            r1 = _mm256_add_pd(r1, _mm256_loadu_pd(ci + 4));                       \
        }                                                                          \
        _mm256_storeu_pd(ci, r0);                                                  \
        _mm256_storeu_pd(ci + 4, r1);                                              \
    } while (0)
    AEK_STORE_ROW(0, c00, c01);
    AEK_STORE_ROW(1, c10, c11);
    AEK_STORE_ROW(2, c20, c21);
    AEK_STORE_ROW(3, c30, c31);
    AEK_STORE_ROW(4, c40, c41);
    AEK_STORE_ROW(5, c50, c51);
#undef AEK_STORE_ROW
}


// 3 rows x 3 vectors: 9 accumulators + 3 slab vectors + 1 broadcast of 16 ymm.
AEK_DECLARE_SHIFT(conv_shift_f32_3x24_avx2, float) {
    simd::shift_rows<F32x8, 3, 3>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}
AEK_DECLARE_SHIFT(conv_shift_f64_3x12_avx2, double) {
    simd::shift_rows<F64x4, 3, 3>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}

// 3 x 3 dot tile: 9 accumulators + 3 A vectors + 1 B vector of 16 ymm.
AEK_DECLARE_DOT(conv_dot_f32_3x3_avx2, float) {
    simd::dot_tiles<F32x8, 3, 3>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, accumulate);
}
AEK_DECLARE_DOT(conv_dot_f64_3x3_avx2, double) {
    simd::dot_tiles<F64x4, 3, 3>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, accumulate);
}

// Channel-vector conv: 6 pixels x 2 vectors = 12 accumulators + 2 weight
// vectors + 1 broadcast of 16 ymm (the 6x16 GEMM plan without packing A).
AEK_DECLARE_CL(conv_cl_f32_6x16_avx2, float) {
    simd::cl_rows<F32x8, 6, 2>(M, rows, GB, nti, ioff, ntj, joff, ncb, cbs, ls, slab, rs,
                               wpk, out, as, ps, ms, bias);
}
AEK_DECLARE_CL(conv_cl_f64_6x8_avx2, double) {
    simd::cl_rows<F64x4, 6, 2>(M, rows, GB, nti, ioff, ntj, joff, ncb, cbs, ls, slab, rs,
                               wpk, out, as, ps, ms, bias);
}

// Winograd F(2x2, 3x3) transforms over 8-channel vectors.
AEK_DECLARE_WIN(wino_in_f32_avx2, float) {
    simd::wino_input<F32x8>(slab, rs, cbs, ncb, TY, TX, v, vps, vcbs);
}
AEK_DECLARE_WOUT(wino_out_f32_avx2, float) {
    simd::wino_output<F32x8>(m, ps, K, TY, TX, OHv, OW, bias, out, ms, hs, ws, buf);
}

}  // namespace aek::avx2
