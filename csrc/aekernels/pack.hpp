// Packers: copy (or gather) an operand into the micro-panel layout of
// gemm_packed: panel p holds outer indices [o0 + p*R, o0 + p*R + R) for kc
// reduction indices, dst[p*R*kc + k*R + r], rows past `no` are zero.
#pragma once

#include <vector>

#include "aekernels/common.hpp"

namespace aek {

constexpr int kMaxPanel = 64;  // largest register tile side of any micro-kernel

// Element (o, k) = base[o*so + k*sk]: weights, gradients, 1x1-conv activations.
template <class T>
struct DensePack {
    const T* base;
    i64 so, sk;

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        if (so == 1) {
            // A panel row is contiguous in memory.  Source row by source row
            // (k outer): each is read once, in full lines, while the panels
            // fill side by side; panel by panel, rows sk apart are revisited
            // once per panel (a 1x1 backward-filter spent a quarter of its
            // time in those reads).
            for (i64 k = 0; k < kc; ++k) {
                const T* s = base + o0 + (k0 + k) * sk;
                for (i64 p0 = 0; p0 < no; p0 += R) {
                    const i64 rows = std::min(R, no - p0);
                    T* d = dst + p0 * kc + k * R;
                    for (i64 r = 0; r < rows; ++r) d[r] = s[p0 + r];
                    for (i64 r = rows; r < R; ++r) d[r] = T(0);
                }
            }
            return dst;
        }
        T* const out = dst;
        for (i64 p0 = 0; p0 < no; p0 += R) {
            const i64 rows = std::min(R, no - p0);
            const T* src = base + (o0 + p0) * so + k0 * sk;
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
            dst += R * kc;
        }
        return out;
    }
};

// Element (o, k) with the outer index o = n*P + p running over the pixels of
// a batch of N images: base[n*img + k*sk + p] (NCHW activations, reduction =
// channel, for forward / backward-input); o counts from o_first.  The panel
// columns are cut once into runs that stay in one image and one panel; every
// reduction index then copies each run, source row by source row (a generic
// patch gather spent about a quarter of a 1x1 conv on bounds and divisions).
template <class T>
struct BatchColsPack {
    const T* base;
    i64 sk, P, img, o_first;

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        struct Run { i64 src, dst, len; };
        std::vector<Run> runs;
        for (i64 q = 0; q < no;) {
            const i64 o = o_first + o0 + q, n = o / P, p = o % P;
            const i64 len = std::min({P - p, R - q % R, no - q});
            runs.push_back({n * img + p, q / R * R * kc + q % R, len});
            q += len;
        }
        const i64 tail = ceil_div(no, R) * R - no;  // zero columns of the last panel
        T* const zero_at = dst + (no / R) * R * kc + no % R;
        for (i64 k = 0; k < kc; ++k) {
            const T* s = base + (k0 + k) * sk;
            for (const Run& r : runs) {
                const T* src = s + r.src;
                T* d = dst + r.dst + k * R;
                for (i64 t = 0; t < r.len; ++t) d[t] = src[t];
            }
            for (i64 t = 0; t < tail; ++t) zero_at[k * R + t] = T(0);
        }
        return dst;
    }
};

// Element (o, j) with the reduction j = n*P + p running over the pixels of a
// batch of N images: base[n*img + o*so + p] (NCHW activations, outer =
// channel, for backward-filter); j counts from j0.  Each panel row is copied
// as contiguous runs, one per image its K block touches; with a transposing
// packer (pack_t, the ISA's; may be null) a panel's rows are transposed run
// by run in registers.
template <class T>
struct BatchPixelPack {
    const T* base;
    i64 so, P, img, j0;
    void (*pack_t)(const T* s, i64 ls, i64 rows, i64 n, i64 R, T* d);

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        T* const out = dst;
        for (i64 q0 = 0; q0 < no; q0 += R) {
            const i64 rows = std::min(R, no - q0);
            if (pack_t) {
                const T* src = base + (o0 + q0) * so;
                for (i64 k = 0; k < kc;) {
                    const i64 j = j0 + k0 + k, n = j / P, p = j % P;
                    const i64 len = std::min(kc - k, P - p);
                    pack_t(src + n * img + p, so, rows, len, R, dst + k * R);
                    k += len;
                }
                dst += R * kc;
                continue;
            }
            for (i64 r = 0; r < rows; ++r) {
                const T* src = base + (o0 + q0 + r) * so;
                for (i64 k = 0; k < kc;) {
                    const i64 j = j0 + k0 + k, n = j / P, p = j % P;
                    const i64 len = std::min(kc - k, P - p);
                    const T* s = src + n * img + p;
                    T* d = dst + k * R + r;
                    for (i64 t = 0; t < len; ++t) d[t * R] = s[t];
                    k += len;
                }
            }
            for (i64 r = rows; r < R; ++r)
                for (i64 k = 0; k < kc; ++k) dst[k * R + r] = T(0);
            dst += R * kc;
        }
        return out;
    }
};

// An operand packed once per call (weights): every work item and thread then
// reads the same panels instead of re-packing them.  The layout follows the
// driver's blocking: block k0 (of KC) starts at k0 * Opad, panel o0/R of it at
// o0 * kc.  Either packed whole by the constructor, or laid out first and
// packed by pack_outer over disjoint ranges (concurrently, by work items).
template <class T>
class PrePacked {
public:
    PrePacked(i64 O, i64 K, i64 R, i64 KC) : opad_(ceil_div(O, R) * R), K_(K), R_(R), KC_(KC) {
        data_ = buf_.get(static_cast<std::size_t>(std::max<i64>(1, opad_ * K)));
    }
    template <class Packer>
    PrePacked(const Packer& src, i64 O, i64 K, i64 R, i64 KC) : PrePacked(O, K, R, KC) {
        pack_outer(src, 0, O);
    }
    // Outer indices [o0, o1) of every K block; o0 a multiple of R.
    template <class Packer>
    void pack_outer(const Packer& src, i64 o0, i64 o1) {
        const i64 span = ceil_div(o1 - o0, R_) * R_;
        for (i64 k0 = 0; k0 < K_; k0 += KC_) {
            const i64 kc = std::min(KC_, K_ - k0);
            T* dst = data_ + k0 * opad_ + o0 * kc;
            const T* got = src.pack(o0, o1 - o0, k0, kc, R_, dst);
            if (got != dst) std::copy(got, got + span * kc, dst);
        }
    }
    const T* pack(i64 o0, i64, i64 k0, i64 kc, i64, T*) const {
        return data_ + k0 * opad_ + o0 * kc;
    }

private:
    AlignedBuffer<T> buf_;  // micro-kernels load B panels with aligned loads
    T* data_ = nullptr;
    i64 opad_ = 0, K_ = 0, R_ = 1, KC_ = 1;
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
// The R pixels of a panel are cut into row segments once; each tap then copies
// a clipped, contiguous (stride-1) run per segment and zero-fills the padding,
// instead of testing bounds element by element.
template <class T>
struct PatchPixelPack {
    Patch<T> P;

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        T* const out = dst;
        struct Seg { i64 ra, b0, len, r0; };
        Seg seg[kMaxPanel];
        const i64 step = P.sb * P.ws;
        for (i64 q0 = 0; q0 < no; q0 += R) {
            const i64 rows = std::min(R, no - q0);
            int nseg = 0;
            for (i64 r = 0; r < rows;) {
                const i64 p = P.p0 + o0 + q0 + r;
                const i64 a = p / P.GB, b = p % P.GB;
                const i64 len = std::min(rows - r, P.GB - b);
                seg[nseg++] = Seg{a * P.sa, b * P.sb, len, r};
                r += len;
            }
            i64 c, ti, tj;
            P.decode(k0, c, ti, tj);
            for (i64 k = 0; k < kc; ++k) {
                const T* s = P.src + c * P.cs;
                const i64 di = P.oi[ti], dj = P.oj[tj];
                T* d = dst + k * R;
                for (int sg = 0; sg < nseg; ++sg) {
                    const Seg& g = seg[sg];
                    T* dd = d + g.r0;
                    const i64 ih = g.ra + di;
                    if (!in_range(ih, P.H)) {
                        for (i64 t = 0; t < g.len; ++t) dd[t] = T(0);
                        continue;
                    }
                    // valid t: 0 <= iw0 + t*sb < W
                    const i64 iw0 = g.b0 + dj;
                    i64 lo = iw0 >= 0 ? 0 : ceil_div(-iw0, P.sb);
                    i64 hi = iw0 >= P.W ? 0 : ceil_div(P.W - iw0, P.sb);
                    lo = std::min(lo, g.len);
                    hi = std::max(lo, std::min(hi, g.len));
                    for (i64 t = 0; t < lo; ++t) dd[t] = T(0);
                    if (lo < hi) {
                        const T* row = s + ih * P.hs + (iw0 + lo * P.sb) * P.ws;
                        T* dv = dd + lo;
                        const i64 n = hi - lo;
                        if (step == 1)
                            for (i64 t = 0; t < n; ++t) dv[t] = row[t];
                        else
                            for (i64 t = 0; t < n; ++t) dv[t] = row[t * step];
                    }
                    for (i64 t = hi; t < g.len; ++t) dd[t] = T(0);
                }
                for (i64 r = rows; r < R; ++r) d[r] = T(0);
                P.advance(c, ti, tj);
            }
            dst += R * kc;
        }
        return out;
    }
};

// outer = tap, k = pixel (backward-filter: the reduction runs over pixels).
template <class T>
struct PatchTapPack {
    Patch<T> P;

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        T* const out = dst;
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
        return out;
    }
};

// outer = grid position q, k = tap, over a zero-padded "slab" of the source
// whose rows are Wp wide: tap t of grid position q is slab[toff[t] + q], so a
// panel is NR contiguous elements per tap (a straight copy).  The grid carries
// Wp - GB junk columns per row that are computed and then dropped; that costs
// a few percent and removes every bounds test from packing.
template <class T>
struct ShiftPack {
    const T* slab;
    const i64* toff;

    const T* pack(i64 o0, i64 no, i64 k0, i64 kc, i64 R, T* dst) const {
        T* const out = dst;
        for (i64 q0 = 0; q0 < no; q0 += R) {
            const i64 rows = std::min(R, no - q0);
            const T* base = slab + o0 + q0;
            if (rows == R) {
                for (i64 k = 0; k < kc; ++k) {
                    const T* s = base + toff[k0 + k];
                    T* d = dst + k * R;
                    for (i64 r = 0; r < R; ++r) d[r] = s[r];
                }
            } else {
                for (i64 k = 0; k < kc; ++k) {
                    const T* s = base + toff[k0 + k];
                    T* d = dst + k * R;
                    for (i64 r = 0; r < rows; ++r) d[r] = s[r];
                    for (i64 r = rows; r < R; ++r) d[r] = T(0);
                }
            }
            dst += R * kc;
        }
        return out;
    }
};

}  // namespace aek
