// AVX-512 (F/VL/BW/DQ) instantiations of the direct small-tap conv kernels
// (direct_templates.hpp), called only after CPUID says so (conv_direct.cpp).
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/direct_templates.hpp"
#include "aekernels/vec_avx512.hpp"
#include "aekernels/direct_ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx512 (traits in
// an anonymous namespace inside it), as in gemm_avx512.cpp: .ci/check_isa.py tells
// dispatched code from baseline code by that namespace.
namespace aek::avx512 {

// Register plans (32 zmm):
//   fwd_nchw 6 channels x 4 vectors: 24 accumulators + 4 input vectors + 1 broadcast
//   fwd_nchw_rows rows x 1-4 vectors x 1-2 channels of accumulators + the input
//            vectors + kh weights per channel, within 31 registers
//   fwd_nhwc 12 pixels x 2 vectors:  24 accumulators + 2 weight vectors + 1 broadcast
//   bwf_nchw 4 channels x 6 taps:    24 accumulators + 4 dY vectors + 1 input vector
//            (6 x 4 when K <= 6)
//   bwf_nhwc 24 accumulators (12 taps x 2 vectors) + 2 x 2 dY vectors + 2 broadcasts
//   fwd_nchw_kvec 14 pixels x 2 vectors: 28 accumulators + 2 weight vectors + 1 broadcast
//            (one row of up to 16 pixels per 16 x 16 register transpose)
//   bwf_nchw_kvec as bwf_nhwc
#define AEK_DIRECT_AVX512(tname, V)                                                         \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx512_fwd_nchw, V::T) {                        \
        direct::fwd_nchw<V, 6, 4>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_ROWS(direct_##tname##_avx512_fwd_nchw_rows, V::T) {              \
        direct::fwd_nchw_rows<V, 31, 4, 5>(K, rows, ow, nc, kh, kw, tap, xrow, w, ldw, bias, y,\
                                           ldyr, ldyk);                                 \
    }                                                                                   \
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
        direct::bwf_nhwc<V, 24, 2, 4>(K, rows, ow, ntaps, tap, 0, xrow, gy, ldgr, ldg2, acc, \
                                      ldacc);                                               \
    }                                                                                       \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx512_fwd_nchw_kvec, V::T) {                   \
        direct::fwd_nchw_kvec<V, 28, 14, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr,  \
                                        ldy2);                                              \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx512_bwf_nchw_kvec, V::T) {                   \
        direct::bwf_nchw_kvec<V, 24, 2, 4, kDirectKvecBuf>(K, rows, ow, ntaps, tap, xrow, gy,   \
                                                           ldgr, ldg2, acc, ldacc);         \
    }                                                                                       \
    AEK_DECLARE_DIRECT_COPY(direct_##tname##_avx512_copy_rows, V::T) {                      \
        direct::copy_rows<V>(nc, nr, len, s, ldsc, ldsr, d, lddc, lddr, pf);                \
    }

AEK_DIRECT_AVX512(f32, F32x16)
AEK_DIRECT_AVX512(f64, F64x8)

}  // namespace aek::avx512
