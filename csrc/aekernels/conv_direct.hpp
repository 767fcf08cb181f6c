// Direct forward and backward-filter for convs with few taps (C/groups * kh *
// kw <= kDirectMaxTaps, C/groups <= kDirectMaxChannels: first layers with a
// few input channels, depthwise), and for more taps over few input channels
// when the output channels fill the vectors (direct_kvec: lenet c3).
// Their reduction is too short for an implicit GEMM to pay off: the time goes
// into moving y (forward) or dY (backward-filter), so these paths read the
// input through a small zero-padded copy of its rows and then touch y / dY
// exactly once, in place (kernels: direct_templates.hpp).
// NCHW forwards with one or two output channels per group (up to
// kDirectRowsMaxTaps taps: last layers of decoders, and through a flipped
// weight the backward-input of first layers) use the same rows buffer: a GEMM
// tile would be mostly empty rows, and their row-block kernel reads the taps
// from the buffer in place.
//
// Input rows of one work item ("rows buffer"): for channel c, input row
// ih0 + r and column phase p < sw, the plane row
//   buf[((c*RB + r)*sw + p)*Vs + v] = x[c, ih0 + r, v*sw + p - pl]   (0 outside x)
// so tap (c, i, j) of output (a, b) sits at
//   buf[((c*RB + a*sh + i*dh)*sw + (j*dw) % sw)*Vs + (j*dw)/sw + b]:
// a fixed pointer per tap plus b (contiguous in b, whatever the stride) plus
// a*xrow with xrow = sh*sw*Vs.  Padding, stride and dilation are all folded
// into those pointers.
#pragma once

#include <array>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "aekernels/common.hpp"
#include "aekernels/direct_ukernels.hpp"
#include "aekernels/gemm.hpp"
#include "aekernels/geometry.hpp"

namespace aek {

constexpr i64 kDirectMaxTaps = 64;
// ... and few input channels per group: channel-rich convs (even 1x1 / 2x2
// ones) fill the vectors of the GEMM and channel-vector paths instead.
constexpr i64 kDirectMaxChannels = 7;
// Phase planes per row: beyond this stride almost every input column is skipped
// and the padded copy would mostly hold unused phases.
constexpr i64 kDirectMaxStride = 16;
// Rows buffer of one item: kept within L2 next to the item's slice of y / dY.
constexpr i64 kDirectRowsBytes = i64(256) << 10;
// ... for the row-block kernel (fwd_nchw_rows), whose y slice is small (one
// or two output channels) and whose items read kh - 1 input rows more than
// they have output rows (plus the rows that round them up to whole tiles):
// the flipped backward-input of seed_tf_ae (32 dY channels of 145 + 3 columns)
// got items of 2 output rows in 256 KB at f64, each copying 5 rows of dY.
constexpr i64 kDirectRowsKernelBytes = i64(512) << 10;
// Row-block forward (fwd_nchw_rows): output channels per group, and taps, at most.
constexpr i64 kDirectRowsMaxOut = 2;
// ... and, for the flipped stride-1 backward-input only, input channels per
// group (fwd_nchw_rows reads taps one by one for 3..8 outputs).  Measured
// (EPYC Zen4, 2026-12-05): lenet c3 backward-input (16 -> 6 channels, 5x5,
// 10x10 -> 14x14) beats the GEMM path it replaces; the forward with 3..8
// outputs per group stays on the slab/GEMM and fwd_nchw paths (not measured
// faster there).
constexpr i64 kDirectRowsMaxBackwardIn = 8;
constexpr i64 kDirectRowsMaxTaps = 1024;

template <class T>
const DirectKernels<T>* direct_kernels();
template <>
inline const DirectKernels<float>* direct_kernels<float>() { return isa_table().direct_f32; }
template <>
inline const DirectKernels<double>* direct_kernels<double>() { return isa_table().direct_f64; }

// Row pitch of the rows buffer: the output columns rounded up to whole
// vectors (forward kernels load full vectors past the row's end) plus the
// widest tap offset.
inline i64 direct_row_pitch(const ConvGeom& g) {
    const i64 reach = (g.kw - 1) * g.dw / g.sw;
    return ceil_div(ceil_div(g.OW, 16) * 16 + reach, 16) * 16;
}

// Input rows read by `rows` consecutive output rows.
inline i64 direct_input_rows(const ConvGeom& g, i64 rows) {
    return (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1;
}

inline i64 direct_rows_elems(const ConvGeom& g, i64 rows) {
    return g.Cg() * direct_input_rows(g, rows) * g.sw * direct_row_pitch(g);
}

// Most output rows per item whose rows buffer stays within `bytes` (>= 1).
template <class T>
i64 direct_rows_cap(const ConvGeom& g, i64 bytes = kDirectRowsBytes) {
    const i64 budget = bytes / static_cast<i64>(sizeof(T));
    const i64 base = direct_rows_elems(g, 1);
    const i64 per_row = g.Cg() * g.sh * g.sw * direct_row_pitch(g);
    return base >= budget ? 1 : 1 + (budget - base) / per_row;
}

// Not a huge stride, and a rows buffer that fits for one output row (no huge dilation).
inline bool direct_one_row_fits(const ConvGeom& g) {
    return g.sw <= kDirectMaxStride &&
           static_cast<double>(g.Cg()) * double(direct_input_rows(g, 1)) * double(g.sw) *
                   double(direct_row_pitch(g)) <= double(i64(1) << 24);
}

// Past kDirectMaxTaps, convs with few input channels per group still take
// the direct path when their output channels per group fill the vectors
// (at most 1/4 padding) and number at most kDirectKvecMaxOut: the kernels
// then run along the output channels (NHWC: fwd_nhwc / bwf_nhwc; NCHW:
// fwd_nchw_kvec / bwf_nchw_kvec, which transpose y / dY on the way), so
// every FMA is useful.  The slab/GEMM path they replace computes the junk
// columns of its grid (lenet c3: 6 -> 16 channels, 5x5, 10 x 10 outputs: 14
// columns per row of 10, and the grid rounded up to whole vectors: 144 of
// every 100 FMAs) and its channel-vector kernels need 16 input channels.
// Measured (EPYC Zen4, 2026-12-06, f32 AVX-512, lenet c3 batch 128 at 1
// thread, slab/GEMM -> kvec): forward 924 -> 630 us, backward-filter 1335 ->
// 690 us (torch 2.13: 612 and 1150 us).  The cap bounds the weight rows and
// the dY buffer of bwf_nchw_kvec (kDirectKvecBuf >= 64 entries per pixel).
constexpr i64 kDirectKvecMaxOut = 64;
static_assert(kDirectKvecBuf >= kDirectKvecMaxOut, "bwf_nchw_kvec needs a whole pixel");

template <class T>
bool direct_kvec(const DirectKernels<T>& dk, const ConvGeom& g) {
    const i64 Kg = g.Kg(), L = dk.lanes;
    return g.taps() > kDirectMaxTaps && Kg >= L && Kg <= kDirectKvecMaxOut &&
           4 * ceil_div(Kg, L) * L <= 5 * Kg;
}

// The direct kernels for this conv, or null when it belongs to the slab/GEMM
// path: too many input channels per group, too many taps (unless
// direct_kvec), a huge stride, a rows buffer that would not fit even for one
// output row (huge dilation), or no kernels in the ISA table.
template <class T>
const DirectKernels<T>* direct_kernels_for(const ConvGeom& g) {
    if (g.Cg() > kDirectMaxChannels || !direct_one_row_fits(g)) return nullptr;
    const DirectKernels<T>* dk = direct_kernels<T>();
    if (!dk || (g.taps() > kDirectMaxTaps && !direct_kvec(*dk, g))) return nullptr;
    return dk;
}

// The forward also takes NCHW convs with few output channels (fwd_nchw_rows).
inline bool direct_rows_forward(const ConvGeom& g) {
    return !g.nhwc && g.Kg() <= kDirectRowsMaxOut;
}

template <class T>
const DirectKernels<T>* direct_forward_kernels_for(const ConvGeom& g) {
    if (direct_rows_forward(g) && g.taps() <= kDirectRowsMaxTaps && direct_one_row_fits(g))
        return direct_kernels<T>();
    return direct_kernels_for<T>(g);
}

// Rows [r0, r1) of a rows buffer hold rows of x (ih0 + r, all in range), the
// others zeros.
struct DirectRowsSpan {
    i64 r0 = 0, r1 = 0;
};

// The rows of x that the first `need` of RB buffer rows from ih0 read.
inline DirectRowsSpan direct_rows_span(const ConvGeom& g, i64 ih0, i64 need) {
    const i64 r0 = std::min(need, std::max<i64>(0, -ih0));
    return {r0, std::max(r0, std::min(need, g.H - ih0))};
}

// Fill the rows buffer of image n, group gi, RB input rows from ih0: the rows
// of `span` from x, every other row zero (rows outside x, and rows past the
// ones the kernel's results depend on).  With `prev` (the span of the last
// fill of this geometry, whose zeros are still in place) only the columns
// copied from x are written, and the rows of prev outside span are zeroed;
// then x + pf elements on is prefetched likewise (pf != 0: see copy_rows).
// (AEK_INLINE_LOOPS: the row copies inlined here would otherwise become
// libc memmove calls again, one per row of a few tens of elements.)
template <class T>
AEK_INLINE_LOOPS void build_direct_rows(const DirectKernels<T>& dk, const ConvGeom& g, const T* x,
                                        i64 n, i64 gi, i64 ih0, i64 RB, DirectRowsSpan span,
                                        T* buf, const DirectRowsSpan* prev, i64 pf) {
    const i64 Cg = g.Cg(), sw = g.sw, Vs = direct_row_pitch(g);
    // element strides of x: channel, row, column
    const i64 cs = g.nhwc ? 1 : g.H * g.W, hs = g.nhwc ? g.W * g.C : g.W, ws = g.nhwc ? g.C : 1;
    const T* img = g.nhwc ? x + n * g.H * g.W * g.C + gi * Cg : x + (n * g.C + gi * Cg) * g.H * g.W;
    // columns v of phase p with 0 <= v*sw + p - pl < W: [col_lo[p], col_hi[p]) (the
    // same for every row; divisions are not cheap next to these short copies)
    i64 col_lo[kDirectMaxStride], col_hi[kDirectMaxStride];
    for (i64 p = 0; p < sw; ++p) {
        col_lo[p] = std::min(Vs, g.pl - p <= 0 ? i64(0) : ceil_div(g.pl - p, sw));
        col_hi[p] = std::max(col_lo[p], std::min(Vs, floor_div(g.W - 1 + g.pl - p, sw) + 1));
    }
    const i64 r0 = span.r0, r1 = span.r1;
    auto in_span = [](i64 r, DirectRowsSpan s) { return r >= s.r0 && r < s.r1; };
    if (prev) {
        // rows that held x and are zeros now (every phase: sw*Vs elements in a row)
        for (i64 c = 0; c < Cg; ++c)
            for (i64 r = prev->r0; r < prev->r1; ++r)
                if (!in_span(r, span)) zero_short(buf + (c * RB + r) * sw * Vs, sw * Vs);
    }
    if (prev && sw == 1 && ws == 1) {
        // Repeated NCHW items: one contiguous copy per row in range, nothing else.
        const i64 lo = col_lo[0], len = col_hi[0] - col_lo[0];
        if (r0 < r1 && len > 0)
            dk.copy_rows(Cg, r1 - r0, len, img + (ih0 + r0) * hs + lo - g.pl, cs, hs,
                         buf + r0 * Vs + lo, RB * Vs, Vs, pf);
        return;
    }
    for (i64 c = 0; c < Cg; ++c)
        for (i64 r = prev ? r0 : 0; r < (prev ? r1 : RB); ++r) {
            const i64 ih = ih0 + r;
            for (i64 p = 0; p < sw; ++p) {
                T* d = buf + ((c * RB + r) * sw + p) * Vs;
                if (!in_span(r, span)) {  // (only without prev)
                    zero_short(d, Vs);
                    continue;
                }
                const i64 lo = col_lo[p], hi = col_hi[p], step = sw * ws;
                if (!prev) {
                    zero_short(d, lo);
                    zero_short(d + hi, Vs - hi);
                }
                const T* s = img + c * cs + ih * hs + (lo * sw + p - g.pl) * ws;
                if (step == 1)
                    copy_short(s, hi - lo, d + lo);
                else if (step == 2)  // stride-2 NCHW: a constant stride the compiler vectorises
                    for (i64 v = lo; v < hi; ++v) d[v] = s[2 * (v - lo)];
                else
                    for (i64 v = lo; v < hi; ++v) d[v] = s[(v - lo) * step];
            }
        }
}

// Tap pointers (taps ordered (c, i, j) like an OIHW weight row) of output row 0.
// The column offsets (a division each) are worked out once, for c = i = 0.
template <class T>
void direct_taps(const ConvGeom& g, const T* buf, i64 RB, std::vector<const T*>& tap) {
    const i64 Vs = direct_row_pitch(g), kw = g.kw;
    tap.resize(static_cast<std::size_t>(g.taps()));
    for (i64 j = 0; j < kw; ++j) tap[j] = buf + ((j * g.dw) % g.sw) * Vs + (j * g.dw) / g.sw;
    const i64 row_step = g.dh * g.sw * Vs, chan_step = RB * g.sw * Vs;
    i64 t = kw;
    for (i64 c = 0; c < g.Cg(); ++c)
        for (i64 i = c == 0 ? 1 : 0; i < g.kh; ++i)
            for (i64 j = 0; j < kw; ++j, ++t) tap[t] = tap[j] + c * chan_step + i * row_step;
}

// NCHW runs along the output plane itself: the taps of `rows` output rows
// are laid out as planes with the output's pitch (plane t, q = a*OW + b holds
// the input under tap t of output (a, b)), so the kernels sweep rows*OW
// contiguous outputs with full vectors instead of one short row at a time.
// Rows are copied in whole 64-byte chunks, each row's overshoot being
// overwritten by the next row; the last one runs into the plane's padding.
// (+16: the last row's overshoot, +16: room for the alignment shift)
inline i64 direct_plane_pitch(i64 rows, i64 ow) { return ceil_div(rows * ow + 32, 16) * 16; }

// `shift` (< 16) offsets every plane so that its element q shares the 64-byte
// alignment of the output element q (the forward kernel aligns its stores).
template <class T>
AEK_INLINE_LOOPS void direct_tap_planes(const T* const* tap, i64 ntaps, i64 xrow, i64 rows,
                                        i64 ow, i64 shift, T* planes, const T** plane_ptr) {
    constexpr i64 L = 64 / sizeof(T);
    const i64 Qs = direct_plane_pitch(rows, ow);
    for (i64 t = 0; t < ntaps; ++t) {
        T* d = planes + t * Qs + shift;
        plane_ptr[t] = d;
        for (i64 a = 0; a < rows; ++a) {
            const T* s = tap[t] + a * xrow;
            for (i64 b = 0; b < ow; b += L) std::memcpy(d + a * ow + b, s + b, 64);
        }
    }
}

// Per-thread scratch of the direct paths (grow-only, reused across calls).
template <class T>
struct DirectScratch {
    AlignedBuffer<T> rows, planes;
    std::vector<const T*> tap, plane_ptr;
    // Where `rows` holds the zeros of its last fill: a key of the geometry they
    // depend on and the rows that held x (rows_elems: the most ever asked of
    // `rows`, so that a key is dropped whenever the buffer may have moved).
    std::array<i64, 6> zeros_key{};
    DirectRowsSpan zeros_span;
    i64 rows_elems = 0;
};

template <class T>
DirectScratch<T>& direct_scratch() {
    static thread_local DirectScratch<T> s;
    return s;
}

// The rows buffer of an item (elems elements, RB input rows from ih0, of
// which the first `need` are read for results that are kept; the others only
// have to be finite).  Every fill of DirectScratch::rows goes through here, so
// its key stays current.  The zeros (padding columns, rows outside x) depend
// only on the geometry and on which rows hold x, which consecutive items of a
// thread mostly share (whole images, or row tiles of one geometry): then only
// the columns copied from x are written, and the rows that change between x
// and zeros.  With few output channels per input element, writing the zeros
// again costs about as much as the FMAs.  pf: as for build_direct_rows.
template <class T>
T* direct_rows_buffer(const DirectKernels<T>& dk, DirectScratch<T>& sc, const ConvGeom& g,
                      const T* x, i64 n, i64 gi, i64 ih0, i64 RB, i64 need, i64 elems,
                      i64 pf = 0) {
    if (elems > sc.rows_elems) {
        sc.rows_elems = elems;
        sc.zeros_key = {};
    }
    T* buf = sc.rows.get(static_cast<std::size_t>(elems));
    const std::array<i64, 6> key = {g.Cg(), RB, g.sw, direct_row_pitch(g), g.W, g.pl};
    const DirectRowsSpan span = direct_rows_span(g, ih0, need);
    build_direct_rows(dk, g, x, n, gi, ih0, RB, span, buf,
                      key == sc.zeros_key ? &sc.zeros_span : nullptr, pf);
    sc.zeros_key = key;
    sc.zeros_span = span;
    return buf;
}

// Whether the NCHW kernels fwd_nchw / bwf_nchw run over the rows buffer in
// place (row by row: the last vector of each row of OW outputs has
// pad = whole vectors - OW idle lanes) rather than over tap planes (one
// copy of the taps with the output's pitch, every vector full).
// Backward-filter: the copy costs about two vector moves per tap and vector
// of pixels against Kg FMAs, the idle lanes pad per OW outputs: in place
// when 2*OW > Kg*pad (lenet c1: 6 channels, OW 28 of 32 lanes).  Forward:
// in place on 64-byte vectors (32 registers: tiles of two rows of two
// vectors), whatever the shape; narrower vectors keep the planes (AVX2 tiles
// of 3 x 3 vectors; in place was not measured faster there).  Measured (EPYC
// Zen4, 2026-12-06, 1 thread, planes -> in place): forward f32 AVX-512 lenet
// c1 578 -> 370 us, (128,1,10x10)->8 3x3 66 -> 57, (128,3,12x12)->16 3x3
// 263 -> 260, ae_enc1 0.92 -> 0.82 ms, seed_tf_ae 8.1 -> 7.2 ms, f64 likewise
// (103 -> 95, 486 -> 448 us).  Backward-filter f32 AVX-512 lenet c1 600 ->
// 415 us, depthwise 32 channels 7x7 421 -> 303 us; ae_enc1 0.76 -> 1.8 ms
// and stem_s2 0.65 -> 1.0 ms (planes by the rule); AVX2 lenet c1 575 -> 440 us.
template <class T>
bool direct_rows_in_place(const DirectKernels<T>& dk, const ConvGeom& g, bool forward) {
    if (forward) return dk.lanes * static_cast<i64>(sizeof(T)) == 64;
    const i64 pad = ceil_div(g.OW, dk.lanes) * dk.lanes - g.OW;
    return 2 * g.OW > g.Kg() * pad;
}

// Output rows per NCHW kernel call: their tap planes stay within `bytes`
// (forward: 32 KB, L1, swept once per block of output channels; backward-
// filter: 256 KB, within L2: fewer calls and accumulator flushes; planes of
// more than 32 KB are read from L2 whatever the budget.  Measured (EPYC
// Zen4, 2026-12-06, f32 AVX-512, 1 thread, busy machine): stem_s2, 10 -> 28
// rows per call, 0.635-0.644 -> 0.617-0.618 ms, min of 60).
template <class T>
i64 direct_plane_rows(const ConvGeom& g, i64 rows, i64 bytes) {
    const i64 per_row = g.taps() * g.OW * static_cast<i64>(sizeof(T));
    return std::max<i64>(1, std::min(rows, bytes / std::max<i64>(1, per_row)));
}

// NCHW: x (N,C,H,W), w (K,C/g,kh,kw), bias (K) -> y (N,K,OH,OW)
// NHWC: x (N,H,W,C), w (kh,kw,C/g,K), bias (K) -> y (N,OH,OW,K)
// Every output element is written once by one item: scheduling never changes
// the result.
// force_rows_kernel: take fwd_nchw_rows (NCHW only) even for more than
// kDirectRowsMaxOut output channels per group (the flipped backward-input).
template <class T>
void direct_conv_forward(const DirectKernels<T>& dk, const ConvGeom& g, const T* x, const T* w,
                         const T* bias, T* y, bool force_rows_kernel = false) {
    const i64 Cg = g.Cg(), Kg = g.Kg(), G = g.groups, taps = g.taps(), P = g.OH * g.OW;
    const int nt = threads_for_work(double(g.N) * P * g.K * taps);
    // Whole images per item when batch x groups already feed every thread.
    const i64 outer = g.N * G, want = 4 * static_cast<i64>(nt);
    const i64 tiles = outer >= want ? 1 : ceil_div(want, outer);
    // The row-block kernel reads whole tiles of rows (the rows past the end are
    // dropped) and slides along the kernel rows when they are one input row apart.
    const bool rows_kernel = !g.nhwc && (force_rows_kernel || direct_rows_forward(g));
    const bool slide = g.sh == 1 && g.dh == 1;
    // Row tiles of even size (the rows buffer keeps its zeros between items of
    // one size); the row-block kernel's buffer holds whole tiles of rows.
    i64 cap = direct_rows_cap<T>(g, rows_kernel ? kDirectRowsKernelBytes : kDirectRowsBytes);
    if (rows_kernel && cap >= kDirectRowsTile) cap -= cap % kDirectRowsTile;
    const i64 ntile = ceil_div(g.OH, std::max<i64>(1, std::min(ceil_div(g.OH, tiles), cap)));
    const i64 rows = ceil_div(g.OH, ntile);
    const i64 xrow = g.sh * g.sw * direct_row_pitch(g);
    // NHWC, and NCHW past kDirectMaxTaps (direct_kvec), run along the output
    // channels: the weight as [group][tap][Kg padded to whole vectors] (taps
    // (c, i, j)), the bias padded likewise.
    const bool kvec = !g.nhwc && !force_rows_kernel && direct_kvec(dk, g);
    const i64 Kp = ceil_div(Kg, 16) * 16;
    std::vector<T> wr, br;
    if (g.nhwc || kvec) {
        wr.assign(static_cast<std::size_t>(G * taps * Kp), T(0));
        for (i64 gi = 0; gi < G; ++gi)
            for (i64 c = 0; c < Cg; ++c)
                for (i64 ij = 0; ij < g.kh * g.kw; ++ij)
                    for (i64 k = 0; k < Kg; ++k)
                        wr[(gi * taps + c * g.kh * g.kw + ij) * Kp + k] =
                            g.nhwc ? w[(ij * Cg + c) * g.K + gi * Kg + k]
                                   : w[((gi * Kg + k) * Cg + c) * g.kh * g.kw + ij];
        if (bias) {
            br.assign(static_cast<std::size_t>(G * Kp), T(0));
            for (i64 gi = 0; gi < G; ++gi)
                for (i64 k = 0; k < Kg; ++k) br[gi * Kp + k] = bias[gi * Kg + k];
        }
    }
    // Where item it's rows start in x (NCHW): the rows buffer prefetches those
    // of item it + nt, most often this thread's next (items go out in order).
    const i64 nitems = g.N * G * ntile;
    auto x_offset = [&](i64 it) {
        const i64 tix = it % ntile, gi = (it / ntile) % G, n = it / (ntile * G);
        return g.nhwc ? i64(0) : ((n * g.C + gi * Cg) * g.H + tix * rows * g.sh) * g.W;
    };
    parallel_items(nitems, nt, std::is_same<T, float>::value, [&](i64 it) {
        const i64 tix = it % ntile, gi = (it / ntile) % G, n = it / (ntile * G);
        const i64 oh0 = tix * rows, nr = std::min(rows, g.OH - oh0);
        const i64 brows = rows_kernel ? ceil_div(nr, kDirectRowsTile) * kDirectRowsTile : nr;
        const i64 RB = direct_input_rows(g, brows);
        DirectScratch<T>& sc = direct_scratch<T>();
        T* buf = direct_rows_buffer(dk, sc, g, x, n, gi, oh0 * g.sh - g.pt, RB,
                                    direct_input_rows(g, nr), direct_rows_elems(g, brows),
                                    it + nt < nitems ? x_offset(it + nt) - x_offset(it) : 0);
        direct_taps(g, static_cast<const T*>(buf), RB, sc.tap);
        if (g.nhwc) {
            dk.fwd_nhwc(Kg, nr, g.OW, taps, sc.tap.data(), xrow, wr.data() + gi * taps * Kp, Kp,
                        bias ? br.data() + gi * Kp : nullptr,
                        y + (n * g.OH + oh0) * g.OW * g.K + gi * Kg, g.OW * g.K, g.K);
            return;
        }
        if (kvec) {
            dk.fwd_nchw_kvec(Kg, nr, g.OW, taps, sc.tap.data(), xrow, wr.data() + gi * taps * Kp,
                             Kp, bias ? br.data() + gi * Kp : nullptr,
                             y + ((n * g.K + gi * Kg) * g.OH + oh0) * g.OW, g.OW, P);
            return;
        }
        if (rows_kernel) {
            dk.fwd_nchw_rows(Kg, nr, g.OW, Cg, slide ? g.kh : 1, slide ? g.kw : g.kh * g.kw,
                             sc.tap.data(), xrow, w + gi * Kg * taps, taps,
                             bias ? bias + gi * Kg : nullptr,
                             y + ((n * g.K + gi * Kg) * g.OH + oh0) * g.OW, g.OW, P);
            return;
        }
        T* yn = y + ((n * g.K + gi * Kg) * g.OH + oh0) * g.OW;
        const T* wg = w + gi * Kg * taps;
        const T* bg = bias ? bias + gi * Kg : nullptr;
        if (direct_rows_in_place(dk, g, true)) {
            dk.fwd_nchw(Kg, nr, g.OW, taps, sc.tap.data(), xrow, wg, taps, bg, yn, g.OW, P);
            return;
        }
        const i64 crows = direct_plane_rows<T>(g, nr, i64(32) << 10);
        T* planes = sc.planes.get(static_cast<std::size_t>(taps * direct_plane_pitch(crows, g.OW)));
        sc.plane_ptr.resize(static_cast<std::size_t>(taps));
        for (i64 r0 = 0; r0 < nr; r0 += crows) {
            const i64 cr = std::min(crows, nr - r0);
            T* yc = yn + r0 * g.OW;
            const i64 shift = static_cast<i64>(reinterpret_cast<std::uintptr_t>(yc) % 64) /
                              static_cast<i64>(sizeof(T));
            direct_tap_planes(sc.tap.data(), taps, xrow, cr, g.OW, shift, planes,
                              sc.plane_ptr.data());
            for (i64 t = 0; t < taps; ++t) sc.tap[t] += cr * xrow;
            dk.fwd_nchw(Kg, 1, cr * g.OW, taps, sc.plane_ptr.data(), 0, wg, taps, bg, yc, 0, P);
        }
    });
}

// 3..kDirectRowsMaxBackwardIn input channels per group: only where the rows
// kernel measured faster than the GEMM path (lenet c3, f32 AVX-512: 1.37 vs
// 1.61 ms at 1 thread).  That needs the 32-register plan (64-byte vectors: a
// tile of 4 rows x MR channels) and dX rows within one vector; with AVX2's
// 16 registers the tile is one row and it was 20% slower (2.24 vs 1.84 ms).
template <class T>
bool direct_rows_backward_wide(const DirectKernels<T>& dk, const ConvGeom& g) {
    return dk.lanes * static_cast<i64>(sizeof(T)) == 64 && g.W <= dk.lanes;
}

// Stride-1 NCHW backward-input with 1..kDirectRowsMaxBackwardIn input channels per group is
// the forward conv of dY (K channels) into dX (C channels) with the weight
// flipped spatially and its channel axes swapped:
//   dX[c, h, x] = sum_{k,i,j} w[k, c, kh-1-i, kw-1-j] * dY[k, h + i*dh - pt', x + j*dw - pl']
// with pt' = dh*(kh-1) - pt, pl' likewise (the bottom / right padding follow
// from the sizes).  bias (C, may be null) is added to dX.  Returns false, having
// done nothing, when that forward does not go to fwd_nchw_rows.
template <class T>
bool direct_conv_backward_input(const ConvGeom& g, const T* gy, const T* w, const T* bias,
                                T* gx) {
    if (g.nhwc || g.sh != 1 || g.sw != 1 || g.Cg() > kDirectRowsMaxBackwardIn) return false;
    ConvGeom f = g;
    f.C = g.K;
    f.H = g.OH;
    f.W = g.OW;
    f.K = g.C;
    f.OH = g.H;
    f.OW = g.W;
    f.pt = g.dh * (g.kh - 1) - g.pt;
    f.pl = g.dw * (g.kw - 1) - g.pl;
    if (f.pt < 0 || f.pl < 0) return false;  // padding past the kernel's reach
    // Past kDirectRowsMaxOut the forward selection would not take the rows
    // kernel, so the checks of direct_forward_kernels_for are made here.
    if (f.taps() > kDirectRowsMaxTaps || !direct_one_row_fits(f)) return false;
    const DirectKernels<T>* dk = direct_kernels<T>();
    if (!dk || (g.Cg() > kDirectRowsMaxOut && !direct_rows_backward_wide(*dk, g))) return false;
    const i64 Cg = g.Cg(), Kg = g.Kg(), kh = g.kh, kw = g.kw;
    std::vector<T> wf(static_cast<std::size_t>(g.C * Kg * kh * kw));  // (C, K/groups, kh, kw)
    for (i64 gi = 0; gi < g.groups; ++gi)
        for (i64 c = 0; c < Cg; ++c)
            for (i64 k = 0; k < Kg; ++k)
                for (i64 i = 0; i < kh; ++i)
                    for (i64 j = 0; j < kw; ++j)
                        wf[(((gi * Cg + c) * Kg + k) * kh + i) * kw + j] =
                            w[(((gi * Kg + k) * Cg + c) * kh + kh - 1 - i) * kw + kw - 1 - j];
    direct_conv_forward(*dk, f, gy, wf.data(), bias, gx, true);
    return true;
}

// NCHW backward-input with many dY channels per group and few taps to gather
// (ae_enc1, seed_tf_ae: 32 dY channels into one dX channel; stem_s2: into 3
// channels with stride 2).  The flipped forward (above) copies the big side,
// dY, into a padded rows buffer, which costs about as much as its FMAs and
// waits on memory.  Here the padding goes to the small side instead:
//   cols[(c, i, j), p] = sum_k w[k, c, i, j] * dY[k, p]    (fwd_nchw, p flat over whole dY rows)
//   dX[c, a*sh - pt + i*dh, b*sw - pl + j*dw] += cols[(c, i, j), a*OW + b]
// so dY is read once, in place, with full vectors along its rows, and each
// dX element gathers Cg*kh*kw values (against Kg FMAs for each of them).
// The sums run in a fixed order (k, then (i, j)) whatever the tiling.
constexpr i64 kDirectColsMinOut = 16;   // dY channels per group, at least
constexpr i64 kDirectColsMaxTaps = 64;  // Cg*kh*kw rows of cols, at most
// cols of one item: stays in L2 between its writes and the gather.
constexpr i64 kDirectColsBytes = i64(512) << 10;

template <class T>
bool direct_conv_backward_input_cols(const ConvGeom& g, const T* gy, const T* w, const T* bias,
                                     T* gx) {
    const i64 Cg = g.Cg(), Kg = g.Kg(), G = g.groups, R = Cg * g.kh * g.kw;
    if (g.nhwc || Kg < kDirectColsMinOut || R > kDirectColsMaxTaps || g.OW < 1 || g.OH < 1)
        return false;
    const DirectKernels<T>* dkp = direct_kernels<T>();
    if (!dkp) return false;
    const DirectKernels<T>& dk = *dkp;
    const i64 P = g.OH * g.OW;
    // fwd_nchw's weight: per group [r][k] (r = (c, i, j) as in an OIHW row)
    std::vector<T> wt(static_cast<std::size_t>(G * R * Kg));
    for (i64 gi = 0; gi < G; ++gi)
        for (i64 k = 0; k < Kg; ++k)
            for (i64 r = 0; r < R; ++r) wt[(gi * R + r) * Kg + k] = w[(gi * Kg + k) * R + r];
    // Items: row tiles of dX of one image and group, each computing the cols
    // of the dY rows under it (kh*dh/sh rows more than its own share).
    const int nt = threads_for_work(double(g.N) * P * g.K * R);
    const i64 reach = (g.kh - 1) * g.dh;
    const i64 gy_rows_max =
        std::max<i64>(1, kDirectColsBytes / static_cast<i64>(sizeof(T) * R * g.OW));
    i64 th = std::max<i64>(1, (gy_rows_max - 1) * g.sh - reach);
    const i64 outer = g.N * G, want = 4 * static_cast<i64>(nt);
    if (outer < want) th = std::min(th, ceil_div(g.H, ceil_div(want, outer)));
    const i64 ntile = ceil_div(g.H, std::min(th, g.H));
    th = ceil_div(g.H, ntile);
    // dY rows [lo, hi) whose windows touch dX rows [h0, h1)
    auto gy_rows = [&](i64 h0, i64 h1) {
        const i64 a = h0 + g.pt - reach;
        const i64 lo = std::min(g.OH, a <= 0 ? i64(0) : ceil_div(a, g.sh));
        const i64 hi = std::min(g.OH, floor_div(h1 - 1 + g.pt, g.sh) + 1);
        return std::array<i64, 2>{lo, std::max(lo, hi)};
    };
    const i64 vec = dk.lanes;
    // columns per fwd_nchw call: a piece of dY of about 32 KB, whole 64-byte lines
    const i64 qc = std::max<i64>(
        64, (i64(32) << 10) / static_cast<i64>(sizeof(T) * Kg) / 64 * 64);
    parallel_items(g.N * G * ntile, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 tix = it % ntile, gi = (it / ntile) % G, n = it / (ntile * G);
        const i64 h0 = tix * th, h1 = std::min(g.H, h0 + th);
        const std::array<i64, 2> ar = gy_rows(h0, h1);
        const i64 q = (ar[1] - ar[0]) * g.OW;  // cols per row of cols
        const i64 ldc = ceil_div(q, 16) * 16;
        DirectScratch<T>& sc = direct_scratch<T>();
        T* cols = sc.planes.get(static_cast<std::size_t>(R * ldc));
        if (q > 0) {
            sc.plane_ptr.resize(static_cast<std::size_t>(Kg));
            const T* base = gy + ((n * g.K + gi * Kg) * g.OH + ar[0]) * g.OW;
            for (i64 k = 0; k < Kg; ++k) sc.plane_ptr[k] = base + k * P;
            // fwd_nchw reads whole vectors: past the last one of dY, a padded copy
            std::vector<T> tail;
            if (n == g.N - 1 && gi == G - 1 && ar[1] == g.OH) {
                tail.assign(static_cast<std::size_t>(q + vec), T(0));
                std::copy(sc.plane_ptr[Kg - 1], sc.plane_ptr[Kg - 1] + q, tail.begin());
                sc.plane_ptr[Kg - 1] = tail.data();
            }
            // in pieces of qc columns: fwd_nchw sweeps its input once per block of
            // output channels, so a piece of dY stays in L1 between the sweeps
            // and comes from memory once
            sc.tap.resize(static_cast<std::size_t>(Kg));
            constexpr i64 kLine = 64 / static_cast<i64>(sizeof(T));
            for (i64 q0 = 0; q0 < q; q0 += qc) {
                for (i64 k = 0; k < Kg; ++k) sc.tap[k] = sc.plane_ptr[k] + q0;
                // the next piece comes in from memory while this one computes
                if (q0 + qc < q)
                    for (i64 k = 0; k < Kg; ++k)
                        for (i64 e = qc; e < std::min(2 * qc, q - q0); e += kLine)
                            prefetch_read(sc.tap[k] + e);
                dk.fwd_nchw(R, 1, std::min(qc, q - q0), Kg, sc.tap.data(), 0,
                            wt.data() + gi * R * Kg, Kg, nullptr, cols + q0, 0, ldc);
            }
        }
        for (i64 c = 0; c < Cg; ++c)
            for (i64 h = h0; h < h1; ++h) {
                T* d = gx + ((n * g.C + gi * Cg + c) * g.H + h) * g.W;
                const T b0 = bias ? bias[gi * Cg + c] : T(0);
                for (i64 x = 0; x < g.W; ++x) d[x] = b0;
                for (i64 i = 0; i < g.kh; ++i) {
                    const i64 t = h + g.pt - i * g.dh;
                    if (t < 0 || t % g.sh != 0 || t / g.sh >= ar[1]) continue;
                    const i64 a = t / g.sh - ar[0];
                    for (i64 j = 0; j < g.kw; ++j) {
                        const i64 off = j * g.dw - g.pl;  // x = b*sw + off
                        const i64 lo = std::max<i64>(0, ceil_div(-off, g.sw));
                        const i64 hi = std::min(g.OW, floor_div(g.W - 1 - off, g.sw) + 1);
                        const T* s = cols + ((c * g.kh + i) * g.kw + j) * ldc + a * g.OW;
                        T* dd = d + off;
                        if (g.sw == 1)
                            for (i64 b = lo; b < hi; ++b) dd[b] += s[b];
                        else
                            for (i64 b = lo; b < hi; ++b) dd[b * g.sw] += s[b];
                    }
                }
            }
    });
    return true;
}

// Work items of backward-filter: whole images, or row tiles of them when the
// batch alone cannot feed kDirectFilterChunks chunks or an image's rows buffer
// would not fit the budget.
constexpr i64 kDirectFilterChunks = 16;

// NCHW: x (N,C,H,W), gy (N,K,OH,OW) -> gw (K,C/g,kh,kw)
// NHWC: x (N,H,W,C), gy (N,OH,OW,K) -> gw (kh,kw,C/g,K)
// The (image, row tile) items are cut into a fixed number of contiguous
// chunks (not tied to the thread count, so an idle thread can take the next
// one when a busy machine deschedules another); each chunk yields its own
// partial gw and the partials are added in chunk order.  Within a chunk the
// order is fixed too, so the result does not depend on threads or scheduling.
template <class T>
void direct_conv_backward_filter(const DirectKernels<T>& dk, const ConvGeom& g, const T* x,
                                 const T* gy, T* gw) {
    const i64 Cg = g.Cg(), Kg = g.Kg(), G = g.groups, taps = g.taps(), P = g.OH * g.OW;
    const int nt = threads_for_work(double(g.N) * P * g.K * taps);
    const i64 cpi0 = std::max(ceil_div(kDirectFilterChunks, g.N),
                              ceil_div(g.OH, direct_rows_cap<T>(g)));
    const i64 rows = ceil_div(g.OH, std::min(g.OH, cpi0));
    const i64 cpi = ceil_div(g.OH, rows);
    const i64 items = g.N * cpi;
    // (fewer chunks only when their partials would exceed ~16 MB: huge K x taps)
    // NCHW past kDirectMaxTaps runs along the dY channels, as NHWC does (direct_kvec).
    const bool kvec = !g.nhwc && direct_kvec(dk, g), along_k = g.nhwc || kvec;
    const bool in_place = !along_k && direct_rows_in_place(dk, g, false);
    const i64 chunk_bytes = g.K * taps * (along_k ? 1 : dk.lanes) * static_cast<i64>(sizeof(T));
    const i64 nchunks = std::min(items, std::min(kDirectFilterChunks,
                                                 std::max<i64>(nt, (i64(16) << 20) / chunk_bytes)));
    const i64 xrow = g.sh * g.sw * direct_row_pitch(g);
    // A chunk's accumulators, per group: NCHW [Kg][taps][lanes] vectors (the
    // kernel's dot products; lanes are summed once, at the end), NHWC and
    // kvec [taps][Kg padded].
    const i64 L = dk.lanes, Kp = ceil_div(Kg, 16) * 16;
    const i64 per_group = along_k ? taps * Kp : Kg * taps * L;
    const i64 per_chunk = G * per_group;
    // (uninitialised: each chunk zeroes its own, in parallel)
    std::unique_ptr<T[]> part(new T[static_cast<std::size_t>(nchunks * per_chunk)]);
    // dY rows per NHWC kernel call: the call's slice of dY stays in L1/L2
    // while the kernel sweeps it once per tile of taps.
    const i64 nhwc_rows =
        std::max<i64>(1, (i64(32) << 10) / static_cast<i64>(sizeof(T) * Kg * g.OW));

    parallel_items(nchunks, nt, std::is_same<T, float>::value, [&](i64 ch) {
        DirectScratch<T>& sc = direct_scratch<T>();
        T* acc = part.get() + ch * per_chunk;
        std::fill(acc, acc + per_chunk, T(0));
        const i64 it1 = (ch + 1) * items / nchunks;
        for (i64 it = ch * items / nchunks; it < it1; ++it) {
            const i64 n = it / cpi, oh0 = (it % cpi) * rows, nr = std::min(rows, g.OH - oh0);
            const i64 RB = direct_input_rows(g, nr);
            const i64 elems = direct_rows_elems(g, nr);
            // (kvec and in place: the kernel sweeps the rows in one call)
            const i64 crows = g.nhwc ? nhwc_rows
                              : kvec || in_place ? nr
                                                 : direct_plane_rows<T>(g, nr, i64(256) << 10);
            T* planes = along_k || in_place ? nullptr
                               : sc.planes.get(static_cast<std::size_t>(
                                     taps * direct_plane_pitch(crows, g.OW)));
            sc.plane_ptr.resize(static_cast<std::size_t>(taps));
            for (i64 gi = 0; gi < G; ++gi) {
                const T* buf = direct_rows_buffer(dk, sc, g, x, n, gi, oh0 * g.sh - g.pt, RB,
                                                   RB, elems);
                direct_taps(g, buf, RB, sc.tap);
                T* ag = acc + gi * per_group;
                for (i64 r0 = 0; r0 < nr; r0 += crows) {
                    const i64 cr = std::min(crows, nr - r0);
                    if (kvec) {
                        dk.bwf_nchw_kvec(Kg, cr, g.OW, taps, sc.tap.data(), xrow,
                                         gy + ((n * g.K + gi * Kg) * g.OH + oh0 + r0) * g.OW,
                                         g.OW, P, ag, Kp);
                    } else if (!g.nhwc && in_place) {
                        dk.bwf_nchw(Kg, cr, g.OW, taps, sc.tap.data(), xrow,
                                    gy + ((n * g.K + gi * Kg) * g.OH + oh0 + r0) * g.OW, g.OW, P,
                                    ag, taps * L);
                    } else if (!g.nhwc) {
                        direct_tap_planes(sc.tap.data(), taps, xrow, cr, g.OW, i64(0), planes,
                                          sc.plane_ptr.data());
                        dk.bwf_nchw(Kg, 1, cr * g.OW, taps, sc.plane_ptr.data(), 0,
                                    gy + ((n * g.K + gi * Kg) * g.OH + oh0 + r0) * g.OW, 0, P,
                                    ag, taps * L);
                    } else {
                        dk.bwf_nhwc(Kg, cr, g.OW, taps, sc.tap.data(), xrow,
                                    gy + (n * g.OH + oh0 + r0) * g.OW * g.K + gi * Kg,
                                    g.OW * g.K, g.K, ag, Kp);
                    }
                    for (i64 t = 0; t < taps; ++t) sc.tap[t] += cr * xrow;
                }
            }
        }
    });

    // chunks in order (element-wise, split over the threads: a serial sum of
    // stem_s2's 16 partials of 32 x 27 x 16 lanes was 3% of its time on one
    // thread, and left the other idle), then (NCHW) the lanes
    T* sum = part.get();
    add_partials(sum, part.get() + per_chunk, nchunks, per_chunk, nt);
    for (i64 gi = 0; gi < G; ++gi)
        for (i64 k = 0; k < Kg; ++k)
            for (i64 c = 0; c < Cg; ++c)
                for (i64 ij = 0; ij < g.kh * g.kw; ++ij) {
                    const i64 t = c * g.kh * g.kw + ij;
                    const T* e = sum + gi * per_group;
                    if (kvec) {
                        gw[(gi * Kg + k) * taps + t] = e[t * Kp + k];
                    } else if (!g.nhwc) {
                        e += (k * taps + t) * L;
                        T v = e[0];
                        for (i64 l = 1; l < L; ++l) v += e[l];
                        gw[(gi * Kg + k) * taps + t] = v;
                    } else {
                        gw[(ij * Cg + c) * g.K + gi * Kg + k] = e[t * Kp + k];
                    }
                }
}

}  // namespace aek
