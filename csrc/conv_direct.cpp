// Generic (baseline-ISA) instantiations of the direct small-tap conv kernels
// and the choice of the set that matches the ISA the micro-kernel table runs.
#include <cstring>

#include "aekernels/direct_templates.hpp"
#include "aekernels/direct_ukernels.hpp"
#include "aekernels/gemm.hpp"
#include "aekernels/vec_generic.hpp"

namespace aek {
namespace {

// conv_direct.hpp sizes the rows buffer for whole tiles of kDirectRowsTile rows.
static_assert(direct::rows_tile_max(1 << 10, 1, 1, 1) == kDirectRowsTile,
              "fwd_nchw_rows tiles must divide kDirectRowsTile");

// Register plans for 16 SSE registers (one Lanes4<float> each).
template <class T>
void fwd_nchw_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                      const T* w, i64 ldw, const T* bias, T* y, i64 ldyr, i64 ldy2) {
    direct::fwd_nchw<Lanes4<T>, 3, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2);
}
template <class T>
void fwd_nchw_rows_generic(i64 K, i64 rows, i64 ow, i64 nc, i64 kh, i64 kw, const T* const* tap,
                           i64 xrow, const T* w, i64 ldw, const T* bias, T* y, i64 ldyr,
                           i64 ldyk) {
    direct::fwd_nchw_rows<Lanes4<T>, 15, 2, 3>(K, rows, ow, nc, kh, kw, tap, xrow, w, ldw, bias,
                                               y, ldyr, ldyk);
}
template <class T>
void fwd_nhwc_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                      const T* w, i64 ldw, const T* bias, T* y, i64 ldyr, i64 ldy2) {
    direct::fwd_nhwc<Lanes4<T>, 4, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr, ldy2);
}
template <class T>
void bwf_nchw_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                      const T* gy, i64 ldgr, i64 ldg2, T* acc, i64 ldacc) {
    direct::bwf_nchw<Lanes4<T>, 2, 3>(K, rows, ow, ntaps, tap, xrow, gy, ldgr, ldg2, acc, ldacc);
}
template <class T>
void bwf_nhwc_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                      const T* gy, i64 ldgr, i64 ldg2, T* acc, i64 ldacc) {
    direct::bwf_nhwc<Lanes4<T>, 8, 2, 4>(K, rows, ow, ntaps, tap, 0, xrow, gy, ldgr, ldg2, acc,
                                      ldacc);
}
template <class T>
void fwd_nchw_kvec_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                           const T* w, i64 ldw, const T* bias, T* y, i64 ldyr, i64 ldy2) {
    direct::fwd_nchw_kvec<Lanes4<T>, 8, 4, 2>(K, rows, ow, ntaps, tap, xrow, w, ldw, bias, y, ldyr,
                                           ldy2);
}
template <class T>
void bwf_nchw_kvec_generic(i64 K, i64 rows, i64 ow, i64 ntaps, const T* const* tap, i64 xrow,
                           const T* gy, i64 ldgr, i64 ldg2, T* acc, i64 ldacc) {
    direct::bwf_nchw_kvec<Lanes4<T>, 8, 2, 4, kDirectKvecBuf>(K, rows, ow, ntaps, tap, xrow, gy,
                                                           ldgr, ldg2, acc, ldacc);
}

template <class T>
void copy_rows_generic(i64 nc, i64 nr, i64 len, const T* s, i64 ldsc, i64 ldsr, T* d, i64 lddc,
                       i64 lddr, i64 pf) {
    direct::copy_rows<Lanes4<T>>(nc, nr, len, s, ldsc, ldsr, d, lddc, lddr, pf);
}

template <class T>
DirectKernels<T> generic_set(const char* name) {
    return {name,
            4,
            fwd_nchw_generic<T>,
            fwd_nchw_rows_generic<T>,
            fwd_nhwc_generic<T>,
            bwf_nchw_generic<T>,
            bwf_nhwc_generic<T>,
            fwd_nchw_kvec_generic<T>,
            bwf_nchw_kvec_generic<T>,
            copy_rows_generic<T>};
}

const DirectKernels<float> kGenericF32 = generic_set<float>("direct_f32_generic");
const DirectKernels<double> kGenericF64 = generic_set<double>("direct_f64_generic");
#ifdef AEK_HAVE_X86_ISA
#define AEK_DIRECT_SET(isa, tname, lanes)                                                   \
    {"direct_" #tname "_" #isa, lanes, isa::direct_##tname##_##isa##_fwd_nchw,              \
     isa::direct_##tname##_##isa##_fwd_nchw_rows,                                           \
     isa::direct_##tname##_##isa##_fwd_nhwc, isa::direct_##tname##_##isa##_bwf_nchw,        \
     isa::direct_##tname##_##isa##_bwf_nhwc, isa::direct_##tname##_##isa##_fwd_nchw_kvec,      \
     isa::direct_##tname##_##isa##_bwf_nchw_kvec, isa::direct_##tname##_##isa##_copy_rows}
const DirectKernels<float> kAvx2F32 = AEK_DIRECT_SET(avx2, f32, 8);
const DirectKernels<double> kAvx2F64 = AEK_DIRECT_SET(avx2, f64, 4);
const DirectKernels<float> kAvx512F32 = AEK_DIRECT_SET(avx512, f32, 16);
const DirectKernels<double> kAvx512F64 = AEK_DIRECT_SET(avx512, f64, 8);
#undef AEK_DIRECT_SET
#endif

}  // namespace

// The direct kernels follow the GEMM table's ISA (CPUID capped by
// AEKERNELS_ISA), so one setting forces every kernel of a call.
void fill_direct_kernels(IsaTable& t) {
    t.direct_f32 = &kGenericF32;
    t.direct_f64 = &kGenericF64;
#ifdef AEK_HAVE_X86_ISA
    if (std::strcmp(t.isa, "avx2") == 0) {
        t.direct_f32 = &kAvx2F32;
        t.direct_f64 = &kAvx2F64;
    } else if (std::strcmp(t.isa, "avx512") == 0) {
        t.direct_f32 = &kAvx512F32;
        t.direct_f64 = &kAvx512F64;
    }
#endif
}

}  // namespace aek
