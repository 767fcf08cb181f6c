// Interface of the direct small-tap conv kernels (direct_templates.hpp) shared
// by conv_direct.hpp and the ISA translation units.  Like ukernels.hpp: only
// <cstdint> and plain declarations, so no standard-library template compiled
// with AVX flags can be ODR-merged into the generic path.
//
// All five take the input as tap pointers over padded rows (conv_direct.hpp):
// tap[t][r*xrow + q] is the input under tap t of output row r, column q.
//   fwd_nchw: y[k*ldy2 + r*ldyr + q] = bias[k] + sum_t w[k*ldw + t] * tap[t][r*xrow + q]
//   fwd_nchw_rows: as fwd_nchw for K = 1 or 2, ldy2 = ldyk, ntaps = nc*kh*kw
//             taps (c, i, j) whose kh rows slide (direct_templates.hpp); reads
//             input rows for `rows` rounded up to kDirectRowsTile
//   fwd_nhwc: y[r*ldyr + q*ldy2 + k] = bias[k] + sum_t tap[t][r*xrow + q] * w[t*ldw + k]
//             (w rows and bias zero padded to a multiple of 16 entries)
//   bwf_nchw: acc[k*ldacc + t*lanes + l] += sum_{r, q % lanes == l} gy[k*ldg2 + r*ldgr + q] * tap[t][r*xrow + q]
//   bwf_nhwc: acc[t*ldacc + k] += sum_{r, q} tap[t][r*xrow + q] * gy[r*ldgr + q*ldg2 + k]
//             (acc rows padded to a multiple of 16 entries)
//   fwd_nchw_kvec: y as fwd_nchw (ldy2 = ldyk), w and bias as fwd_nhwc
//   bwf_nchw_kvec: dY as bwf_nchw, acc as bwf_nhwc
//   copy_rows: d[c*lddc + r*lddr + e] = s[c*ldsc + r*ldsr + e], e < len (rows
//             of x into the rows buffer; nothing past len is written), and
//             with pf != 0 a prefetch of the same elements pf further on
//             (the two kvec kernels vectorise along the output channels, like
//             the NHWC ones, for NCHW convs with many taps: conv_direct.hpp)
// for k < K, r < rows, q < ow, t < ntaps.  bias may be null.
#pragma once

#include <cstdint>

namespace aek {

// fwd_nchw_rows tiles are at most this many output rows (a power of two).
constexpr std::int64_t kDirectRowsTile = 8;
// bwf_nchw_kvec transposes dY through a stack buffer of this many elements.
constexpr std::int64_t kDirectKvecBuf = 4096;

template <class T>
struct DirectKernels {
    using fwd_fn = void (*)(std::int64_t K, std::int64_t rows, std::int64_t ow,
                            std::int64_t ntaps, const T* const* tap, std::int64_t xrow,
                            const T* w, std::int64_t ldw, const T* bias, T* y, std::int64_t ldyr,
                            std::int64_t ldy2);
    using bwf_fn = void (*)(std::int64_t K, std::int64_t rows, std::int64_t ow,
                            std::int64_t ntaps, const T* const* tap, std::int64_t xrow,
                            const T* gy, std::int64_t ldgr, std::int64_t ldg2, T* acc,
                            std::int64_t ldacc);
    using rows_fn = void (*)(std::int64_t K, std::int64_t rows, std::int64_t ow,
                             std::int64_t nc, std::int64_t kh, std::int64_t kw,
                             const T* const* tap, std::int64_t xrow, const T* w, std::int64_t ldw,
                             const T* bias, T* y, std::int64_t ldyr, std::int64_t ldyk);
    using copy_fn = void (*)(std::int64_t nc, std::int64_t nr, std::int64_t len, const T* s,
                             std::int64_t ldsc, std::int64_t ldsr, T* d, std::int64_t lddc,
                             std::int64_t lddr, std::int64_t pf);
    const char* name;
    std::int64_t lanes;  // vector width of bwf_nchw's accumulators
    fwd_fn fwd_nchw;
    rows_fn fwd_nchw_rows;
    fwd_fn fwd_nhwc;
    bwf_fn bwf_nchw, bwf_nhwc;
    fwd_fn fwd_nchw_kvec;
    bwf_fn bwf_nchw_kvec;
    copy_fn copy_rows;
};

#define AEK_DECLARE_DIRECT_FWD(name, T)                                                      \
    void name(std::int64_t K, std::int64_t rows, std::int64_t ow, std::int64_t ntaps,        \
              const T* const* tap, std::int64_t xrow, const T* w, std::int64_t ldw,          \
              const T* bias, T* y, std::int64_t ldyr, std::int64_t ldy2)
#define AEK_DECLARE_DIRECT_ROWS(name, T)                                                     \
    void name(std::int64_t K, std::int64_t rows, std::int64_t ow, std::int64_t nc,            \
              std::int64_t kh, std::int64_t kw, const T* const* tap, std::int64_t xrow,       \
              const T* w, std::int64_t ldw, const T* bias, T* y, std::int64_t ldyr,           \
              std::int64_t ldyk)
#define AEK_DECLARE_DIRECT_COPY(name, T)                                                     \
    void name(std::int64_t nc, std::int64_t nr, std::int64_t len, const T* s,                 \
              std::int64_t ldsc, std::int64_t ldsr, T* d, std::int64_t lddc, std::int64_t lddr, \
              std::int64_t pf)
#define AEK_DECLARE_DIRECT_BWF(name, T)                                                      \
    void name(std::int64_t K, std::int64_t rows, std::int64_t ow, std::int64_t ntaps,        \
              const T* const* tap, std::int64_t xrow, const T* gy, std::int64_t ldgr,        \
              std::int64_t ldg2, T* acc, std::int64_t ldacc)

// The eight kernels of one ISA and dtype, e.g. direct_f32_avx2_fwd_nchw.
#define AEK_DECLARE_DIRECT_SET(isa, tname, T)            \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_##isa##_fwd_nchw, T); \
    AEK_DECLARE_DIRECT_ROWS(direct_##tname##_##isa##_fwd_nchw_rows, T); \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_##isa##_fwd_nhwc, T); \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_##isa##_bwf_nchw, T); \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_##isa##_bwf_nhwc, T); \
    AEK_DECLARE_DIRECT_FWD(direct_##tname##_##isa##_fwd_nchw_kvec, T); \
    AEK_DECLARE_DIRECT_BWF(direct_##tname##_##isa##_bwf_nchw_kvec, T); \
    AEK_DECLARE_DIRECT_COPY(direct_##tname##_##isa##_copy_rows, T)

#ifdef AEK_HAVE_X86_ISA
// Defined in conv_direct_avx2.cpp / conv_direct_avx512.cpp, one namespace per ISA unit.
namespace avx2 {
AEK_DECLARE_DIRECT_SET(avx2, f32, float);
AEK_DECLARE_DIRECT_SET(avx2, f64, double);
}  // namespace avx2
namespace avx512 {
AEK_DECLARE_DIRECT_SET(avx512, f32, float);
AEK_DECLARE_DIRECT_SET(avx512, f64, double);
}  // namespace avx512
#endif

}  // namespace aek
