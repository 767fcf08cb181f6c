// Vector traits (F32x16 / F64x8) of the avx512 ISA units: include only from
// csrc/*_avx512.cpp, after <immintrin.h>.  The traits sit in an anonymous namespace
// inside aek::avx512, so every unit gets its own internal copy of them and of every
// template instantiated over them: no COMDAT symbol can be shared with baseline code
// (.ci/check_isa.py tells the ISA code by that namespace).
#pragma once

namespace aek::avx512 {
namespace {

struct F32x16 {
    using T = float;
    using R = __m512;
    static constexpr int W = 16;
    static R zero() { return _mm512_setzero_ps(); }
    static R load(const T* p) { return _mm512_loadu_ps(p); }
    static R bcast(const T* p) { return _mm512_set1_ps(*p); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static void store(T* p, R r) { _mm512_storeu_ps(p, r); }
    static T hsum(R r) { return _mm512_reduce_add_ps(r); }
    static R load_part(const T* p, int n) {
        return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
    }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    static void store_part(T* p, R r, int n) {
        _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), r);
    }
    // In-register 16 x 16 transpose (r[i] lane j <-> r[j] lane i): 32-bit and
    // 64-bit interleaves, then two rounds of 128-bit lane shuffles.
    static constexpr bool kTranspose = true;
    static void transpose(R* r) {
        __m512 t[16], u[16], v[16];
        for (int i = 0; i < 8; ++i) {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; ++i) {
            const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
            const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
            u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        for (int k = 0; k < 4; ++k) {
            v[k + 0] = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88);
            v[k + 4] = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xDD);
            v[k + 8] = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88);
            v[k + 12] = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xDD);
        }
        for (int k = 0; k < 4; ++k) {
            r[k + 0] = _mm512_shuffle_f32x4(v[k], v[k + 8], 0x88);
            r[k + 8] = _mm512_shuffle_f32x4(v[k], v[k + 8], 0xDD);
            r[k + 4] = _mm512_shuffle_f32x4(v[k + 4], v[k + 12], 0x88);
            r[k + 12] = _mm512_shuffle_f32x4(v[k + 4], v[k + 12], 0xDD);
        }
    }
};
struct F64x8 {
    using T = double;
    using R = __m512d;
    static constexpr int W = 8;
    static R zero() { return _mm512_setzero_pd(); }
    static R load(const T* p) { return _mm512_loadu_pd(p); }
    static R bcast(const T* p) { return _mm512_set1_pd(*p); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
    static void store(T* p, R r) { _mm512_storeu_pd(p, r); }
    static T hsum(R r) { return _mm512_reduce_add_pd(r); }
    static R load_part(const T* p, int n) {
        return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1u), p);
    }
    // In-register 8 x 8 transpose (r[i] lane j <-> r[j] lane i): 64-bit
    // interleaves, then two rounds of 128-bit lane shuffles.  Used by
    // pack_transposed only: kTranspose stays false, the kernels that test it
    // were tuned for fp64 without it.
    static constexpr bool kTranspose = false;
    static void transpose(R* r) {
        __m512d t[8], u[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
        }
        for (int h = 0; h < 8; h += 4) {
            u[h + 0] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);
            u[h + 1] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xDD);
            u[h + 2] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88);
            u[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xDD);
        }
        r[0] = _mm512_shuffle_f64x2(u[0], u[4], 0x88);
        r[4] = _mm512_shuffle_f64x2(u[0], u[4], 0xDD);
        r[2] = _mm512_shuffle_f64x2(u[1], u[5], 0x88);
        r[6] = _mm512_shuffle_f64x2(u[1], u[5], 0xDD);
        r[1] = _mm512_shuffle_f64x2(u[2], u[6], 0x88);
        r[5] = _mm512_shuffle_f64x2(u[2], u[6], 0xDD);
        r[3] = _mm512_shuffle_f64x2(u[3], u[7], 0x88);
        r[7] = _mm512_shuffle_f64x2(u[3], u[7], 0xDD);
    }
    static R add(R a, R b) { return _mm512_add_pd(a, b); }
    static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
    static void store_part(T* p, R r, int n) {
        _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), r);
    }
};

}  // namespace
}  // namespace aek::avx512
