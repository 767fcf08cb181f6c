// Conv kernels.  Every direction is an implicit GEMM over a "slab" (a
// zero-padded, phase-split copy of the source window, see build_slab) run by
// direct SIMD kernels that read the slab in place: shift kernels for forward
// and backward-input, dot-product tiles for backward-filter.  Pointwise convs
// and kernels wider than kMaxSlabTaps use the packed GEMM (gemm.hpp) with
// patch packers (pack.hpp): kernels per image, pointwise convs as one GEMM
// over the batch (conv_pointwise.hpp).  Strided backward-input is phase-split.
#pragma once

#include <type_traits>
#include <vector>

#include "aekernels/common.hpp"
#include "aekernels/conv_direct.hpp"
#include "aekernels/conv_pointwise.hpp"
#include "aekernels/gemm.hpp"
#include "aekernels/geometry.hpp"
#include "aekernels/pack.hpp"

namespace aek {

// Pixel tile per work item: whole images when batch x groups already gives
// every thread several items, otherwise split the pixels (rounded to the
// register tile so that only the last tile has a ragged edge).
inline i64 pick_pixel_tile(i64 P, i64 outer_items, i64 R, int nt) {
    const i64 want = 4 * static_cast<i64>(nt);
    i64 tiles = outer_items >= want ? 1 : ceil_div(want, outer_items);
    tiles = std::max<i64>(1, std::min(tiles, ceil_div(P, 4 * R)));
    return ceil_div(ceil_div(P, tiles), R) * R;
}

// Rows of the output grid per work item for slab_conv: whole grids when
// the batch already feeds every thread, and a bounded GEMM output block.
// The slab (Cs planes of rows x Wp) is kept to ~1 MB so that it stays in L2
// while the kernel sweeps it once per block of output channels.
inline i64 pick_row_tile(i64 GA, i64 Wp, i64 M, i64 outer_items, int nt, i64 slab_bytes_per_row) {
    const i64 want = 4 * static_cast<i64>(nt);
    i64 tiles = outer_items >= want ? 1 : ceil_div(want, outer_items);
    tiles = std::max<i64>(1, std::min(tiles, GA));
    i64 rows = ceil_div(GA, tiles);
    const i64 cap = std::max<i64>(1, (i64(1) << 18) / std::max<i64>(1, M * Wp));
    const i64 cap2 = std::max<i64>(8, (i64(1) << 20) / std::max<i64>(1, slab_bytes_per_row));
    return std::max<i64>(1, std::min(rows, std::min(cap, cap2)));
}

// A zero-padded copy ("slab") of the source window of grid rows [a0, a0+rows):
// tap t of grid position q = a*Wp + b then sits at slab[toff[t] + q], so
// pixel panels become straight copies or direct vector loads.  A stride
// (sh, sw) is folded in by splitting the source into its sh x sw phase planes
// (space-to-depth): tap offset o = sh*o' + p reads phase plane p at row a + o',
// so every conv becomes a stride-1 correlation over the planes.  `extra` zeros
// follow the planes (kernels that round the grid up read into them).

// One image (one group's channels) of a source tensor in either layout.
template <class T>
struct Src {
    const T* p;
    i64 C, H, W;     // channels, rows, columns
    i64 cs, hs, ws;  // element strides: NCHW (H*W, W, 1), NHWC (1, W*Ctot, Ctot)
};

template <class T>
Src<T> image_src(const T* base, i64 n, i64 c0, i64 C, i64 Ctot, i64 H, i64 W, bool nhwc) {
    if (!nhwc) return Src<T>{base + (n * Ctot + c0) * H * W, C, H, W, H * W, W, 1};
    return Src<T>{base + n * H * W * Ctot + c0, C, H, W, 1, W * Ctot, Ctot};
}

template <class T>
struct Slab {
    T* data;
    i64 Wp, plane, size, Q;  // Q = rows * Wp grid positions (Wp - GB junk columns per row)
};

constexpr i64 kMaxSlabTaps = 64;

inline i64 slab_width(i64 GB, const i64* oj, i64 ntj, i64 sw) {
    i64 lo = floor_div(oj[0], sw), hi = lo;
    for (i64 j = 0; j < ntj; ++j) {
        lo = std::min(lo, floor_div(oj[j], sw));
        hi = std::max(hi, floor_div(oj[j], sw));
    }
    return GB + hi - lo;
}

template <class T>
Slab<T> build_slab(const Src<T>& src, i64 sh, i64 sw, i64 a0, i64 rows, i64 GB,
                   const i64* oi, i64 nti, const i64* oj, i64 ntj, i64 extra, Workspace<T>& ws,
                   T* out = nullptr) {
    // per tap: phase (p) and offset in phase-plane rows (o')
    i64 pi[kMaxSlabTaps], ii[kMaxSlabTaps], qj[kMaxSlabTaps], jj[kMaxSlabTaps];
    i64 pset[kMaxSlabTaps], qset[kMaxSlabTaps];
    i64 np = 0, nq = 0;
    auto index_of = [](i64* set, i64& n, i64 v) {
        for (i64 k = 0; k < n; ++k)
            if (set[k] == v) return k;
        set[n] = v;
        return n++;
    };
    if (nti > kMaxSlabTaps || ntj > kMaxSlabTaps)  // callers route wider kernels elsewhere
        throw std::logic_error("build_slab: kernel wider than kMaxSlabTaps");
    i64 mini = 0, maxi = 0, minj = 0, maxj = 0;
    for (i64 t = 0; t < nti; ++t) {
        ii[t] = floor_div(oi[t], sh);
        pi[t] = index_of(pset, np, oi[t] - ii[t] * sh);
        mini = t == 0 ? ii[t] : std::min(mini, ii[t]);
        maxi = t == 0 ? ii[t] : std::max(maxi, ii[t]);
    }
    for (i64 t = 0; t < ntj; ++t) {
        jj[t] = floor_div(oj[t], sw);
        qj[t] = index_of(qset, nq, oj[t] - jj[t] * sw);
        minj = t == 0 ? jj[t] : std::min(minj, jj[t]);
        maxj = t == 0 ? jj[t] : std::max(maxj, jj[t]);
    }
    const i64 Cs = src.C, Hs = src.H, Ws = src.W;
    const i64 Wp = GB + maxj - minj;
    const i64 SR = rows + (maxi - mini) + 1;  // +1: junk columns of the last row read past it
    const i64 plane = SR * Wp;
    const i64 nplanes = Cs * np * nq;
    T* slab = out ? out : ws.slab.get(static_cast<std::size_t>(nplanes * plane + extra));
    zero_short(slab + nplanes * plane, extra);
    for (i64 pk = 0; pk < np; ++pk)
        for (i64 qk = 0; qk < nq; ++qk) {
            const i64 p = pset[pk], q = qset[qk];
            // columns col with 0 <= sw*(minj + col) + q < Ws
            // (0 <= q < sw, so the left edge only depends on minj)
            const i64 lo = std::min(Wp, std::max<i64>(0, -minj));
            const i64 hi = std::max(lo, std::min(Wp, floor_div(Ws - 1 - q, sw) + 1 - minj));
            auto plane_of = [&](i64 c) { return slab + ((c * np + pk) * nq + qk) * plane; };
            for (i64 r = 0; r < SR; ++r) {
                const i64 ih = sh * (a0 + mini + r) + p;
                if (!in_range(ih, Hs)) {
                    for (i64 c = 0; c < Cs; ++c) zero_short(plane_of(c) + r * Wp, Wp);
                    continue;
                }
                for (i64 c = 0; c < Cs; ++c) {
                    T* d = plane_of(c) + r * Wp;
                    zero_short(d, lo);
                    zero_short(d + hi, Wp - hi);
                }
                const T* srow = src.p + ih * src.hs;
                const i64 step = sw * src.ws;
                if (src.cs == 1 && Cs > 1) {
                    // channel-last source: a transpose in blocks of kCols pixels (their
                    // channels stay in L1), so that every plane receives runs of
                    // contiguous stores instead of one element per pixel in turn
                    constexpr i64 kCols = 16;
                    const T* s0 = srow + (sw * (minj + lo) + q) * src.ws;
                    T* d0 = slab + ((pk * nq + qk) * plane) + r * Wp;
                    const i64 cstep = np * nq * plane;
                    for (i64 c0 = lo; c0 < hi; c0 += kCols) {
                        const i64 nb = std::min(kCols, hi - c0);
                        const T* sp = s0 + (c0 - lo) * step;
                        for (i64 c = 0; c < Cs; ++c) {
                            T* d = d0 + c * cstep + c0;
                            for (i64 b = 0; b < nb; ++b) d[b] = sp[b * step + c];
                        }
                    }
                    continue;
                }
                for (i64 c = 0; c < Cs; ++c) {
                    T* d = plane_of(c) + r * Wp;
                    const T* sc = srow + c * src.cs;
                    if (step == 1) {
                        copy_short(sc + (minj + lo) + q, hi - lo, d + lo);
                    } else {
                        const T* s0 = sc + (sw * (minj + lo) + q) * src.ws;
                        for (i64 col = lo; col < hi; ++col) d[col] = s0[(col - lo) * step];
                    }
                }
            }
        }
    const i64 ntaps = Cs * nti * ntj;
    ws.toff.resize(static_cast<std::size_t>(ntaps));
    for (i64 c = 0, t = 0; c < Cs; ++c)
        for (i64 ti = 0; ti < nti; ++ti)
            for (i64 tj = 0; tj < ntj; ++tj, ++t)
                ws.toff[t] = ((c * np + pi[ti]) * nq + qj[tj]) * plane + (ii[ti] - mini) * Wp +
                             (jj[tj] - minj);
    return Slab<T>{slab, Wp, plane, nplanes * plane, rows * Wp};
}

// NCHW correlation over grid rows [a0, a1) x columns [0, GB):
//   out(m, a, b) = sum_{c,ti,tj} W[m, (c,ti,tj)] * src[c, sh*a + oi[ti], sw*b + oj[tj]]
// (src outside Hs x Ws is zero); write(cb, ldq, Wp, a0, rows) receives the
// M x rows x GB block (see write_block).  The direct shift kernel reads the
// slab in place (no packing); ISA tables whose shift kernel is too narrow for
// large M (generic) use the packed GEMM with ShiftPack panels instead.
template <class T, class Writer>
void slab_conv(const UKernel<T>& uk, const PrePacked<T>& wpk, const T* wraw, i64 ldw, i64 M,
               const Src<T>& src, i64 sh, i64 sw, i64 a0, i64 a1, i64 GB, const i64* oi, i64 nti,
               const i64* oj, i64 ntj, Workspace<T>& ws, Writer&& write) {
    const i64 rows = a1 - a0;
    const ShiftKernel<T>& sk = shift_kernel<T>();
    const bool direct = M <= sk.max_m;
    // Q is only known after the slab geometry; the largest pad is sk.q - 1.
    const Slab<T> sl = build_slab(src, sh, sw, a0, rows, GB, oi, nti, oj, ntj,
                                  direct ? sk.q : 0, ws);
    const i64 Q = sl.Q, Wp = sl.Wp;
    const i64 Qpad = direct ? ceil_div(Q, sk.q) * sk.q : Q;
    const i64 ntaps = src.C * nti * ntj;
    T* cbuf = ws.cbuf.get(static_cast<std::size_t>(M * Qpad));
    if (direct)
        sk.fn(M, ntaps, wraw, ldw, sl.data, ws.toff.data(), Qpad, cbuf, Qpad);
    else
        gemm_packed(uk, M, Q, ntaps, wpk, ShiftPack<T>{sl.data, ws.toff.data()},
                    CView<T>{cbuf, Qpad}, false, ws);
    write(static_cast<const T*>(cbuf), Qpad, Wp, a0, rows);
}

// Writers for slab_conv: out(m, a, b) = cb[m*ldq + (a - a0)*Wp + b] goes to
// base + m*ms + a*as + b*bs (+ bias[m]).  Channel-last outputs (ms == 1) are
// written pixel by pixel so that the stores stay contiguous.
template <class T>
void write_block(const T* cb, i64 ldq, i64 Wp, i64 a0, i64 rows, i64 M, i64 GB, T* base, i64 ms,
                 i64 as, i64 bs, const T* bias) {
    if (ms == 1) {
        for (i64 a = 0; a < rows; ++a)
            for (i64 b = 0; b < GB; ++b) {
                T* d = base + (a0 + a) * as + b * bs;
                const T* s = cb + a * Wp + b;
                if (bias)
                    for (i64 m = 0; m < M; ++m) d[m] = s[m * ldq] + bias[m];
                else
                    for (i64 m = 0; m < M; ++m) d[m] = s[m * ldq];
            }
        return;
    }
    for (i64 m = 0; m < M; ++m)
        for (i64 a = 0; a < rows; ++a) {
            T* d = base + m * ms + (a0 + a) * as;
            const T* s = cb + m * ldq + a * Wp;
            const T bm = bias ? bias[m] : T(0);
            if (bs == 1)
                for (i64 b = 0; b < GB; ++b) d[b] = s[b] + bm;
            else
                for (i64 b = 0; b < GB; ++b) d[b * bs] = s[b] + bm;
        }
}

// ---------------------------------------------------------------------------
// Channel-vector path (cl_rows): vectors along the output channels, so no
// junk columns are computed and channel-last outputs are stored as whole
// vectors.  Used for stride-1 correlations whose channel counts fill vectors.

// Whether the channel-vector kernel suits C source and M output channels:
// both are rounded up to the vector width, so require little padding.
template <class T>
bool use_cl_path(i64 C, i64 M) {
    const ClKernel<T>& ck = cl_kernel<T>();
    if (!ck.fn) return false;
    auto waste_ok = [&](i64 n) { return n >= ck.cb && 4 * ceil_div(n, ck.cb) * ck.cb <= 5 * n; };
    return waste_ok(C) && waste_ok(M);
}

// Weights of a stride-1 correlation given as (M, taps) rows with taps
// (c, ti, tj), packed for cl_rows: output-channel blocks of nvw (the last one
// as wide as its vectors), reduction order (ti, channel block, tj, lane),
// channels past C and outputs past M zero.
template <class T>
std::vector<T> pack_cl_weights(const ClKernel<T>& ck, const T* wrow, i64 ldw, i64 M, i64 C,
                               i64 nti, i64 ntj) {
    const i64 cb = ck.cb, ncb = ceil_div(C, cb), Kt = nti * ncb * ntj * cb;
    const i64 Mpad = ceil_div(M, cb) * cb;
    std::vector<T> out(static_cast<std::size_t>(Mpad * Kt), T(0));
    for (i64 m0 = 0; m0 < Mpad; m0 += ck.nvw) {
        const i64 bw = std::min(ck.nvw, Mpad - m0);
        T* blk = out.data() + m0 * Kt;
        for (i64 ti = 0; ti < nti; ++ti)
            for (i64 cbk = 0; cbk < ncb; ++cbk)
                for (i64 tj = 0; tj < ntj; ++tj)
                    for (i64 l = 0; l < cb; ++l) {
                        const i64 c = cbk * cb + l;
                        if (c >= C) continue;
                        T* d = blk + (((ti * ncb + cbk) * ntj + tj) * cb + l) * bw;
                        const i64 mend = std::min(bw, M - m0);
                        for (i64 mm = 0; mm < mend; ++mm)
                            d[mm] = wrow[(m0 + mm) * ldw + (c * nti + ti) * ntj + tj];
                    }
    }
    return out;
}

// Channel-blocked slab of grid rows [a0, a0 + rows) of a stride-1
// correlation (layout: see cl_rows in simd_templates.hpp): row r holds source
// row a0 + min(oi) + r, column col source column min(oj) + col, zero outside
// the image and in the channels past C.
template <class T>
struct ClSlab {
    const T* data;
    i64 rs, cbs, ncb;
    i64 ls = 1;  // between lanes: 1, or the plane of a planar slab (cl_tile kPlanar)
    i64 ioff[kMaxSlabTaps], joff[kMaxSlabTaps];
};

// The source window a slab holds: taps (oi, oj) over `rows` grid rows and GB grid columns
// start at source row (grid row + mini) and column minj; the window is SR x Wp.
struct SlabWindow {
    i64 mini, minj, SR, Wp;
};

inline SlabWindow slab_window(const char* who, i64 rows, i64 GB, const i64* oi, i64 nti,
                              const i64* oj, i64 ntj) {
    if (nti > kMaxSlabTaps || ntj > kMaxSlabTaps)
        throw std::logic_error(std::string(who) + ": kernel wider than kMaxSlabTaps");
    const i64 mini = *std::min_element(oi, oi + nti), maxi = *std::max_element(oi, oi + nti);
    const i64 minj = *std::min_element(oj, oj + ntj), maxj = *std::max_element(oj, oj + ntj);
    return {mini, minj, rows + maxi - mini, GB + maxj - minj};
}

// Tap offsets into a slab whose rows are `row_step` and columns `col_step` elements apart.
template <class T>
void set_tap_offsets(ClSlab<T>& sl, const SlabWindow& win, const i64* oi, i64 nti, i64 row_step,
                     const i64* oj, i64 ntj, i64 col_step) {
    for (i64 t = 0; t < nti; ++t) sl.ioff[t] = (oi[t] - win.mini) * row_step;
    for (i64 t = 0; t < ntj; ++t) sl.joff[t] = (oj[t] - win.minj) * col_step;
}

template <class T>
ClSlab<T> build_cl_slab(const Src<T>& src, i64 cb, i64 a0, i64 rows, i64 GB, const i64* oi,
                        i64 nti, const i64* oj, i64 ntj, Workspace<T>& ws) {
    const auto tr = cl_kernel<T>().tr;
    const SlabWindow win = slab_window("build_cl_slab", rows, GB, oi, nti, oj, ntj);
    const i64 mini = win.mini, minj = win.minj, Wp = win.Wp, SR = win.SR, C = src.C;
    ClSlab<T> sl;
    sl.ncb = ceil_div(C, cb);
    sl.cbs = Wp * cb;
    sl.rs = sl.ncb * sl.cbs;
    set_tap_offsets(sl, win, oi, nti, sl.rs, oj, ntj, cb);
    T* slab = ws.slab.get(static_cast<std::size_t>(std::max<i64>(1, SR * sl.rs)));
    sl.data = slab;
    // valid columns: 0 <= minj + col < W
    const i64 lo = std::min(Wp, std::max<i64>(0, -minj));
    const i64 hi = std::max(lo, std::min(Wp, src.W - minj));
    for (i64 r = 0; r < SR; ++r) {
        const i64 ih = a0 + mini + r;
        T* drow = slab + r * sl.rs;
        if (!in_range(ih, src.H)) {
            zero_short(drow, sl.rs);
            continue;
        }
        const T* srow = src.p + ih * src.hs + (minj + lo) * src.ws;
        for (i64 k = 0; k < sl.ncb; ++k) {
            T* d = drow + k * sl.cbs;
            const i64 nc = std::min(cb, C - k * cb);
            zero_short(d, lo * cb);
            zero_short(d + hi * cb, (Wp - hi) * cb);
            if (src.cs == 1) {  // channel-last: each pixel's block is contiguous
                const T* sk = srow + k * cb;
                T* dk = d + lo * cb;
                // Full blocks only: a part-filled block (C % cb != 0) must also zero
                // its lanes past C, or stale workspace data (NaN, inf) times their
                // zero weights poisons every output.
                const i64 block_bytes = nc == cb ? nc * static_cast<i64>(sizeof(T)) : 0;
                if (block_bytes == 64) {
                    // one cache line per pixel: a fixed-size copy the compiler inlines
                    for (i64 col = 0; col < hi - lo; ++col)
                        std::memcpy(dk + col * cb, sk + col * src.ws, 64);
                } else if (block_bytes == 32) {
                    for (i64 col = 0; col < hi - lo; ++col)
                        std::memcpy(dk + col * cb, sk + col * src.ws, 32);
                } else {
                    for (i64 col = 0; col < hi - lo; ++col) {
                        for (i64 c = 0; c < nc; ++c) dk[col * cb + c] = sk[col * src.ws + c];
                        for (i64 c = nc; c < cb; ++c) dk[col * cb + c] = T(0);
                    }
                }
                continue;
            }
            if (tr && src.ws == 1) {
                tr(srow + k * cb * src.cs, src.cs, nc, hi - lo, d + lo * cb);
                continue;
            }
            for (i64 c = 0; c < nc; ++c) {
                const T* sc = srow + (k * cb + c) * src.cs;
                T* dc = d + lo * cb + c;
                for (i64 col = 0; col < hi - lo; ++col) dc[col * cb] = sc[col * src.ws];
            }
            for (i64 c = nc; c < cb; ++c)
                for (i64 col = lo; col < hi; ++col) d[col * cb + c] = T(0);
        }
    }
    return sl;
}

// The same window as a planar slab for cl_tile<kPlanar>: one zero-padded
// plane of SR x Wp per channel (row r = source row a0 + min(oi) + r, column
// col = source column min(oj) + col), planes of the channels past C zero.
// For a channel-major source this is a row copy where the blocked slab
// needs a W x W transpose per W columns.
template <class T>
ClSlab<T> build_cl_planar_slab(const Src<T>& src, i64 cb, i64 a0, i64 rows, i64 GB, const i64* oi,
                               i64 nti, const i64* oj, i64 ntj, Workspace<T>& ws) {
    const SlabWindow win = slab_window("build_cl_planar_slab", rows, GB, oi, nti, oj, ntj);
    const i64 mini = win.mini, minj = win.minj, Wp = win.Wp, SR = win.SR, C = src.C;
    ClSlab<T> sl;
    sl.ncb = ceil_div(C, cb);
    sl.rs = Wp;
    sl.ls = SR * Wp;
    sl.cbs = cb * sl.ls;
    set_tap_offsets(sl, win, oi, nti, Wp, oj, ntj, 1);
    const i64 nch = sl.ncb * cb;
    T* slab = ws.slab.get(static_cast<std::size_t>(std::max<i64>(1, nch * sl.ls)));
    sl.data = slab;
    // valid rows 0 <= a0 + mini + r < H, valid columns 0 <= minj + col < W
    const i64 rlo = std::min(SR, std::max<i64>(0, -(a0 + mini)));
    const i64 rhi = std::max(rlo, std::min(SR, src.H - (a0 + mini)));
    const i64 lo = std::min(Wp, std::max<i64>(0, -minj));
    const i64 hi = std::max(lo, std::min(Wp, src.W - minj));
    const auto pr = cl_kernel<T>().pr;
    for (i64 c = 0; c < nch; ++c) {
        T* d = slab + c * sl.ls;
        if (c >= C) {
            zero_short(d, sl.ls);
            continue;
        }
        zero_short(d, rlo * Wp);
        zero_short(d + rhi * Wp, (SR - rhi) * Wp);
        const T* sc = src.p + c * src.cs + (a0 + mini + rlo) * src.hs + minj + lo;
        if (pr) {
            pr(sc, src.hs, rhi - rlo, lo, hi - lo, Wp, d + rlo * Wp);
            continue;
        }
        for (i64 r = rlo; r < rhi; ++r) {
            T* dr = d + r * Wp;
            zero_short(dr, lo);
            copy_short(sc + (r - rlo) * src.hs, hi - lo, dr + lo);
            zero_short(dr + hi, Wp - hi);
        }
    }
    return sl;
}

// out(m, a, b) = bias[m] + sum_{c, ti, tj} w(m, (c, ti, tj)) * src(c, a + oi[ti], b + oj[tj])
// for grid rows a in [a0, a1), b < GB, m < M, written to out0 + (a - a0)*as + b*ps + m*ms.
// Channel-major sources whose slab fits in L1 go through a planar slab (no
// transposes); larger slabs stay channel-blocked, whose tiles read consecutive
// lines (a planar tile reads one line per channel plane, ~4-7% slower once the
// slab lives in L2: resnet / vgg 3x3 layers).
template <class T>
void cl_conv(const std::vector<T>& wpk, i64 M, const Src<T>& src, i64 a0, i64 a1, i64 GB,
             const i64* oi, i64 nti, const i64* oj, i64 ntj, Workspace<T>& ws, T* out0, i64 as,
             i64 ps, i64 ms, const T* bias) {
    const ClKernel<T>& ck = cl_kernel<T>();
    const i64 slab_bytes = ceil_div(src.C, ck.cb) * ck.cb *
                           (a1 - a0 + *std::max_element(oi, oi + nti) -
                            *std::min_element(oi, oi + nti)) *
                           (GB + *std::max_element(oj, oj + ntj) -
                            *std::min_element(oj, oj + ntj)) *
                           static_cast<i64>(sizeof(T));
    const bool planar = src.ws == 1 && src.cs != 1 && slab_bytes <= (i64(32) << 10);
    const ClSlab<T> sl =
        planar ? build_cl_planar_slab(src, ck.cb, a0, a1 - a0, GB, oi, nti, oj, ntj, ws)
               : build_cl_slab(src, ck.cb, a0, a1 - a0, GB, oi, nti, oj, ntj, ws);
    ck.fn(M, a1 - a0, GB, nti, sl.ioff, ntj, sl.joff, sl.ncb, sl.cbs, sl.ls, sl.data, sl.rs,
          wpk.data(), out0, as, ps, ms, bias);
}

// ---------------------------------------------------------------------------
// Winograd F(2x2, 3x3) (Lavin & Gray 2015) for 3x3 stride-1 correlations:
// 16 multiplies per 2 x 2 output tile and channel pair instead of 36.  Per
// work item (one image, a range of tile rows): the channel-blocked slab of
// the item's window (build_cl_slab, zero fill does all padding), the input
// transform into 16 planes, one 1x1 channel-vector conv per plane over the
// item's tiles (cl_rows with the transformed weights), the output transform
// with edge tiles clipped.  Items write disjoint outputs: no reductions.

template <class T>
const WinoKernel<T>* wino_kernel() { return nullptr; }  // fp64 keeps the direct paths
template <>
inline const WinoKernel<float>* wino_kernel<float>() {
    const WinoKernel<float>& wk = isa_table().wino_f32;
    return wk.in ? &wk : nullptr;
}

// Whether a 3x3 stride-1 dilation-1 correlation from C to M channels
// (groups 1) with OH x OW outputs per image runs on Winograd: enabled
// (winograd_enabled, common.hpp), both channel
// counts fill the vectors (use_cl_path) and stay within the range measured,
// and the image has enough outputs to amortise the transforms (1 x 1 and
// 2 x 2 outputs of 32 channels: 1.3-2.8x slower than the direct kernel, 3 x 3
// already 1.25x faster).
constexpr i64 kWinoMaxChannels = 256;
constexpr i64 kWinoMinOutputs = 9;
template <class T>
bool use_winograd(i64 C, i64 M, i64 OH, i64 OW) {
    return winograd_enabled().load(std::memory_order_relaxed) && wino_kernel<T>() &&
           use_cl_path<T>(C, M) && C <= kWinoMaxChannels &&
           M <= kWinoMaxChannels && OH * OW >= kWinoMinOutputs;
}

inline bool is_3x3_stride1(const ConvGeom& g) {
    return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 &&
           g.dw == 1;
}

// U = G g G^T of each 3x3 kernel g3[(m*C + c)*9 + 3i + j], rounded once from
// double, as 16 planes of M x C, each packed for cl_rows as a 1x1 weight.
template <class T>
std::vector<std::vector<T>> wino_weights(const T* g3, i64 M, i64 C) {
    std::vector<T> planes(static_cast<std::size_t>(16 * M * C));
    for (i64 mc = 0; mc < M * C; ++mc) {
        const T* g = g3 + mc * 9;
        double t[4][3], u[4][4];
        for (int j = 0; j < 3; ++j) {  // G g: rows (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2)
            const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
            t[0][j] = g0;
            t[1][j] = 0.5 * (g0 + g1 + g2);
            t[2][j] = 0.5 * (g0 - g1 + g2);
            t[3][j] = g2;
        }
        for (int i = 0; i < 4; ++i) {  // ... G^T: the same along each row
            u[i][0] = t[i][0];
            u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
            u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
            u[i][3] = t[i][2];
        }
        for (int p = 0; p < 16; ++p) planes[p * M * C + mc] = static_cast<T>(u[p / 4][p % 4]);
    }
    std::vector<std::vector<T>> packed;
    for (int p = 0; p < 16; ++p)
        packed.push_back(
            pack_cl_weights(cl_kernel<T>(), planes.data() + p * M * C, C, M, C, 1, 1));
    return packed;
}

// out(n, m, oh, ow) = bias[m] + sum_{c, i, j} g3[((m*C + c)*3 + i)*3 + j]
//                                          * src(n, c, oh + i - pt, ow + j - pl)
// for an (N, C, H, W) / (N, H, W, C) source and an (N, M, OH, OW) / (N, OH, OW, M)
// output (src zero outside the image; pt, pl may be negative).
template <class T>
void winograd_conv(i64 N, const T* src, i64 C, i64 H, i64 W, const T* g3, i64 M, i64 OH,
                   i64 OW, i64 pt, i64 pl, bool nhwc, const T* bias, T* out, int nt) {
    const WinoKernel<T>& wk = *wino_kernel<T>();
    const ClKernel<T>& ck = cl_kernel<T>();
    const std::vector<std::vector<T>> U = wino_weights(g3, M, C);
    const i64 cb = ck.cb, Cpad = ceil_div(C, cb) * cb, Mpad = ceil_div(M, cb) * cb;
    const i64 TYt = ceil_div(OH, 2), TX = ceil_div(OW, 2);
    // An item is a range of tile rows of one image whose transformed input and
    // products (16 planes each) stay in L2 (smaller items measured slower:
    // whole 14 x 14 images beat thirds of them by ~8%).
    const i64 tile_bytes = 16 * (Cpad + Mpad) * static_cast<i64>(sizeof(T));
    const i64 cap = std::max<i64>(1, (i64(512) << 10) / (tile_bytes * TX));
    const i64 want = 4 * static_cast<i64>(nt);
    const i64 split = N >= want ? 1 : ceil_div(want, N);
    const i64 tyi = std::max<i64>(1, std::min(cap, ceil_div(TYt, split)));
    const i64 nty = ceil_div(TYt, tyi);
    const i64 oi[3] = {-pt, 1 - pt, 2 - pt}, oj[3] = {-pl, 1 - pl, 2 - pl};
    const i64 zero_off[1] = {0};
    parallel_items(N * nty, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 n = it / nty, ty0 = (it % nty) * tyi, TY = std::min(tyi, TYt - ty0);
        const i64 ntiles = TY * TX;
        Workspace<T>& ws = thread_workspace<T>();
        const ClSlab<T> sl = build_cl_slab(image_src(src, n, 0, C, C, H, W, nhwc), cb, 2 * ty0,
                                           2 * TY, 2 * TX, oi, 3, oj, 3, ws);
        // v: plane, channel block, tile, lane; m: tile, plane, channel
        const i64 vcbs = ntiles * cb, vps = sl.ncb * vcbs;
        T* v = ws.a.get(static_cast<std::size_t>(16 * vps));
        T* m = ws.b.get(static_cast<std::size_t>(16 * ntiles * Mpad));
        T* buf = ws.tmp.get(static_cast<std::size_t>(4 * TY * TX * cb));
        wk.in(sl.data, sl.rs, sl.cbs, sl.ncb, TY, TX, v, vps, vcbs);
        for (int p = 0; p < 16; ++p)
            ck.fn(Mpad, 1, ntiles, 1, zero_off, 1, zero_off, sl.ncb, vcbs, 1, v + p * vps, 0,
                  U[p].data(), m + p * Mpad, 0, 16 * Mpad, 1, nullptr);
        const i64 oh0 = 2 * ty0;
        T* o = nhwc ? out + (n * OH + oh0) * OW * M : out + n * M * OH * OW + oh0 * OW;
        const i64 ms = nhwc ? 1 : OH * OW, hs = nhwc ? OW * M : OW, wst = nhwc ? M : 1;
        wk.out(m, Mpad / cb, M, TY, TX, OH - oh0, OW, bias, o, ms, hs, wst, buf);
    });
}

// Forward conv on Winograd: the weight as (K, C, 3, 3) kernels.
template <class T>
void winograd_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
    std::vector<T> g3;
    const T* k3 = w;
    if (g.nhwc) {  // HWIO -> (K, C, 3, 3)
        g3.resize(static_cast<std::size_t>(g.K * g.C * 9));
        for (i64 k = 0; k < g.K; ++k)
            for (i64 c = 0; c < g.C; ++c)
                for (i64 ij = 0; ij < 9; ++ij)
                    g3[(k * g.C + c) * 9 + ij] = w[(ij * g.C + c) * g.K + k];
        k3 = g3.data();
    }
    const int nt = threads_for_work(double(g.N) * g.OH * g.OW * g.K * g.C * 9);
    winograd_conv(g.N, x, g.C, g.H, g.W, k3, g.K, g.OH, g.OW, g.pt, g.pl, g.nhwc, bias, y, nt);
}

// Stride-1 backward-input on Winograd: a correlation of dY with the kernels
// flipped and their in/out channels swapped, padded by 2 - pt, 2 - pl.
template <class T>
void winograd_backward_input(const ConvGeom& g, const T* gy, const T* w, const T* bias, T* gx) {
    std::vector<T> g3(static_cast<std::size_t>(g.K * g.C * 9));
    for (i64 c = 0; c < g.C; ++c)
        for (i64 k = 0; k < g.K; ++k)
            for (i64 i = 0; i < 3; ++i)
                for (i64 j = 0; j < 3; ++j) {
                    const i64 fi = 2 - i, fj = 2 - j;
                    g3[((c * g.K + k) * 3 + i) * 3 + j] =
                        g.nhwc ? w[((fi * 3 + fj) * g.C + c) * g.K + k]
                               : w[((k * g.C + c) * 3 + fi) * 3 + fj];
                }
    const int nt = threads_for_work(double(g.N) * g.OH * g.OW * g.K * g.C * 9);
    winograd_conv(g.N, gy, g.K, g.OH, g.OW, g3.data(), g.C, g.H, g.W, 2 - g.pt, 2 - g.pl,
                  g.nhwc, bias, gx, nt);
}

// NCHW: x (N,C,H,W), w (K,C/g,kh,kw), bias (K) -> y (N,K,OH,OW)
// NHWC: x (N,H,W,C), w (kh,kw,C/g,K), bias (K) -> y (N,OH,OW,K)
template <class T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
    const UKernel<T>& uk = ukernel<T>();
    const i64 P = g.OH * g.OW, HW = g.H * g.W, Cg = g.Cg(), Kg = g.Kg(), G = g.groups;
    const i64 taps = g.taps();
    if (g.N == 0 || P == 0) return;
    if (is_flat_pointwise(g) && !(g.nhwc && direct_forward_kernels_for<T>(g)))
        return pointwise_forward(g, x, w, bias, y);  // conv_pointwise.hpp
    // few taps, or few NCHW output channels: conv_direct.hpp
    if (const DirectKernels<T>* dk = direct_forward_kernels_for<T>(g))
        return direct_conv_forward(*dk, g, x, w, bias, y);
    if (is_pointwise(g)) return pointwise_forward(g, x, w, bias, y);  // NCHW, H*W > 1
    if (is_3x3_stride1(g) && use_winograd<T>(g.C, g.K, g.OH, g.OW))
        return winograd_forward(g, x, w, bias, y);
    std::vector<i64> oi(g.kh), oj(g.kw);
    for (i64 i = 0; i < g.kh; ++i) oi[i] = i * g.dh - g.pt;
    for (i64 j = 0; j < g.kw; ++j) oj[j] = j * g.dw - g.pl;
    const int nt = threads_for_work(double(g.N) * P * g.K * Cg * g.kh * g.kw);
    const bool slab = g.kh <= kMaxSlabTaps && g.kw <= kMaxSlabTaps;
    const i64 wp_f = slab_width(g.OW, oj.data(), g.kw, g.sw);
    const i64 tile = slab ? pick_row_tile(g.OH, wp_f, Kg, g.N * G, nt,
                                          Cg * g.sh * g.sw * wp_f * static_cast<i64>(sizeof(T)))
                          : pick_pixel_tile(P, g.N * G, g.nhwc ? uk.mr : uk.nr, nt);
    const i64 ntile = slab ? ceil_div(g.OH, tile) : ceil_div(P, tile);
    // The slab kernels take the weight as (K, taps) rows with taps (c, i, j):
    // an HWIO weight is rearranged once (it is tiny next to the activations).
    std::vector<T> wre;
    const T* wo = w;
    if (slab && g.nhwc) {
        wre.resize(static_cast<std::size_t>(g.K * taps));
        for (i64 k = 0; k < g.K; ++k)
            for (i64 c = 0; c < Cg; ++c)
                for (i64 ij = 0; ij < g.kh * g.kw; ++ij)
                    wre[(k * Cg + c) * g.kh * g.kw + ij] = w[(ij * Cg + c) * g.K + k];
        wo = wre.data();
    }
    std::vector<PrePacked<T>> wp;
    wp.reserve(static_cast<std::size_t>(G));
    for (i64 gi = 0; gi < G; ++gi) {
        if (!g.nhwc || slab)
            wp.emplace_back(DensePack<T>{wo + gi * Kg * taps, taps, 1}, Kg, taps, uk.mr,
                            gemm_kc(uk, taps));
        else
            wp.emplace_back(DensePack<T>{w + gi * Kg, 1, g.K}, Kg, taps, uk.nr, gemm_kc(uk, taps));
    }

    // Stride-1 convs with enough channels: the channel-vector kernel.
    const bool cl = slab && g.sh == 1 && g.sw == 1 && use_cl_path<T>(Cg, Kg);
    std::vector<std::vector<T>> wcl;
    if (cl)
        for (i64 gi = 0; gi < G; ++gi)
            wcl.push_back(pack_cl_weights(cl_kernel<T>(), wo + gi * Kg * taps, taps, Kg, Cg, g.kh,
                                          g.kw));

    parallel_items(g.N * G * ntile, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 tix = it % ntile, gi = (it / ntile) % G, n = it / (ntile * G);
        Workspace<T>& ws = thread_workspace<T>();
        if (cl) {
            const i64 a0 = tix * tile, a1 = std::min(g.OH, a0 + tile);
            const i64 ms = g.nhwc ? 1 : P, as = g.nhwc ? g.OW * g.K : g.OW, ps = g.nhwc ? g.K : 1;
            T* yb = g.nhwc ? y + n * P * g.K + gi * Kg : y + (n * g.K + gi * Kg) * P;
            cl_conv(wcl[gi], Kg, image_src(x, n, gi * Cg, Cg, g.C, g.H, g.W, g.nhwc), a0, a1,
                    g.OW, oi.data(), g.kh, oj.data(), g.kw, ws, yb + a0 * as, as, ps, ms,
                    bias ? bias + gi * Kg : nullptr);
            return;
        }
        if (slab) {
            const i64 a0 = tix * tile, a1 = std::min(g.OH, a0 + tile);
            // element (m, a, b) of this item's output block
            const i64 ms = g.nhwc ? 1 : P, as = g.nhwc ? g.OW * g.K : g.OW, bs = g.nhwc ? g.K : 1;
            T* yb = g.nhwc ? y + n * P * g.K + gi * Kg : y + (n * g.K + gi * Kg) * P;
            slab_conv(uk, wp[gi], wo + gi * Kg * taps, taps, Kg,
                      image_src(x, n, gi * Cg, Cg, g.C, g.H, g.W, g.nhwc), g.sh, g.sw, a0, a1,
                      g.OW, oi.data(), g.kh, oj.data(), g.kw, ws,
                      [&](const T* cb, i64 ldq, i64 Wp, i64 ra, i64 rows) {
                          write_block(cb, ldq, Wp, ra, rows, Kg, g.OW, yb, ms, as, bs,
                                      bias ? bias + gi * Kg : nullptr);
                      });
            return;
        }
        const i64 p0 = tix * tile, np = std::min(tile, P - p0);
        if (!g.nhwc) {
            const T* xs = x + (n * g.C + gi * Cg) * HW;
            const PrePacked<T>& L = wp[gi];
            CView<T> cv{y + (n * g.K + gi * Kg) * P + p0, P};
            gemm_packed(uk, Kg, np, taps, L,
                        PatchPixelPack<T>{Patch<T>{xs, HW, g.W, 1, g.H, g.W, g.OW, p0, g.sh, g.sw,
                                                   oi.data(), g.kh, oj.data(), g.kw, Cg, false}},
                        cv, false, ws);
            if (bias)
                for (i64 k = 0; k < Kg; ++k) {
                    const T b = bias[gi * Kg + k];
                    T* row = cv.base + k * P;
                    for (i64 p = 0; p < np; ++p) row[p] += b;
                }
        } else {
            const T* xs = x + n * HW * g.C + gi * Cg;
            const PrePacked<T>& R = wp[gi];
            CView<T> cv{y + (n * P + p0) * g.K + gi * Kg, g.K};
            gemm_packed(uk, np, Kg, taps,
                        PatchPixelPack<T>{Patch<T>{xs, 1, g.W * g.C, g.C, g.H, g.W, g.OW, p0,
                                                   g.sh, g.sw, oi.data(), g.kh, oj.data(), g.kw,
                                                   Cg, true}},
                        R, cv, false, ws);
            if (bias)
                for (i64 p = 0; p < np; ++p) {
                    T* row = cv.base + p * g.K;
                    for (i64 k = 0; k < Kg; ++k) row[k] += bias[gi * Kg + k];
                }
        }
    });
}

// One phase (rh, rw) of strided backward-input: the input pixels with
// (h + pt) % sh == rh and (w + pl) % sw == rw only receive the kernel taps
// i with i*dh % sh == rh (same for j), so each phase is a dense stride-1
// correlation of dY with a sub-kernel: no multiplications by inserted zeros.
template <class T>
struct BwdPhase {
    i64 rh, rw;
    i64 qa0, qb0, GA, GB;        // grid (a, b) -> h = sh*(qa0+a) + rh - pt, w likewise
    std::vector<i64> ti, tj;     // kernel rows / cols of this phase
    std::vector<i64> oi, oj;     // source (dY) row offset per tap: oh = a + oi[t]
    std::vector<T> wt;           // per group: the sub-kernel as a GEMM operand
    std::vector<PrePacked<T>> wp;  // ... packed for the driver
    std::vector<std::vector<T>> wcl;  // ... packed for cl_rows (if that path runs)
    i64 ntaps = 0;
};

// NCHW: gy (N,K,OH,OW), w (K,C/g,kh,kw) -> gx (N,C,H,W)
// NHWC: gy (N,OH,OW,K), w (kh,kw,C/g,K) -> gx (N,H,W,C)
// bias (C) is added to gx only where a path can fuse it into its stores; such a
// path sets *bias_added (conv_transpose2d_forward adds it otherwise).
template <class T>
void conv2d_backward_input(const ConvGeom& g, const T* gy, const T* w, T* gx,
                           const T* bias = nullptr, bool* bias_added = nullptr) {
    const UKernel<T>& uk = ukernel<T>();
    const i64 P = g.OH * g.OW, HW = g.H * g.W, Cg = g.Cg(), Kg = g.Kg(), G = g.groups;
    if (g.N == 0 || HW == 0) return;
    const T* fused_bias = bias_added ? bias : nullptr;
    if (is_flat_pointwise(g)) {  // conv_pointwise.hpp
        if (bias_added) *bias_added = fused_bias != nullptr;
        return pointwise_backward_input(g, gy, w, fused_bias, gx);
    }
    // NCHW, few dX channels: gathered from the products of dY with the taps
    // (many dY channels), or a flipped forward (stride 1; conv_direct.hpp)
    if (direct_conv_backward_input_cols(g, gy, w, fused_bias, gx) ||
        direct_conv_backward_input(g, gy, w, fused_bias, gx)) {
        if (bias_added) *bias_added = fused_bias != nullptr;
        return;
    }
    if (is_pointwise(g)) {  // NCHW, H*W > 1
        if (bias_added) *bias_added = fused_bias != nullptr;
        return pointwise_backward_input(g, gy, w, fused_bias, gx);
    }
    if (is_3x3_stride1(g) && use_winograd<T>(g.K, g.C, g.H, g.W)) {
        if (bias && bias_added) *bias_added = true;
        return winograd_backward_input(g, gy, w, bias_added ? bias : nullptr, gx);
    }
    const int nt = threads_for_work(double(g.N) * P * g.K * Cg * g.kh * g.kw);

    // Slab kernels (any layout) take each phase's sub-kernel as (C, taps) rows
    // with taps (k, ti, tj); the NHWC GEMM fallback takes (taps, C) with (ti, tj, k).
    const bool slab = g.kh <= kMaxSlabTaps && g.kw <= kMaxSlabTaps;
    const bool rows_c = !g.nhwc || slab;
    const bool cl = slab && use_cl_path<T>(Kg, Cg);
    std::vector<BwdPhase<T>> phases;
    for (i64 rh = 0; rh < g.sh; ++rh)
        for (i64 rw = 0; rw < g.sw; ++rw) {
            BwdPhase<T> ph;
            ph.rh = rh;
            ph.rw = rw;
            ph.qa0 = -floor_div(rh - g.pt, g.sh);
            ph.qb0 = -floor_div(rw - g.pl, g.sw);
            ph.GA = floor_div(g.H - 1 + g.pt - rh, g.sh) - ph.qa0 + 1;
            ph.GB = floor_div(g.W - 1 + g.pl - rw, g.sw) - ph.qb0 + 1;
            if (ph.GA <= 0 || ph.GB <= 0) continue;
            for (i64 i = 0; i < g.kh; ++i)
                if ((i * g.dh) % g.sh == rh) {
                    ph.ti.push_back(i);
                    ph.oi.push_back(ph.qa0 - (i * g.dh - rh) / g.sh);
                }
            for (i64 j = 0; j < g.kw; ++j)
                if ((j * g.dw) % g.sw == rw) {
                    ph.tj.push_back(j);
                    ph.oj.push_back(ph.qb0 - (j * g.dw - rw) / g.sw);
                }
            const i64 nti = static_cast<i64>(ph.ti.size()), ntj = static_cast<i64>(ph.tj.size());
            ph.ntaps = Kg * nti * ntj;
            ph.wt.resize(static_cast<std::size_t>(G * Cg * ph.ntaps));
            for (i64 gi = 0; gi < G; ++gi) {
                T* wt = ph.wt.data() + gi * Cg * ph.ntaps;
                for (i64 k = 0; k < Kg; ++k)
                    for (i64 a = 0; a < nti; ++a)
                        for (i64 b = 0; b < ntj; ++b)
                            for (i64 c = 0; c < Cg; ++c) {
                                const i64 i = ph.ti[a], j = ph.tj[b], kk = gi * Kg + k;
                                const T v = !g.nhwc ? w[((kk * Cg + c) * g.kh + i) * g.kw + j]
                                                    : w[((i * g.kw + j) * Cg + c) * g.K + kk];
                                if (rows_c)  // Wt[c, (k, a, b)]
                                    wt[c * ph.ntaps + (k * nti + a) * ntj + b] = v;
                                else         // Wt[(a, b, k), c]
                                    wt[((a * ntj + b) * Kg + k) * Cg + c] = v;
                            }
            }
            const i64 red = ph.ntaps;
            if (red > 0)
                for (i64 gi = 0; gi < G; ++gi) {
                    const T* wt = ph.wt.data() + gi * Cg * ph.ntaps;
                    if (rows_c)
                        ph.wp.emplace_back(DensePack<T>{wt, ph.ntaps, 1}, Cg, red, uk.mr,
                                           gemm_kc(uk, red));
                    else
                        ph.wp.emplace_back(DensePack<T>{wt, 1, Cg}, Cg, red, uk.nr,
                                           gemm_kc(uk, red));
                    if (cl)
                        ph.wcl.push_back(pack_cl_weights(cl_kernel<T>(), wt, ph.ntaps, Cg, Kg,
                                                         nti, ntj));
                }
            phases.push_back(std::move(ph));
        }

    // stride 1: one phase, every output written by one cl_conv with the bias
    const bool fuse_bias = bias && bias_added && cl && phases.size() == 1 &&
                           !phases[0].wcl.empty() && phases[0].ntaps > 0;
    if (fuse_bias) *bias_added = true;

    struct Item { i64 phase, n, gi, p0, np; };
    std::vector<Item> items;
    const bool regular = g.sh == 1 && g.sw == 1;  // slab items are grid-row ranges
    const i64 outer = g.N * G * static_cast<i64>(phases.size());
    for (i64 f = 0; f < static_cast<i64>(phases.size()); ++f) {
        const BwdPhase<T>& ph = phases[f];
        const i64 span = slab ? ph.GA : ph.GA * ph.GB;
        i64 tile = span;
        if (slab && ph.ntaps > 0) {
            const i64 ext = ph.oj.empty() ? 0 : *std::max_element(ph.oj.begin(), ph.oj.end()) -
                                                 *std::min_element(ph.oj.begin(), ph.oj.end());
            tile = pick_row_tile(ph.GA, ph.GB + ext, Cg, outer, nt,
                                 Kg * (ph.GB + ext) * static_cast<i64>(sizeof(T)));
        } else if (!slab) {
            tile = pick_pixel_tile(span, outer, g.nhwc ? uk.mr : uk.nr, nt);
        }
        for (i64 n = 0; n < g.N; ++n)
            for (i64 gi = 0; gi < G; ++gi)
                for (i64 p0 = 0; p0 < span; p0 += tile)
                    items.push_back({f, n, gi, p0, std::min(tile, span - p0)});
    }

    parallel_items(static_cast<i64>(items.size()), nt, kFlushDenormals<T>, [&](i64 it) {
        const Item& itm = items[it];
        const BwdPhase<T>& ph = phases[itm.phase];
        const i64 n = itm.n, gi = itm.gi, p0 = itm.p0, np = itm.np;
        const i64 nti = static_cast<i64>(ph.ti.size()), ntj = static_cast<i64>(ph.tj.size());
        const T* wt = ph.wt.data() + gi * Cg * ph.ntaps;
        Workspace<T>& ws = thread_workspace<T>();
        if (slab) {
            // element (c, h, w) of this item's gx block
            const i64 cst = g.nhwc ? 1 : HW, hst = g.nhwc ? g.W * g.C : g.W;
            const i64 bst = (g.nhwc ? g.C : 1) * g.sw;  // between phase-grid columns
            T* gxb = g.nhwc ? gx + n * HW * g.C + gi * Cg : gx + (n * g.C + gi * Cg) * HW;
            const i64 a0 = p0, a1 = p0 + np;
            const i64 w0 = g.sw * ph.qb0 + ph.rw - g.pl;
            auto dst = [&](i64 c, i64 a) {
                const i64 h = g.sh * (ph.qa0 + a) + ph.rh - g.pt;
                return gxb + c * cst + h * hst + w0 * (g.nhwc ? g.C : 1);
            };
            const bool ph_cl = cl && !ph.wcl.empty();
            if (ph.ntaps == 0) {
                for (i64 c = 0; c < Cg; ++c)
                    for (i64 a = a0; a < a1; ++a) {
                        T* d = dst(c, a);
                        for (i64 b = 0; b < ph.GB; ++b) d[b * bst] = T(0);
                    }
                return;
            }
            if (ph_cl) {
                cl_conv(ph.wcl[gi], Cg, image_src(gy, n, gi * Kg, Kg, g.K, g.OH, g.OW, g.nhwc),
                        a0, a1, ph.GB, ph.oi.data(), nti, ph.oj.data(), ntj, ws,
                        dst(0, 0) + a0 * g.sh * hst, g.sh * hst, bst, cst,
                        fuse_bias ? bias + gi * Cg : static_cast<const T*>(nullptr));
                return;
            }
            slab_conv(uk, ph.wp[gi], wt, ph.ntaps, Cg,
                      image_src(gy, n, gi * Kg, Kg, g.K, g.OH, g.OW, g.nhwc), 1, 1, a0, a1, ph.GB,
                      ph.oi.data(), nti, ph.oj.data(), ntj, ws,
                      [&](const T* cb, i64 ldq, i64 Wp, i64 ra, i64 rows) {
                          // grid row a -> gx row sh*(qa0 + a) + rh - pt
                          write_block(cb, ldq, Wp, ra, rows, Cg, ph.GB, dst(0, 0), cst,
                                      g.sh * hst, bst, static_cast<const T*>(nullptr));
                      });
            return;
        }
        CView<T> cv{nullptr, 0};
        if (!regular) {
            // Pixel p of the phase grid -> offset of gx(h, w) relative to the item base.
            ws.roff.resize(static_cast<std::size_t>(std::max(np, Cg)));
            ws.coff.resize(static_cast<std::size_t>(std::max(np, Cg)));
            i64* pix = g.nhwc ? ws.roff.data() : ws.coff.data();
            i64* chn = g.nhwc ? ws.coff.data() : ws.roff.data();
            for (i64 p = 0; p < np; ++p) {
                const i64 a = (p0 + p) / ph.GB, b = (p0 + p) % ph.GB;
                const i64 h = g.sh * (ph.qa0 + a) + ph.rh - g.pt;
                const i64 wc = g.sw * (ph.qb0 + b) + ph.rw - g.pl;
                pix[p] = g.nhwc ? (h * g.W + wc) * g.C : h * g.W + wc;
            }
            for (i64 c = 0; c < Cg; ++c) chn[c] = g.nhwc ? c : c * HW;
            cv.base = g.nhwc ? gx + n * HW * g.C + gi * Cg : gx + (n * g.C + gi * Cg) * HW;
            cv.roff = ws.roff.data();
            cv.coff = ws.coff.data();
        }
        if (!g.nhwc) {
            // gx[c, pix] = Wt(Cg x taps) * patches(dY)
            if (regular) cv = CView<T>{gx + (n * g.C + gi * Cg) * HW + p0, HW};
            const T* src = gy + (n * g.K + gi * Kg) * P;
            if (ph.ntaps == 0) {
                gemm_packed(uk, Cg, np, 0, DensePack<T>{wt, 0, 0}, DensePack<T>{wt, 0, 0}, cv,
                            false, ws);
                return;
            }
            const PrePacked<T>& L = ph.wp[gi];
            gemm_packed(uk, Cg, np, ph.ntaps, L,
                        PatchPixelPack<T>{Patch<T>{src, P, g.OW, 1, g.OH, g.OW, ph.GB, p0, 1, 1,
                                                   ph.oi.data(), nti, ph.oj.data(), ntj, Kg,
                                                   false}},
                        cv, false, ws);
        } else {
            if (regular) cv = CView<T>{gx + (n * HW + p0) * g.C + gi * Cg, g.C};
            const T* src = gy + n * P * g.K + gi * Kg;
            if (ph.ntaps == 0) {
                gemm_packed(uk, np, Cg, 0, DensePack<T>{wt, 0, 0}, DensePack<T>{wt, 0, 0}, cv,
                            false, ws);
                return;
            }
            gemm_packed(uk, np, Cg, ph.ntaps,
                        PatchPixelPack<T>{Patch<T>{src, 1, g.OW * g.K, g.K, g.OH, g.OW, ph.GB, p0,
                                                   1, 1, ph.oi.data(), nti, ph.oj.data(), ntj, Kg,
                                                   true}},
                        ph.wp[gi], cv, false, ws);
        }
    });
}

// Transposed conv: y = conv2d_backward_input(x, w) + bias (x plays dY, y dX;
// bias (C) may be null).  The bias rides along in the stores where the path
// allows, else one pass over y adds it.
template <class T>
void conv_transpose2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
    bool added = false;
    conv2d_backward_input(g, x, w, y, bias, &added);
    if (!bias || added || g.N == 0) return;
    const i64 HW = g.H * g.W;
    const int nt = threads_for_work(double(g.N) * g.C * HW);
    parallel_items(g.N, nt, false, [&](i64 n) {
        T* yn = y + n * g.C * HW;
        if (!g.nhwc) {
            for (i64 c = 0; c < g.C; ++c)
                for (i64 p = 0; p < HW; ++p) yn[c * HW + p] += bias[c];
        } else {
            for (i64 p = 0; p < HW; ++p)
                for (i64 c = 0; c < g.C; ++c) yn[p * g.C + c] += bias[c];
        }
    });
}

// Backward-filter over a slab, one group, images [n0, n0 + nb) (nb > 1 only
// for whole images), output rows [a0, a1):
//   gwg[k, tap] (+)= sum_q dYpad[k, q] * slab[toff[tap] + q]
// Small images are batched so that the tiles' horizontal sums are paid once
// per batch instead of once per image.
template <class T>
void slab_filter_item(const ConvGeom& g, const T* x, const T* gy, i64 n0, i64 nb, i64 gi, i64 a0,
                      i64 a1, const i64* oi, const i64* oj, T* gwg, bool accumulate,
                      Workspace<T>& ws) {
    const DotKernel<T>& dk = dot_kernel<T>();
    const i64 Cg = g.Cg(), Kg = g.Kg(), taps = g.taps(), rows = a1 - a0;
    const i64 Wp = slab_width(g.OW, oj, g.kw, g.sw);
    const i64 Q = rows * Wp;
    // extra zeros: a run of Q that the padded taps point at
    Slab<T> sl = build_slab(image_src(x, n0, gi * Cg, Cg, g.C, g.H, g.W, g.nhwc), g.sh, g.sw, a0,
                            rows, g.OW, oi, g.kh, oj, g.kw, Q, ws);
    const i64 simg = sl.size + Q;  // one image's slab incl. its zero run
    const T* slabs = sl.data;
    if (nb > 1) {
        T* all = ws.slabs.get(static_cast<std::size_t>(nb * simg));
        std::copy(sl.data, sl.data + simg, all);
        for (i64 i = 1; i < nb; ++i)
            build_slab(image_src(x, n0 + i, gi * Cg, Cg, g.C, g.H, g.W, g.nhwc), g.sh, g.sw, a0,
                       rows, g.OW, oi, g.kh, oj, g.kw, Q, ws, all + i * simg);
        slabs = all;
    }
    const i64 Mpad = ceil_div(Kg, dk.mr) * dk.mr, Npad = ceil_div(taps, dk.nr) * dk.nr;
    ws.toff.resize(static_cast<std::size_t>(Npad), sl.size);
    // dY on the slab's grid (junk columns zero), rows 64-byte aligned: the dot
    // kernel streams them with full-line loads.  Padded rows are zero.
    const i64 lda = ceil_div(Q, 16) * 16;
    const i64 aimg = Mpad * lda;
    T* a = ws.cbuf.get(static_cast<std::size_t>(nb * aimg));
    for (i64 i = 0; i < nb; ++i) {
        const i64 n = n0 + i;
        T* ai = a + i * aimg;
        for (i64 m = 0; m < Mpad; ++m) {
            T* d = ai + m * lda;
            if (m >= Kg) {
                zero_short(d, Q);
                continue;
            }
            if (!g.nhwc) {
                const T* src = gy + ((n * g.K + gi * Kg + m) * g.OH + a0) * g.OW;
                for (i64 r = 0; r < rows; ++r) {
                    copy_short(src + r * g.OW, g.OW, d + r * Wp);
                    zero_short(d + r * Wp + g.OW, Wp - g.OW);
                }
            } else {
                for (i64 r = 0; r < rows; ++r) zero_short(d + r * Wp + g.OW, Wp - g.OW);
            }
        }
        if (g.nhwc) {
            // read dY pixel by pixel (contiguous channels), scatter into the rows
            const T* src = gy + (n * g.OH + a0) * g.OW * g.K + gi * Kg;
            for (i64 r = 0; r < rows; ++r)
                for (i64 b = 0; b < g.OW; ++b) {
                    const T* sp = src + (r * g.OW + b) * g.K;
                    T* dp = ai + r * Wp + b;
                    for (i64 m = 0; m < Kg; ++m) dp[m * lda] = sp[m];
                }
        }
    }
    std::vector<const T*>& arow = ws.rowptr;
    arow.resize(static_cast<std::size_t>(Mpad));
    for (i64 m = 0; m < Mpad; ++m) arow[m] = a + m * lda;
    T* c = ws.a.get(static_cast<std::size_t>(Mpad * Npad));
    if (nb > 1) {
        dk.fn(Mpad, Npad, nb, Q, arow.data(), aimg, slabs, ws.toff.data(), simg, c, Npad, 0);
    } else {
        // Reduction chunks of 1024: the NR slab rows of a tile column stay in L1.
        const i64 QC = 1024;
        for (i64 q0 = 0; q0 < Q; q0 += QC) {
            if (q0 > 0)
                for (i64 m = 0; m < Mpad; ++m) arow[m] += QC;
            dk.fn(Mpad, Npad, 1, std::min(QC, Q - q0), arow.data(), 0, slabs + q0,
                  ws.toff.data(), 0, c, Npad, q0 > 0);
        }
    }
    if (!g.nhwc) {
        for (i64 m = 0; m < Kg; ++m) {
            T* d = gwg + m * taps;
            const T* s = c + m * Npad;
            if (accumulate)
                for (i64 t = 0; t < taps; ++t) d[t] += s[t];
            else
                std::copy(s, s + taps, d);
        }
        return;
    }
    // HWIO: gwg points at gw[0, 0, 0, gi*Kg]; tap t = (ci, ij)
    const i64 kk = g.kh * g.kw;
    for (i64 ij = 0; ij < kk; ++ij)
        for (i64 ci = 0; ci < Cg; ++ci) {
            T* d = gwg + (ij * Cg + ci) * g.K;
            const T* s = c + ci * kk + ij;
            if (accumulate)
                for (i64 m = 0; m < Kg; ++m) d[m] += s[m * Npad];
            else
                for (i64 m = 0; m < Kg; ++m) d[m] = s[m * Npad];
        }
}

// Backward-filter of one image, group gi, output rows [a0, a1) on the
// channel-vector path: cacc[m][v*cb + l] += sum over the rows of
// dY(m, pixel) * x(channel block, lane l, pixel + tap) for vector column
// v = (ti*ncb + cb)*ntj + tj (layout: cl_filter in simd_templates.hpp).
template <class T>
void cl_filter_item(const ConvGeom& g, const T* x, const T* gy, i64 n, i64 gi, i64 a0, i64 a1,
                    const i64* oi, const i64* oj, T* cacc, i64 ldc, Workspace<T>& ws) {
    const ClKernel<T>& ck = cl_kernel<T>();
    const i64 Cg = g.Cg(), Kg = g.Kg(), rows = a1 - a0, GB = g.OW, MR = ck.fmr;
    const ClSlab<T> sl = build_cl_slab(image_src(x, n, gi * Cg, Cg, g.C, g.H, g.W, g.nhwc), ck.cb,
                                       a0, rows, GB, oi, g.kh, oj, g.kw, ws);
    const i64 ncol = g.kh * sl.ncb * g.kw;
    ws.toff.resize(static_cast<std::size_t>(ncol));
    for (i64 ti = 0, v = 0; ti < g.kh; ++ti)
        for (i64 k = 0; k < sl.ncb; ++k)
            for (i64 tj = 0; tj < g.kw; ++tj, ++v)
                ws.toff[v] = sl.ioff[ti] + k * sl.cbs + sl.joff[tj];
    const i64 Mpad = ceil_div(Kg, MR) * MR, npix = rows * GB;
    if (Kg % MR == 0) {
        // whole tiles of dY channels: the kernel reads dY in place
        if (g.nhwc) {
            const T* src = gy + (n * g.OH + a0) * g.OW * g.K + gi * Kg;
            ck.ffn(Mpad, ncol, ws.toff.data(), rows, GB, sl.data, sl.rs, src, g.K, 1, MR, cacc,
                   ldc);
        } else {
            const i64 P = g.OH * g.OW;
            const T* src = gy + (n * g.K + gi * Kg) * P + a0 * g.OW;
            ck.ffn(Mpad, ncol, ws.toff.data(), rows, GB, sl.data, sl.rs, src, 1, P, MR * P, cacc,
                   ldc);
        }
        return;
    }
    // dY blocked by MR channels: gb[mb][pixel][MR], channels past Kg zero
    T* gb = ws.cbuf.get(static_cast<std::size_t>(Mpad * npix));
    if (g.nhwc) {
        // pixel by pixel: each block's MR channels are one contiguous run of dY
        const T* src = gy + (n * g.OH + a0) * g.OW * g.K + gi * Kg;
        for (i64 mb = 0; mb < Mpad / MR; ++mb) {
            T* d = gb + mb * npix * MR;
            const i64 nm = std::min(MR, Kg - mb * MR);
            for (i64 p = 0; p < npix; ++p) {
                const T* sp = src + p * g.K + mb * MR;
                for (i64 r = 0; r < nm; ++r) d[p * MR + r] = sp[r];
                for (i64 r = nm; r < MR; ++r) d[p * MR + r] = T(0);
            }
        }
    } else {
        for (i64 m = 0; m < Mpad; ++m) {
            T* d = gb + (m / MR) * npix * MR + m % MR;
            if (m >= Kg) {
                for (i64 p = 0; p < npix; ++p) d[p * MR] = T(0);
                continue;
            }
            const T* src = gy + ((n * g.K + gi * Kg + m) * g.OH + a0) * g.OW;
            for (i64 p = 0; p < npix; ++p) d[p * MR] = src[p];
        }
    }
    ck.ffn(Mpad, ncol, ws.toff.data(), rows, GB, sl.data, sl.rs, gb, MR, 1, npix * MR, cacc, ldc);
}

// cacc of one group (see cl_filter_item) -> gw rows of that group.
template <class T>
void cl_filter_store(const ConvGeom& g, const T* cacc, i64 ldc, T* gwg) {
    const ClKernel<T>& ck = cl_kernel<T>();
    const i64 Cg = g.Cg(), Kg = g.Kg(), ncb = ceil_div(Cg, ck.cb), taps = g.taps();
    for (i64 m = 0; m < Kg; ++m)
        for (i64 ti = 0; ti < g.kh; ++ti)
            for (i64 k = 0; k < ncb; ++k)
                for (i64 tj = 0; tj < g.kw; ++tj) {
                    const T* s = cacc + m * ldc + ((ti * ncb + k) * g.kw + tj) * ck.cb;
                    const i64 nc = std::min(ck.cb, Cg - k * ck.cb);
                    for (i64 l = 0; l < nc; ++l) {
                        const i64 c = k * ck.cb + l;
                        if (!g.nhwc)
                            gwg[m * taps + (c * g.kh + ti) * g.kw + tj] = s[l];
                        else
                            gwg[((ti * g.kw + tj) * Cg + c) * g.K + m] = s[l];
                    }
                }
}

// NCHW: x (N,C,H,W), gy (N,K,OH,OW) -> gw (K,C/g,kh,kw)
// NHWC: x (N,H,W,C), gy (N,OH,OW,K) -> gw (kh,kw,C/g,K)
// The batch x pixel reduction is cut into S = threads_for_work() contiguous slices;
// slice s accumulates its own partial gw and the partials are added in slice
// order, so the result depends on the thread count only, never on scheduling.
template <class T>
void conv2d_backward_filter(const ConvGeom& g, const T* x, const T* gy, T* gw) {
    const UKernel<T>& uk = ukernel<T>();
    const i64 P = g.OH * g.OW, HW = g.H * g.W, Cg = g.Cg(), Kg = g.Kg(), G = g.groups;
    const i64 taps = g.taps(), wsize = g.K * taps;
    if (g.N == 0 || P == 0) {
        std::fill(gw, gw + wsize, T(0));
        return;
    }
    if (is_flat_pointwise(g) && !(g.nhwc && direct_kernels_for<T>(g)))
        return pointwise_backward_filter(g, x, gy, gw);  // conv_pointwise.hpp
    if (const DirectKernels<T>* dk = direct_kernels_for<T>(g))  // few taps: conv_direct.hpp
        return direct_conv_backward_filter(*dk, g, x, gy, gw);
    if (is_pointwise(g)) return pointwise_backward_filter(g, x, gy, gw);  // NCHW, H*W > 1
    std::vector<i64> oi(g.kh), oj(g.kw);
    for (i64 i = 0; i < g.kh; ++i) oi[i] = i * g.dh - g.pt;
    for (i64 j = 0; j < g.kw; ++j) oj[j] = j * g.dw - g.pl;
    const int nt = threads_for_work(double(g.N) * P * g.K * Cg * g.kh * g.kw);
    // Dot-product tiles straight over a slab of x and a junk-column-padded
    // copy of dY: both are contiguous along the reduction, nothing transposed.
    const bool slab = g.kh <= kMaxSlabTaps && g.kw <= kMaxSlabTaps;
    const i64 Wp_est = slab_width(g.OW, oj.data(), g.kw, g.sw);
    const i64 cpi = slab ? std::max<i64>(1, std::min(g.OH, std::max(ceil_div(nt, g.N),
                                                     ceil_div(Cg * g.OH * Wp_est, i64(1) << 18))))
                         : std::max<i64>(1, std::min(ceil_div(P, 64), ceil_div(nt, g.N)));
    const i64 clen = slab ? ceil_div(g.OH, cpi) : ceil_div(P, cpi);
    // whole small images are reduced in batches of up to ~2048 grid positions
    const i64 batch = std::max<i64>(1, std::min<i64>(16, 2048 / std::max<i64>(1, g.OH * Wp_est)));
    const i64 items = g.N * cpi;
    const bool cl =
        slab && g.sh == 1 && g.sw == 1 && cl_kernel<T>().ffn && use_cl_path<T>(Cg, Kg);
    // The channel-vector path cuts the reduction into more slices than threads
    // (run dynamically): a thread descheduled on a busy machine then delays
    // one small slice instead of half the call.
    const i64 S = std::max<i64>(1, std::min<i64>(cl && nt > 1 ? 4 * nt : nt, items));
    std::vector<T> partial(static_cast<std::size_t>((S - 1) * wsize));

    parallel_items(S, nt, kFlushDenormals<T>, [&](i64 s) {
        T* part = s == 0 ? gw : partial.data() + (s - 1) * wsize;
        Workspace<T>& ws = thread_workspace<T>();
        if (cl) {
            // per group: cl accumulators (Mpad x ncol vectors), stored at the end
            const ClKernel<T>& ck = cl_kernel<T>();
            const i64 ldc = g.kh * ceil_div(Cg, ck.cb) * g.kw * ck.cb;
            const i64 gsz = ceil_div(Kg, ck.fmr) * ck.fmr * ldc;
            std::vector<T> cacc(static_cast<std::size_t>(G * gsz), T(0));
            for (i64 it = s * items / S; it < (s + 1) * items / S; ++it) {
                const i64 n = it / cpi, p0 = (it % cpi) * clen;
                const i64 np = std::min(clen, g.OH - p0);
                if (np <= 0) continue;
                for (i64 gi = 0; gi < G; ++gi)
                    cl_filter_item(g, x, gy, n, gi, p0, p0 + np, oi.data(), oj.data(),
                                   cacc.data() + gi * gsz, ldc, ws);
            }
            for (i64 gi = 0; gi < G; ++gi)
                cl_filter_store(g, cacc.data() + gi * gsz, ldc,
                                part + (g.nhwc ? gi * Kg : gi * Kg * taps));
            return;
        }
        bool first = true;
        const i64 it1 = (s + 1) * items / S;
        for (i64 it = s * items / S; it < it1; ++it) {
            const i64 n = it / cpi, p0 = (it % cpi) * clen;
            const i64 np = std::min(clen, (slab ? g.OH : P) - p0);
            if (np <= 0) continue;
            if (slab) {
                const i64 nb = cpi == 1 ? std::min(batch, it1 - it) : 1;
                for (i64 gi = 0; gi < G; ++gi)
                    slab_filter_item(g, x, gy, n, nb, gi, p0, p0 + np, oi.data(), oj.data(),
                                     part + (g.nhwc ? gi * Kg : gi * Kg * taps), !first, ws);
                first = false;
                it += nb - 1;
                continue;
            }
            for (i64 gi = 0; gi < G; ++gi) {
                if (!g.nhwc) {
                    // gw[k, tap] += dY(Kg x pix) * patches(tap x pix)^T
                    const T* xs = x + (n * g.C + gi * Cg) * HW;
                    DensePack<T> L{gy + (n * g.K + gi * Kg) * P + p0, P, 1};
                    CView<T> cv{part + gi * Kg * taps, taps};
                    gemm_packed(uk, Kg, taps, np, L,
                                PatchTapPack<T>{Patch<T>{xs, HW, g.W, 1, g.H, g.W, g.OW, p0, g.sh,
                                                         g.sw, oi.data(), g.kh, oj.data(), g.kw,
                                                         Cg, false}},
                                cv, !first, ws);
                } else {
                    // gw[tap, k] += patches(tap x pix) * dY(pix x Kg)
                    const T* xs = x + n * HW * g.C + gi * Cg;
                    DensePack<T> R{gy + (n * P + p0) * g.K + gi * Kg, 1, g.K};
                    CView<T> cv{part + gi * Kg, g.K};
                    gemm_packed(uk, taps, Kg, np,
                                PatchTapPack<T>{Patch<T>{xs, 1, g.W * g.C, g.C, g.H, g.W, g.OW, p0,
                                                         g.sh, g.sw, oi.data(), g.kh, oj.data(),
                                                         g.kw, Cg, true}},
                                R, cv, !first, ws);
                }
            }
            first = false;
        }
        if (first) std::fill(part, part + wsize, T(0));
    });

    add_partials(gw, partial.data(), S, wsize, nt);
}

// s[0] + ... + s[n-1] in double.  One running sum would be a chain of dependent
// adds (4 cycles each): eight interleaved partial sums, combined in a fixed
// order, make the bias gradient ~6x faster and keep it deterministic.
template <class T>
double sum_as_double(const T* s, i64 n) {
    constexpr int kLanes = 8;
    double part[kLanes] = {};
    i64 p = 0;
    for (; p + kLanes <= n; p += kLanes)
        for (int l = 0; l < kLanes; ++l) part[l] += s[p + l];
    for (int l = 0; p < n; ++p, ++l) part[l] += s[p];
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// NCHW: gy (N,K,OH,OW) -> gb (K);  NHWC: gy (N,OH,OW,K) -> gb (K)
// Sums in double over fixed blocks combined in a fixed order: the result does
// not even depend on the thread count.
template <class T>
void conv2d_backward_bias(const T* gy, i64 N, i64 K, i64 P, bool nhwc, T* gb) {
    const int nt = threads_for_work(double(N) * K * P);
    if (!nhwc) {
        std::vector<double> rows(static_cast<std::size_t>(N * K));
        parallel_items(N * K, nt, false, [&](i64 r) { rows[r] = sum_as_double(gy + r * P, P); });
        for (i64 k = 0; k < K; ++k) {
            double acc = 0.0;
            for (i64 n = 0; n < N; ++n) acc += rows[n * K + k];
            gb[k] = static_cast<T>(acc);
        }
    } else {
        const i64 R = N * P;
        const i64 RB = 512;
        const i64 nb = ceil_div(R, RB);
        std::vector<double> part(static_cast<std::size_t>(nb * K));
        parallel_items(nb, nt, false, [&](i64 b) {
            double* acc = part.data() + b * K;
            for (i64 r = b * RB; r < std::min(R, (b + 1) * RB); ++r) {
                const T* s = gy + r * K;
                for (i64 k = 0; k < K; ++k) acc[k] += s[k];
            }
        });
        for (i64 k = 0; k < K; ++k) {
            double acc = 0.0;
            for (i64 b = 0; b < nb; ++b) acc += part[b * K + k];
            gb[k] = static_cast<T>(acc);
        }
    }
}

}  // namespace aek
