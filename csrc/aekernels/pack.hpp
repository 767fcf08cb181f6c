// Packers: copy (or gather) an operand into the micro-panel layout of
// gemm_packed: panel p holds outer indices [o0 + p*R, o0 + p*R + R) for kc
// reduction indices, dst[p*R*kc + k*R + r], rows past `no` are zero.
#pragma once

#include "aekernels/common.hpp"

namespace aek {

constexpr int kMaxPanel = 64;  // largest register tile side of any micro-kernel

// Element (o, k) = base[o*so + k*sk]: weights, gradients, 1x1-conv activations.
template <class T>
struct DensePack {
    const T* base;
    i64 so, sk;

    void pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        for (i64 p0 = 0; p0 < no; p0 += R) {
            const i64 rows = std::min(R, no - p0);
            const T* src = base + (o0 + p0) * so + k0 * sk;
            if (so == 1) {  // a panel row is contiguous in memory
                for (i64 k = 0; k < kc; ++k) {
                    const T* s = src + k * sk;
                    T* d = dst + k * R;
                    for (i64 r = 0; r < rows; ++r) d[r] = s[r];
                    for (i64 r = rows; r < R; ++r) d[r] = T(0);
                }
            } else {
                for (i64 r = 0; r < rows; ++r) {
                    const T* s = src + r * so;
                    T* d = dst + r;
                    if (sk == 1)
                        for (i64 k = 0; k < kc; ++k) d[k * R] = s[k];
                    else
                        for (i64 k = 0; k < kc; ++k) d[k * R] = s[k * sk];
                }
                for (i64 r = rows; r < R; ++r)
                    for (i64 k = 0; k < kc; ++k) dst[k * R + r] = T(0);
            }
            dst += R * kc;
        }
    }
};

// The implicit patch matrix of a convolution, P(tap, pixel):
//   pixel p (counted from p0) -> grid (a, b) = divmod(p0 + p, GB)
//   tap t -> (c, ti, tj): (c, ti, tj) row-major, or (ti, tj, c) if chan_last
//   P = src[c*cs + ih*hs + iw*ws] with ih = a*sa + oi[ti], iw = b*sb + oj[tj],
//       0 outside [0,H) x [0,W) (the zero padding).
// Forward conv is W * P; backward-input is a correlation of dY with the
// rearranged kernel, i.e. the same gather with other offsets.
template <class T>
struct Patch {
    const T* src;
    i64 cs, hs, ws;
    i64 H, W;
    i64 GB, p0;
    i64 sa, sb;
    const i64* oi;
    i64 nti;
    const i64* oj;
    i64 ntj;
    i64 C;
    bool chan_last;

    i64 ntaps() const { return C * nti * ntj; }

    void decode(i64 t, i64& c, i64& ti, i64& tj) const {
        if (chan_last) {
            c = t % C;
            t /= C;
            tj = t % ntj;
            ti = t / ntj;
        } else {
            tj = t % ntj;
            t /= ntj;
            ti = t % nti;
            c = t / nti;
        }
    }
    void advance(i64& c, i64& ti, i64& tj) const {
        if (chan_last) {
            if (++c == C) { c = 0; if (++tj == ntj) { tj = 0; ++ti; } }
        } else {
            if (++tj == ntj) { tj = 0; if (++ti == nti) { ti = 0; ++c; } }
        }
    }
};

// outer = pixel, k = tap (forward / backward-input: the pixel side of the GEMM).
template <class T>
struct PatchPixelPack {
    Patch<T> P;

    void pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        i64 ra[kMaxPanel], cb[kMaxPanel];
        for (i64 q0 = 0; q0 < no; q0 += R) {
            const i64 rows = std::min(R, no - q0);
            for (i64 r = 0; r < rows; ++r) {
                const i64 p = P.p0 + o0 + q0 + r;
                ra[r] = (p / P.GB) * P.sa;
                cb[r] = (p % P.GB) * P.sb;
            }
            i64 c, ti, tj;
            P.decode(k0, c, ti, tj);
            for (i64 k = 0; k < kc; ++k) {
                const T* s = P.src + c * P.cs;
                const i64 di = P.oi[ti], dj = P.oj[tj];
                T* d = dst + k * R;
                for (i64 r = 0; r < rows; ++r) {
                    const i64 ih = ra[r] + di, iw = cb[r] + dj;
                    d[r] = (in_range(ih, P.H) && in_range(iw, P.W)) ? s[ih * P.hs + iw * P.ws]
                                                                     : T(0);
                }
                for (i64 r = rows; r < R; ++r) d[r] = T(0);
                P.advance(c, ti, tj);
            }
            dst += R * kc;
        }
    }
};

// outer = tap, k = pixel (backward-filter: the reduction runs over pixels).
template <class T>
struct PatchTapPack {
    Patch<T> P;

    void pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        i64 co[kMaxPanel], di[kMaxPanel], dj[kMaxPanel];
        for (i64 q0 = 0; q0 < no; q0 += R) {
            const i64 rows = std::min(R, no - q0);
            i64 c, ti, tj;
            P.decode(o0 + q0, c, ti, tj);
            for (i64 r = 0; r < rows; ++r) {
                co[r] = c * P.cs;
                di[r] = P.oi[ti];
                dj[r] = P.oj[tj];
                P.advance(c, ti, tj);
            }
            i64 p = P.p0 + k0;
            i64 a = p / P.GB, b = p % P.GB;
            for (i64 k = 0; k < kc; ++k) {
                const i64 ra = a * P.sa, cb = b * P.sb;
                T* d = dst + k * R;
                for (i64 r = 0; r < rows; ++r) {
                    const i64 ih = ra + di[r], iw = cb + dj[r];
                    d[r] = (in_range(ih, P.H) && in_range(iw, P.W))
                               ? P.src[co[r] + ih * P.hs + iw * P.ws]
                               : T(0);
                }
                for (i64 r = rows; r < R; ++r) d[r] = T(0);
                if (++b == P.GB) { b = 0; ++a; }
            }
            dst += R * kc;
        }
    }
};

}  // namespace aek
