// AVX2/FMA instantiations of the direct small-tap conv kernels
// (direct_templates.hpp), called only after CPUID says so (conv_direct.cpp).
// Only <immintrin.h>, <cstdint> and plain functions here: see ukernels.hpp.
#include <immintrin.h>

#include <cstdint>

#include "aekernels/direct_templates.hpp"
#include "aekernels/vec_avx2.hpp"
#include "aekernels/direct_ukernels.hpp"

// Everything compiled with this unit's ISA flags lives in aek::avx2 (traits in
// an anonymous namespace inside it), as in gemm_avx2.cpp: .ci/check_isa.py tells
// dispatched code from baseline code by that namespace.
namespace aek::avx2 {

// Register plans (16 ymm):
//   fwd_nchw 3 channels x 3 vectors: 9 accumulators + 3 input vectors + 1 broadcast
//   fwd_nchw_rows rows x 1-2 vectors x 1-2 channels of accumulators + the input
//            vectors + kh weights per channel, within 15 registers
//   fwd_nhwc 6 pixels x 2 vectors:   12 accumulators + 2 weight vectors + 1 broadcast
//   bwf_nchw 3 channels x 3 taps:    9 accumulators + 3 dY vectors + 1 input vector
//   bwf_nhwc 10 accumulators (5 taps x 2 vectors) + 2 x 2 dY vectors + 2 broadcasts
//   fwd_nchw_kvec 6 pixels x 2 vectors: 12 accumulators + 2 weight vectors + 1 broadcast
//   bwf_nchw_kvec as bwf_nhwc
#define AEK_DIRECT_AVX2(tname, V)                                                           \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx2_fwd_nchw, V::T) {                          \
        direct::fwd_nchw<V, 3, 3>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_ROWS(direct_##tname##_avx2_fwd_nchw_rows, V::T) {                \
        direct::fwd_nchw_rows<V, 15, 2, 5>(K, rows, ow, nc, kh, kw, tap, xrow, w, ldw, bias, y,\
                                           ldyr, ldyk);                                 \
    }                                                                                   \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx2_fwd_nhwc, V::T) {                          \
        direct::fwd_nhwc<V, 6, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx2_bwf_nchw, V::T) {                          \
        direct::bwf_nchw<V, 3, 3>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc); \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx2_bwf_nhwc, V::T) {                          \
        direct::bwf_nhwc<V, 10, 2, 4>(K, rows, ow, ntaps, tap, 0, xrow, gy, ldgr, ldg2, acc, \
                                      ldacc);                                               \
    }                                                                                       \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_avx2_fwd_nchw_kvec, V::T) {                     \
        direct::fwd_nchw_kvec<V, 12, 6, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr,   \
                                       ldy2);                                               \
    }                                                                                       \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_avx2_bwf_nchw_kvec, V::T) {                     \
        direct::bwf_nchw_kvec<V, 10, 2, 4, kDirectKvecBuf>(K, rows, ow, ntaps, tap, xrow, gy,   \
                                                           ldgr, ldg2, acc, ldacc);         \
    }                                                                                       \
    AEK_DECLARE_DIRECT_COPY(direct_##tname##_avx2_copy_rows, V::T) {                        \
        direct::copy_rows<V>(nc, nr, len, s, ldsc, ldsr, d, lddc, lddr, pf);                \
    }

AEK_DIRECT_AVX2(f32, F32x8)
AEK_DIRECT_AVX2(f64, F64x4)

}  // namespace aek::avx2
