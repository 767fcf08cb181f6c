// Vector traits (F32x8 / F64x4) of the avx2 ISA units: include only from
// csrc/*_avx2.cpp, after <immintrin.h>.  The traits sit in an anonymous namespace
// inside aek::avx2, so every unit gets its own internal copy of them and of every
// template instantiated over them: no COMDAT symbol can be shared with baseline code
// (.ci/check_isa.py tells the ISA code by that namespace).
#pragma once

namespace aek::avx2 {
namespace {

struct F32x8 {
    using T = float;
    using R = __m256;
    static constexpr int W = 8;
    static R zero() { return _mm256_setzero_ps(); }
    static R load(const T* p) { return _mm256_loadu_ps(p); }
    static R bcast(const T* p) { return _mm256_broadcast_ss(p); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static void store(T* p, R r) { _mm256_storeu_ps(p, r); }
    static T hsum(R r) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        return _mm_cvtss_f32(h);
    }
    static R load_part(const T* p, int n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
    }
    static constexpr bool kTranspose = false;
    static void transpose(R*) {}
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    static void store_part(T* p, R r, int n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane), r);
    }
};
struct F64x4 {
    using T = double;
    using R = __m256d;
    static constexpr int W = 4;
    static R zero() { return _mm256_setzero_pd(); }
    static R load(const T* p) { return _mm256_loadu_pd(p); }
    static R bcast(const T* p) { return _mm256_broadcast_sd(p); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
    static void store(T* p, R r) { _mm256_storeu_pd(p, r); }
    static T hsum(R r) {
        __m128d h = _mm_add_pd(_mm256_castpd256_pd128(r), _mm256_extractf128_pd(r, 1));
        h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
        return _mm_cvtsd_f64(h);
    }
    static R load_part(const T* p, int n) {
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lane));
    }
    static constexpr bool kTranspose = false;
    static void transpose(R*) {}
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
    static void store_part(T* p, R r, int n) {
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lane), r);
    }
};

}  // namespace
}  // namespace aek::avx2
