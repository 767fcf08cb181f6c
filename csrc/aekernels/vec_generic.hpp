// Baseline "vectors" of the generic path: 4 lanes of plain scalars that the compiler
// maps onto SSE2/NEON registers, so no AVX instruction can appear in the code built
// over them.  Used by the baseline units (dispatch.cpp, conv_direct.cpp); internal
// to each (anonymous namespace), like the ISA units' vec_avx2.hpp / vec_avx512.hpp.
#pragma once

namespace aek {
namespace {

template <class TT>
struct Lanes4 {
    using T = TT;
    struct R { TT v[4]; };
    static constexpr int W = 4;
    static R zero() { return R{{TT(0), TT(0), TT(0), TT(0)}}; }
    static R load(const T* p) { return R{{p[0], p[1], p[2], p[3]}}; }
    static R bcast(const T* p) { return R{{*p, *p, *p, *p}}; }
    static R fma(R a, R b, R c) {
        for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
        return c;
    }
    static R add(R a, R b) {
        for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
        return a;
    }
    static R sub(R a, R b) {
        for (int i = 0; i < 4; ++i) a.v[i] -= b.v[i];
        return a;
    }
    static void store(T* p, R r) {
        for (int i = 0; i < 4; ++i) p[i] = r.v[i];
    }
    static T hsum(R r) { return (r.v[0] + r.v[1]) + (r.v[2] + r.v[3]); }
    static R load_part(const T* p, int n) {
        R r = zero();
        for (int i = 0; i < n; ++i) r.v[i] = p[i];
        return r;
    }
    static void store_part(T* p, R r, int n) {
        for (int i = 0; i < n; ++i) p[i] = r.v[i];
    }
    static constexpr bool kTranspose = false;
    static void transpose(R*) {}
};

}  // namespace
}  // namespace aek
