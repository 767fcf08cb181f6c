// The one place that picks the micro-kernels (from CPUID, once) and owns the
// thread count.
#include <cstdlib>
#include <cstring>

#include "aekernels/common.hpp"
#include "aekernels/gemm.hpp"
#include "aekernels/simd_templates.hpp"
#include "aekernels/vec_generic.hpp"

namespace aek {

namespace {

int default_threads() {
#ifdef _OPENMP
    return std::max(1, omp_get_max_threads());  // honours OMP_NUM_THREADS
#else
    return 1;
#endif
}

std::atomic<int> g_threads{default_threads()};

// Generic tiles: 6x8 fp32 / 6x4 fp64 keep 12 SSE2 accumulators live, leaving
// registers for the B row and the broadcast A element.
void gemm_ukernel_f32_6x8_generic(i64 kc, const float* a, const float* b, float* c, i64 ldc,
                                  int acc) {
    gemm_ukernel_generic<float, 6, 8>(kc, a, b, c, ldc, acc);
}
void gemm_ukernel_f64_6x4_generic(i64 kc, const double* a, const double* b, double* c, i64 ldc,
                                  int acc) {
    gemm_ukernel_generic<double, 6, 4>(kc, a, b, c, ldc, acc);
}

void conv_dot_f32_2x3_generic(i64 M, i64 N, i64 rows, i64 ow, const float* const* arow,
                              i64 apitch, const float* b, const i64* boff, i64 bpitch, float* c,
                              i64 ldc, int acc) {
    simd::dot_tiles<Lanes4<float>, 2, 3>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, acc);
}
void conv_dot_f64_2x3_generic(i64 M, i64 N, i64 rows, i64 ow, const double* const* arow,
                              i64 apitch, const double* b, const i64* boff, i64 bpitch, double* c,
                              i64 ldc, int acc) {
    simd::dot_tiles<Lanes4<double>, 2, 3>(M, N, rows, ow, arow, apitch, b, boff, bpitch, c, ldc, acc);
}

void conv_shift_f32_3x8_generic(i64 M, i64 ntaps, const float* w, i64 ldw, const float* slab,
                                const i64* toff, i64 nq, float* c, i64 ldc) {
    simd::shift_rows<Lanes4<float>, 3, 2>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}
void conv_shift_f64_3x8_generic(i64 M, i64 ntaps, const double* w, i64 ldw, const double* slab,
                                const i64* toff, i64 nq, double* c, i64 ldc) {
    simd::shift_rows<Lanes4<double>, 3, 2>(M, ntaps, w, ldw, slab, toff, nq, c, ldc);
}

enum Level { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

Level cpu_level() {
#if defined(AEK_HAVE_X86_ISA) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq");
    return avx512 ? kAvx512 : avx2 ? kAvx2 : kGeneric;
#else
    return kGeneric;
#endif
}

IsaTable make_table() {
    Level level = cpu_level();
    // AEKERNELS_ISA caps the level; asking for more than the CPU has gives the
    // best it does have (isa() reports what actually runs).
    if (const char* env = std::getenv("AEKERNELS_ISA")) {
        if (std::strcmp(env, "generic") == 0) level = kGeneric;
        else if (std::strcmp(env, "avx2") == 0) level = std::min(level, kAvx2);
    }
    IsaTable t;
    t.isa = "generic";
    t.f32 = {"gemm_ukernel_f32_6x8_generic", 6, 8, 120, 256, 4096, gemm_ukernel_f32_6x8_generic};
    t.f64 = {"gemm_ukernel_f64_6x4_generic", 6, 4, 120, 256, 4096, gemm_ukernel_f64_6x4_generic};
    t.shift_f32 = {"conv_shift_f32_3x8_generic", 4, 6, conv_shift_f32_3x8_generic};
    t.shift_f64 = {"conv_shift_f64_3x8_generic", 4, 6, conv_shift_f64_3x8_generic};
    t.dot_f32 = {"conv_dot_f32_2x3_generic", 2, 3, 4, conv_dot_f32_2x3_generic};
    t.dot_f64 = {"conv_dot_f64_2x3_generic", 2, 3, 4, conv_dot_f64_2x3_generic};
    t.cl_f32 = {"none", 4, 4, nullptr, 1, nullptr, nullptr};
    t.cl_f64 = {"none", 4, 4, nullptr, 1, nullptr, nullptr};
#ifdef AEK_HAVE_X86_ISA
    if (level == kAvx2) {
        t.isa = "avx2";
        t.f32 = {"gemm_ukernel_f32_6x16_avx2", 6, 16, 144, 256, 4096, avx2::gemm_ukernel_f32_6x16_avx2};
        t.f64 = {"gemm_ukernel_f64_6x8_avx2", 6, 8, 96, 256, 4096, avx2::gemm_ukernel_f64_6x8_avx2};
        t.shift_f32 = {"conv_shift_f32_3x24_avx2", 8, 1 << 30, avx2::conv_shift_f32_3x24_avx2};
        t.shift_f64 = {"conv_shift_f64_3x12_avx2", 4, 1 << 30, avx2::conv_shift_f64_3x12_avx2};
        t.dot_f32 = {"conv_dot_f32_3x3_avx2", 3, 3, 8, avx2::conv_dot_f32_3x3_avx2};
        t.dot_f64 = {"conv_dot_f64_3x3_avx2", 3, 3, 4, avx2::conv_dot_f64_3x3_avx2};
        // no channel-vector backward-filter on AVX2: GCC keeps its accumulators
        // in memory there, and the dot tiles are faster
        t.cl_f32 = {"conv_cl_f32_6x16_avx2", 8, 16, avx2::conv_cl_f32_6x16_avx2, 1,
                    nullptr, nullptr};
        t.cl_f64 = {"conv_cl_f64_6x8_avx2", 4, 8, avx2::conv_cl_f64_6x8_avx2, 1,
                    nullptr, nullptr};
        t.wino_f32 = {"wino_f32_avx2", avx2::wino_in_f32_avx2, avx2::wino_out_f32_avx2};
    } else if (level == kAvx512) {
        t.isa = "avx512";
        t.f32 = {"gemm_ukernel_f32_14x32_avx512", 14, 32, 168, 256, 4096,
                 avx512::gemm_ukernel_f32_14x32_avx512, avx512::pack_t_f32_avx512};
        t.f64 = {"gemm_ukernel_f64_14x16_avx512", 14, 16, 112, 256, 4096,
                 avx512::gemm_ukernel_f64_14x16_avx512, avx512::pack_t_f64_avx512};
        t.shift_f32 = {"conv_shift_f32_6x64_avx512", 16, 1 << 30, avx512::conv_shift_f32_6x64_avx512};
        t.shift_f64 = {"conv_shift_f64_6x32_avx512", 8, 1 << 30, avx512::conv_shift_f64_6x32_avx512};
        t.dot_f32 = {"conv_dot_f32_4x6_avx512", 4, 6, 16, avx512::conv_dot_f32_4x6_avx512};
        t.dot_f64 = {"conv_dot_f64_4x6_avx512", 4, 6, 8, avx512::conv_dot_f64_4x6_avx512};
        t.cl_f32 = {"conv_cl_f32_14x32_avx512", 16, 32, avx512::conv_cl_f32_14x32_avx512, 4,
                    avx512::conv_clf_f32_4x6_avx512, avx512::conv_clt_f32_avx512,
                    avx512::conv_clp_f32_avx512};
        t.cl_f64 = {"conv_cl_f64_14x16_avx512", 8, 16, avx512::conv_cl_f64_14x16_avx512, 4,
                    avx512::conv_clf_f64_4x6_avx512, nullptr};
        t.wino_f32 = {"wino_f32_avx512", avx512::wino_in_f32_avx512,
                      avx512::wino_out_f32_avx512};
    }
#endif
    fill_direct_kernels(t);
    return t;
}

}  // namespace

const IsaTable& isa_table() {
    static const IsaTable table = make_table();
    return table;
}

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
    g_threads.store(n, std::memory_order_relaxed);
}

}  // namespace aek
