// Micro-kernel interface shared by the generic code and the ISA translation
// units.  Kept to <cstdint> and plain declarations on purpose: an ISA unit that
// included a standard-library template could have its AVX-compiled copy
// ODR-merged into the generic path and crash old CPUs.
//
// Contract of every gemm_ukernel_<dtype>_<MR>x<NR>_<isa>:
//   a: packed A micro-panel, a[k*MR + i]   (MR rows, kc columns)
//   b: packed B micro-panel, b[k*NR + j]   (kc rows, NR columns)
//   c: MR x NR row-major tile with row stride ldc (unit column stride)
//   accumulate ? c += a*b : c = a*b     (kc >= 1)
#pragma once

#include <cstdint>

namespace aek {

using ukernel_f32_fn = void (*)(std::int64_t kc, const float* a, const float* b,
                                float* c, std::int64_t ldc, int accumulate);
using ukernel_f64_fn = void (*)(std::int64_t kc, const double* a, const double* b,
                                double* c, std::int64_t ldc, int accumulate);

// Direct small-M correlation over a shifted slab (simd_templates.hpp,
// shift_rows): c[m*ldc + q] = sum_t w[m*ldw + t] * slab[toff[t] + q] for
// m < M, q < nq; nq a multiple of the table's shift_q.
using shift_f32_fn = void (*)(std::int64_t M, std::int64_t ntaps, const float* w, std::int64_t ldw,
                              const float* slab, const std::int64_t* toff, std::int64_t nq,
                              float* c, std::int64_t ldc);
using shift_f64_fn = void (*)(std::int64_t M, std::int64_t ntaps, const double* w, std::int64_t ldw,
                              const double* slab, const std::int64_t* toff, std::int64_t nq,
                              double* c, std::int64_t ldc);

#define AEK_DECLARE_SHIFT(name, T)                                                         \
    void name(std::int64_t M, std::int64_t ntaps, const T* w, std::int64_t ldw, const T* slab, \
              const std::int64_t* toff, std::int64_t nq, T* c, std::int64_t ldc)

// Dot-product tiles over a shifted slab (simd_templates.hpp, dot_tiles):
// c[m*ldc + n] (+)= sum_{r, q} arow[m][r*apitch + q] * b[boff[n] + r*bpitch + q];
// M, N multiples of the table's dot mr / nr.
#define AEK_DECLARE_DOT(name, T)                                                             \
    void name(std::int64_t M, std::int64_t N, std::int64_t rows, std::int64_t ow,              \
              const T* const* arow, std::int64_t apitch, const T* b, const std::int64_t* boff, \
              std::int64_t bpitch, T* c, std::int64_t ldc, int accumulate)

// Channel-vector direct conv over a channel-blocked slab (simd_templates.hpp,
// cl_rows): out[a*as + b*ps + m*ms] = bias[m] + sum_{ti, cb, tj, l}
//   slab[a*rs + ioff[ti] + cb*cbs + joff[tj] + b*W + l] * w(m, ((ti*ncb + cb)*ntj + tj)*W + l)
// for a < rows, b < GB, m < M (W = the table's cl block; bias may be null).
// ls != 1: a planar slab instead, slab[a*rs + ioff[ti] + cb*cbs + joff[tj] + b + l*ls].
#define AEK_DECLARE_CL(name, T)                                                                \
    void name(std::int64_t M, std::int64_t rows, std::int64_t GB, std::int64_t nti,              \
              const std::int64_t* ioff, std::int64_t ntj, const std::int64_t* joff,              \
              std::int64_t ncb, std::int64_t cbs, std::int64_t ls, const T* slab, std::int64_t rs, \
              const T* wpk,                                                                       \
              T* out, std::int64_t as, std::int64_t ps, std::int64_t ms, const T* bias)

// Backward-filter over the same slab (simd_templates.hpp, cl_filter).
#define AEK_DECLARE_CLF(name, T)                                                                \
    void name(std::int64_t Mpad, std::int64_t ncol, const std::int64_t* coff, std::int64_t rows, \
              std::int64_t GB, const T* slab, std::int64_t rs, const T* g, std::int64_t gps,     \
              std::int64_t gms, std::int64_t gbs, T* c, std::int64_t ldc)

// Channel-major rows -> channel-blocked slab columns (cl_transpose_rows).
#define AEK_DECLARE_CLT(name, T) \
    void name(const T* s, std::int64_t cs, std::int64_t nc, std::int64_t n, T* d)

// d[k*R + r] = s[r*ls + k] for r < rows, k < n, zero for rows <= r < R
// (simd_templates.hpp, pack_transposed).
#define AEK_DECLARE_PACKT(name, T)                                                        \
    void name(const T* s, std::int64_t ls, std::int64_t rows, std::int64_t n, std::int64_t R, \
              T* d)

// Rows of a planar slab: d[r*Wp + col] = s[r*hs + col - lo] for lo <= col < lo + n,
// zero for the other col < Wp, r < rows (s is read only inside the n columns).
#define AEK_DECLARE_CLP(name, T)                                                            \
    void name(const T* s, std::int64_t hs, std::int64_t rows, std::int64_t lo, std::int64_t n, \
              std::int64_t Wp, T* d)

// Winograd F(2x2, 3x3) input / output transforms over channel vectors
// (simd_templates.hpp, wino_input / wino_output).
#define AEK_DECLARE_WIN(name, T)                                                             \
    void name(const T* slab, std::int64_t rs, std::int64_t cbs, std::int64_t ncb,              \
              std::int64_t TY, std::int64_t TX, T* v, std::int64_t vps, std::int64_t vcbs)
#define AEK_DECLARE_WOUT(name, T)                                                            \
    void name(const T* m, std::int64_t ps, std::int64_t K, std::int64_t TY, std::int64_t TX,   \
              std::int64_t OHv, std::int64_t OW, const T* bias, T* out, std::int64_t ms,       \
              std::int64_t hs, std::int64_t ws, T* buf)

#ifdef AEK_HAVE_X86_ISA
// Defined in gemm_avx2.cpp / gemm_avx512.cpp, one namespace per ISA unit (see there).
namespace avx2 {
AEK_DECLARE_DOT(conv_dot_f32_3x3_avx2, float);
AEK_DECLARE_DOT(conv_dot_f64_3x3_avx2, double);
AEK_DECLARE_SHIFT(conv_shift_f32_3x24_avx2, float);
AEK_DECLARE_SHIFT(conv_shift_f64_3x12_avx2, double);
AEK_DECLARE_CL(conv_cl_f32_6x16_avx2, float);
AEK_DECLARE_CL(conv_cl_f64_6x8_avx2, double);
AEK_DECLARE_WIN(wino_in_f32_avx2, float);
AEK_DECLARE_WOUT(wino_out_f32_avx2, float);
void gemm_ukernel_f32_6x16_avx2(std::int64_t kc, const float* a, const float* b,
                                float* c, std::int64_t ldc, int accumulate);
void gemm_ukernel_f64_6x8_avx2(std::int64_t kc, const double* a, const double* b,
                               double* c, std::int64_t ldc, int accumulate);
}  // namespace avx2
namespace avx512 {
AEK_DECLARE_DOT(conv_dot_f32_4x6_avx512, float);
AEK_DECLARE_DOT(conv_dot_f64_4x6_avx512, double);
AEK_DECLARE_SHIFT(conv_shift_f32_6x64_avx512, float);
AEK_DECLARE_SHIFT(conv_shift_f64_6x32_avx512, double);
AEK_DECLARE_CL(conv_cl_f32_14x32_avx512, float);
AEK_DECLARE_CL(conv_cl_f64_14x16_avx512, double);
AEK_DECLARE_CLF(conv_clf_f32_4x6_avx512, float);
AEK_DECLARE_CLF(conv_clf_f64_4x6_avx512, double);
AEK_DECLARE_CLT(conv_clt_f32_avx512, float);
AEK_DECLARE_CLP(conv_clp_f32_avx512, float);
AEK_DECLARE_PACKT(pack_t_f32_avx512, float);
AEK_DECLARE_PACKT(pack_t_f64_avx512, double);
AEK_DECLARE_WIN(wino_in_f32_avx512, float);
AEK_DECLARE_WOUT(wino_out_f32_avx512, float);
void gemm_ukernel_f32_14x32_avx512(std::int64_t kc, const float* a, const float* b,
                                   float* c, std::int64_t ldc, int accumulate);
void gemm_ukernel_f64_14x16_avx512(std::int64_t kc, const double* a, const double* b,
                                   double* c, std::int64_t ldc, int accumulate);
}  // namespace avx512
#endif

}  // namespace aek
