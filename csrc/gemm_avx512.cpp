// AVX-512 (F/VL/BW/DQ) micro-kernels, called only after CPUID says so.
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/simd_templates.hpp"
#include "aekernels/vec_avx512.hpp"
#include "aekernels/ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx512 (the traits in an
// anonymous namespace inside it): .ci/check_isa.py relies on that to tell dispatched
// AVX512 code from baseline code, and no shared template instantiated here can
// be merged with a generic copy of the same name.
namespace aek::avx512 {

// 14x32 fp32: 28 zmm accumulators + 2 B vectors + 1 broadcast = 31 of 32 zmm.
// 14 rows amortise the two B loads over 28 FMAs per k (loads are not the limit
// with 2 FMA ports), and 32 columns = two cache lines of the B panel.
void gemm_ukernel_f32_14x32_avx512(std::int64_t kc, const float* a, const float* b, float* c,
                                   std::int64_t ldc, int accumulate) {
    __m512 acc0[14], acc1[14];
#pragma GCC unroll 14
    for (int i = 0; i < 14; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (std::int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < 14; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
        a += 14;
        b += 32;
    }
#pragma GCC unroll 14
    for (int i = 0; i < 14; ++i) {
        float* ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(ci));
            acc1[i] = _mm512_add_ps(acc1[i], _mm512_loadu_ps(ci + 16));
        }
        _mm512_storeu_ps(ci, acc0[i]);
        _mm512_storeu_ps(ci + 16, acc1[i]);
    }
}

// 14x16 fp64: the same register plan with 8-wide doubles.
void gemm_ukernel_f64_14x16_avx512(std::int64_t kc, const double* a, const double* b, double* c,
                                   std::int64_t ldc, int accumulate) {
    __m512d acc0[14], acc1[14];
#pragma GCC unroll 14
    for (int i = 0; i < 14; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 8), _MM_HINT_T0);
        acc0[i] = _mm512_setzero_pd();
        acc1[i] = _mm512_setzero_pd();
    }
    for (std::int64_t k = 0; k < kc; ++k) {
        const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 14
        for (int i = 0; i < 14; ++i) {
            const __m512d ai = _mm512_set1_pd(a[i]);
            acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
        }
        a += 14;
        b += 16;
    }
#pragma GCC unroll 14
    for (int i = 0; i < 14; ++i) {
        double* ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_pd(acc0[i], _mm512_loadu_pd(ci));
            acc1[i] = _mm512_add_pd(acc1[i], _mm512_loadu_pd(ci + 8));
        }
        _mm512_storeu_pd(ci, acc0[i]);
        _mm512_storeu_pd(ci + 8, acc1[i]);
    }
}


// 6 rows x 4 vectors: 24 accumulators + 4 slab vectors + 1 broadcast.
AEK_DECLARE_SHIFT(conv_shift_f32_6x64_avx512, float) {
    simd::shift_rows<F32x16, 6, 4>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}
AEK_DECLARE_SHIFT(conv_shift_f64_6x32_avx512, double) {
    simd::shift_rows<F64x8, 6, 4>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}

// 4 x 6 dot tile: 24 accumulators + 4 A vectors + 1 B vector of 32 zmm.
AEK_DECLARE_DOT(conv_dot_f32_4x6_avx512, float) {
    simd::dot_tiles<F32x16, 4, 6>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, accumulate);
}
AEK_DECLARE_DOT(conv_dot_f64_4x6_avx512, double) {
    simd::dot_tiles<F64x8, 4, 6>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, accumulate);
}

// Channel-vector conv: 14 pixels x 2 vectors = 28 accumulators + 2 weight
// vectors + 1 broadcast of 32 zmm (the 14x32 GEMM plan without packing A).
AEK_DECLARE_CL(conv_cl_f32_14x32_avx512, float) {
    simd::cl_rows<F32x16, 14, 2>(M, rows, GB, nti, ioff, ntj, joff, ncb, cbs, ls, slab, rs,
                                 wpk, out, as, ps, ms, bias);
}
// Channel-blocked slab rows from channel-major (NCHW) rows: 16 x 16 blocks
// transposed in registers.
AEK_DECLARE_CLT(conv_clt_f32_avx512, float) {
    simd::cl_transpose_rows<F32x16>(s, cs, nc, n, d);
}
// GEMM micro-panels from rows contiguous along the reduction (BatchPixelPack).
AEK_DECLARE_PACKT(pack_t_f32_avx512, float) {
    simd::pack_transposed<F32x16>(s, ls, rows, n, R, d);
}
AEK_DECLARE_PACKT(pack_t_f64_avx512, double) {
    simd::pack_transposed<F64x8>(s, ls, rows, n, R, d);
}
// Planar slab rows: one masked load and one masked store per 16 columns (the
// masked-off lanes are never read, so no row is overrun).  The masks depend on
// the columns only: computed once, outside the row loop.
AEK_DECLARE_CLP(conv_clp_f32_avx512, float) {
    auto lanes_below = [](std::int64_t k) -> std::uint32_t {
        return k <= 0 ? 0u : k >= 16 ? 0xFFFFu : (1u << k) - 1u;
    };
    for (std::int64_t c0 = 0; c0 < Wp; c0 += 16) {
        // lanes i with lo <= c0 + i < lo + n, and c0 + i < Wp
        const __mmask16 valid =
            static_cast<__mmask16>(lanes_below(lo + n - c0) & ~lanes_below(lo - c0));
        const __mmask16 inside = static_cast<__mmask16>(lanes_below(Wp - c0));
        const float* sr = s + c0 - lo;
        float* dr = d + c0;
        for (std::int64_t r = 0; r < rows; ++r)
            _mm512_mask_storeu_ps(dr + r * Wp, inside,
                                  _mm512_maskz_loadu_ps(valid, sr + r * hs));
    }
}
AEK_DECLARE_CL(conv_cl_f64_14x16_avx512, double) {
    simd::cl_rows<F64x8, 14, 2>(M, rows, GB, nti, ioff, ntj, joff, ncb, cbs, ls, slab, rs,
                                wpk, out, as, ps, ms, bias);
}

// Channel-vector backward-filter: 4 dY channels x 6 vector columns = 24
// accumulators + 4 broadcasts + 1 slab vector of 32 zmm.
AEK_DECLARE_CLF(conv_clf_f32_4x6_avx512, float) {
    simd::cl_filter<F32x16, 4, 6>(Mpad, ncol, coff, rows, GB, slab, rs, g, gps, gms, gbs, c, ldc);
}
AEK_DECLARE_CLF(conv_clf_f64_4x6_avx512, double) {
    simd::cl_filter<F64x8, 4, 6>(Mpad, ncol, coff, rows, GB, slab, rs, g, gps, gms, gbs, c, ldc);
}

// Winograd F(2x2, 3x3) transforms over 16-channel vectors.
AEK_DECLARE_WIN(wino_in_f32_avx512, float) {
    simd::wino_input<F32x16>(slab, rs, cbs, ncb, TY, TX, v, vps, vcbs);
}
AEK_DECLARE_WOUT(wino_out_f32_avx512, float) {
    simd::wino_output<F32x16>(m, ps, K, TY, TX, OHv, OW, bias, out, ms, hs, ws, buf);
}

}  // namespace aek::avx512
