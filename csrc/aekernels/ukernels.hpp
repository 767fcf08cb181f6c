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

#ifdef AEK_HAVE_X86_ISA
void gemm_ukernel_f32_6x16_avx2(std::int64_t kc, const float* a, const float* b,
                                float* c, std::int64_t ldc, int accumulate);
void gemm_ukernel_f64_6x8_avx2(std::int64_t kc, const double* a, const double* b,
                               double* c, std::int64_t ldc, int accumulate);
void gemm_ukernel_f32_14x32_avx512(std::int64_t kc, const float* a, const float* b,
                                   float* c, std::int64_t ldc, int accumulate);
void gemm_ukernel_f64_14x16_avx512(std::int64_t kc, const double* a, const double* b,
                                   double* c, std::int64_t ldc, int accumulate);
#endif

}  // namespace aek
