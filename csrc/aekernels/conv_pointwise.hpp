// Pointwise convs (1x1, stride 1, no padding) whose pixels x channels of the
// whole batch form one row-major matrix: every NHWC one (x is (N*H*W, C)) and
// NCHW ones with H*W == 1 ((N, C, 1, 1) is (N, C) too).  Each direction is
// then one GEMM over R = N*H*W rows instead of one per image: with few pixels
// per image the per-image GEMMs are GEMVs that re-read the packed weight for
// every image (x (128, 400, 1, 1) -> 120 channels: ~10x slower than one GEMM).
//
// Per group gi, with the weight as W(c, k) (HWIO: w[c*K + gi*Kg + k]; OIHW:
// w[(gi*Kg + k)*Cg + c]) and the group's channels as a column offset:
//   forward          Y(r, k)  = sum_c X(r, c) W(c, k)
//   backward-input   dX(r, c) = sum_k dY(r, k) W(c, k)
//   backward-filter  dW(c, k) = sum_r X(r, c) dY(r, k)
// all run by the packed GEMM driver (gemm.hpp) with DensePack operands.
// They take precedence over the direct kernels of few-channel convs
// (conv_direct.hpp) except NHWC forward / backward-filter ones: those work
// per image plane (a single pixel with H*W == 1: NCHW (256, 64, 1, 1) -> 2
// channels took 181 us, the GEMM 27 us), but NHWC rows of a few channels are
// theirs (NHWC (64, 7, 7, 4) -> 64 backward-filter: 47 us direct, 116 us as
// a GEMM with 4 of its 14 rows per tile used).
//
// NCHW ones with H*W > 1 (after the direct kernels of few channels) are one
// GEMM over the batch too, with the images side by side as its N*H*W
// columns (nchw_cols_gemm, BatchColsPack / BatchPixelPack operands).
#pragma once

#include <vector>

#include "aekernels/common.hpp"
#include "aekernels/gemm.hpp"
#include "aekernels/geometry.hpp"
#include "aekernels/pack.hpp"

namespace aek {

inline bool is_pointwise(const ConvGeom& g) {
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
           g.OH == g.H && g.OW == g.W;
}

inline bool is_flat_pointwise(const ConvGeom& g) {
    return is_pointwise(g) && (g.nhwc || g.H * g.W == 1);
}

// A row-major (R, ld) activation matrix; group gi's channels are a column offset.
template <class T>
struct FlatCols {
    const T* p;
    i64 ld;
};

// The weight of group gi as W(c, k) = base[c*cs + k*ks].
template <class T>
struct FlatWeight {
    const T* base;
    i64 cs, ks;
};

template <class T>
FlatWeight<T> flat_weight(const ConvGeom& g, const T* w, i64 gi) {
    const i64 Cg = g.Cg(), Kg = g.Kg();
    if (g.nhwc) return {w + gi * Kg, g.K, 1};
    return {w + gi * Kg * Cg, 1, Cg};
}

// Rows (or weight columns) per work item of forward / backward-input: whole
// register tiles, about four items per thread over all groups, one item per
// group on one thread.  (A row tile packs only its own rows and the weight is
// packed once per call, so small items cost little.)
inline i64 flat_row_tile(i64 R, i64 groups, i64 MR, int nt) {
    const i64 panels = ceil_div(R, MR);
    const i64 want = nt > 1 ? 4 * static_cast<i64>(nt) : 1;
    const i64 per_group = std::max<i64>(1, ceil_div(want, groups));
    return std::max<i64>(1, panels / per_group) * MR;
}

// out(r, j) (+ bias[j]) = sum_t L(r, t) * Wt(t, j) over the R rows, j < nout,
// t < nred, per group; L(r, t) = src[r*src_ld + gi*nred + t], Wt(t, j) from
// the packer made by weight_of(gi) (outer j, reduction t), out row stride out_ld.
// The weight is packed once, by work items of its own (with a few rows per
// image it is about as large as the activations: packed serially, it was a
// quarter of the call at two threads).
template <class T, class WeightOf>
std::vector<PrePacked<T>> pack_group_weights(i64 G, i64 nred, i64 nout, i64 R, int nt,
                                             WeightOf&& weight_of) {
    const UKernel<T>& uk = ukernel<T>();
    std::vector<PrePacked<T>> wp;
    wp.reserve(static_cast<std::size_t>(G));
    for (i64 gi = 0; gi < G; ++gi) wp.emplace_back(nout, nred, R, gemm_kc(uk, nred));
    const i64 wtile = flat_row_tile(nout, G, R, nt), nwtile = ceil_div(nout, wtile);
    parallel_items(G * nwtile, nt, false, [&](i64 it) {
        const i64 gi = it / nwtile, o0 = (it % nwtile) * wtile;
        wp[gi].pack_outer(weight_of(gi), o0, std::min(nout, o0 + wtile));
    });
    return wp;
}

template <class T, class WeightOf>
void flat_rows_gemm(i64 R, i64 G, i64 nred, i64 nout, const T* src, i64 src_ld, T* out,
                    i64 out_ld, const T* bias, int nt, WeightOf&& weight_of) {
    const UKernel<T>& uk = ukernel<T>();
    const std::vector<PrePacked<T>> wp = pack_group_weights<T>(G, nred, nout, uk.nr, nt, weight_of);
    const i64 tile = flat_row_tile(R, G, uk.mr, nt), ntile = ceil_div(R, tile);
    parallel_items(G * ntile, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 gi = it / ntile, r0 = (it % ntile) * tile, nr = std::min(tile, R - r0);
        T* o = out + r0 * out_ld + gi * nout;
        gemm_packed(uk, nr, nout, nred, DensePack<T>{src + r0 * src_ld + gi * nred, src_ld, 1},
                    wp[gi], CView<T>{o, out_ld}, false, thread_workspace<T>());
        if (bias)
            for (i64 r = 0; r < nr; ++r)
                for (i64 j = 0; j < nout; ++j) o[r * out_ld + j] += bias[gi * nout + j];
    });
}

// Column items of nchw_cols_gemm: at least this many per thread (dynamic
// scheduling evens out a thread that falls behind), and at most about this
// many columns each (the packed B block of an item stays within L2).
constexpr i64 kNchwColsMinItems = 4;
constexpr i64 kNchwColsPerItem = 2048;
// Items are whole images (or parts) when an image wastes at most 1/this of its
// columns in a ragged last tile.
constexpr i64 kNchwImageWaste = 32;

// NCHW with H*W = P > 1, per group: out(j, n*P + p) = sum_t Wt(j, t) S(n, t, p)
// (+ bias[j]) with S(n, t, p) = src[(n*G*nred + gi*nred + t)*P + p], out
// likewise with nout channels: the images side by side as the N*P columns of
// one GEMM.  Image by image, P columns ended in a ragged register tile (14x14
// pixels: 196 of 224 columns used) and the items were whole images (8 images
// on 2 threads: 4 each, nothing to even out a late thread).  The weight is
// packed once; columns are cut into balanced ranges of whole tiles.  Images
// whose pixels fill whole tiles but for a few percent stay items of their own
// (or parts of one): across images, x (32, 64, 56, 56) -> 64 was ~15% slower
// (shorter runs of each source row per item).
template <class T, class WeightOf>
void nchw_cols_gemm(i64 N, i64 P, i64 G, i64 nred, i64 nout, const T* src, T* out,
                    const T* bias, int nt, WeightOf&& weight_of) {
    const UKernel<T>& uk = ukernel<T>();
    const std::vector<PrePacked<T>> wp = pack_group_weights<T>(G, nred, nout, uk.mr, nt, weight_of);
    const bool by_image = (ceil_div(P, uk.nr) * uk.nr - P) * kNchwImageWaste <= P;
    const i64 cols = N * P, span = by_image ? P : cols, nspan = by_image ? N : 1;
    const i64 panels = ceil_div(span, uk.nr);
    const i64 want = std::max<i64>(kNchwColsMinItems * nt, ceil_div(cols, kNchwColsPerItem));
    const i64 parts = std::min(panels, std::max<i64>(1, ceil_div(want, G * nspan)));
    parallel_items(G * nspan * parts, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 gi = it / (nspan * parts), part = it % parts, s0 = (it / parts) % nspan * span;
        const i64 c0 = s0 + part * panels / parts * uk.nr;
        const i64 c1 = std::min(s0 + span, s0 + (part + 1) * panels / parts * uk.nr);
        T* o = out + gi * nout * P;
        const BatchColsPack<T> S{src + gi * nred * P, P, P, G * nred * P, c0};
        const CView<T> cv{o, P, nullptr, nullptr, P, G * nout * P, c0};
        gemm_packed(uk, nout, c1 - c0, nred, wp[gi], S, cv, false, thread_workspace<T>());
        if (bias)
            for (i64 c = c0; c < c1;) {
                const i64 n = c / P, p0 = c % P, p1 = std::min(P, p0 + c1 - c);
                T* img = o + n * G * nout * P;
                for (i64 j = 0; j < nout; ++j) {
                    const T b = bias[gi * nout + j];
                    for (i64 p = p0; p < p1; ++p) img[j * P + p] += b;
                }
                c += p1 - p0;
            }
    });
}

// Forward / backward-input over R = N*H*W pixels: rows of one matrix (flat)
// or, NCHW, columns of the images side by side; weight_of(gi) packs W(j, t),
// outer j < nout, reduction t < nred.
template <class T, class WeightOf>
void pointwise_gemm(const ConvGeom& g, i64 nred, i64 nout, const T* src, T* out, const T* bias,
                    WeightOf&& weight_of) {
    const i64 P = g.H * g.W;
    const int nt = threads_for_work(double(g.N) * P * nred * nout * g.groups);
    if (g.nhwc || P == 1)
        flat_rows_gemm(g.N * P, g.groups, nred, nout, src, g.groups * nred, out,
                       g.groups * nout, bias, nt, weight_of);
    else
        nchw_cols_gemm(g.N, P, g.groups, nred, nout, src, out, bias, nt, weight_of);
}

// y = x * W per group, + bias (K, may be null).
template <class T>
void pointwise_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
    pointwise_gemm(g, g.Cg(), g.Kg(), x, y, bias, [&](i64 gi) {
        const FlatWeight<T> fw = flat_weight(g, w, gi);
        return DensePack<T>{fw.base, fw.ks, fw.cs};  // (c, k): outer k
    });
}

// gx = gy * W^T per group, + bias (C, may be null: conv_transpose2d).
template <class T>
void pointwise_backward_input(const ConvGeom& g, const T* gy, const T* w, const T* bias, T* gx) {
    pointwise_gemm(g, g.Kg(), g.Cg(), gy, gx, bias, [&](i64 gi) {
        const FlatWeight<T> fw = flat_weight(g, w, gi);
        return DensePack<T>{fw.base, fw.cs, fw.ks};  // (k, c): outer c
    });
}

// Backward-filter reduces over the R rows in fixed chunks that depend on the
// shape (and the ISA's K block) only: at least kFlatFilterMinRows rows each,
// at most kFlatFilterMaxChunks, their partials within ~16 MB, lengths rounded
// up to whole K blocks; chunk 0 writes gw,
// the others partials that are added in chunk order.  Every element then sees
// the same sums in the same order whatever the thread count or schedule (the
// output blocks that feed the threads do not change any element's sums: the
// micro-kernels add a tile's products to C exactly as the edge-tile path does).
// A chunk costs one more pass over its partial, about what the driver already
// spends on C per K block (two blocks make kFlatFilterMinRows); an output
// block re-packs the other operand over the chunk's rows, which for channel
// counts of a few hundred costs more (x (8, 14, 14, 256) -> 256 at two
// threads, busy machine: 1.26 ms median with four output blocks of one
// chunk, 1.11 on the old per-image path; with three chunks, 1.12 best).
constexpr i64 kFlatFilterMinRows = 512;
constexpr i64 kFlatFilterMaxChunks = 4;

inline i64 flat_filter_chunks(i64 R, i64 wbytes) {
    const i64 by_rows = std::max<i64>(1, R / kFlatFilterMinRows);
    const i64 by_bytes = 1 + (i64(16) << 20) / std::max<i64>(1, wbytes);
    return std::min(std::min(by_rows, by_bytes), kFlatFilterMaxChunks);
}

// Per group gw_g(a, b) = sum_r A(r, a) B(r, b) over R reduction indices in the
// chunks above, into gw (row stride ldc, group gi at gw + gi*goff); a_of(gi,
// a0, r0) / b_of(gi, b0, r0) make the packers of A / B from outer index a0 /
// b0 and reduction index r0 on.
template <class T, class AOf, class BOf>
void filter_chunks_gemm(i64 R, i64 G, i64 na, i64 nb, i64 ldc, i64 goff, T* gw, int nt,
                        AOf&& a_of, BOf&& b_of) {
    const UKernel<T>& uk = ukernel<T>();
    const i64 wsize = G * na * nb;
    // whole K blocks per chunk but the last (a ragged block costs a pass over C)
    const i64 KC = gemm_kc(uk, R);
    const i64 clen = ceil_div(ceil_div(R, flat_filter_chunks(R, wsize * i64(sizeof(T)))), KC) * KC;
    const i64 nchunks = ceil_div(R, clen);
    // Output blocks (when the chunks and groups do not give every thread two
    // items) split the larger side of gw_g, so that the operand each block
    // packs again (the other side, over the chunk's rows) is the smaller one.
    const bool split_a = na >= nb;
    const i64 side = split_a ? na : nb, R0 = split_a ? uk.mr : uk.nr;
    const i64 want = nt > 1 ? ceil_div(2 * static_cast<i64>(nt), nchunks * G) : 1;
    const i64 blk = ceil_div(ceil_div(side, std::min(want, ceil_div(side, R0))), R0) * R0;
    const i64 nblk = ceil_div(side, blk);
    std::vector<T> partial(static_cast<std::size_t>((nchunks - 1) * wsize));

    parallel_items(nchunks * G * nblk, nt, kFlushDenormals<T>, [&](i64 it) {
        const i64 bk = it % nblk, gi = (it / nblk) % G, ch = it / (nblk * G);
        const i64 r0 = ch * clen, nr = std::min(clen, R - r0);
        const i64 o0 = bk * blk, no = std::min(blk, side - o0);
        const i64 a0 = split_a ? o0 : 0, b0 = split_a ? 0 : o0;
        T* out = (ch == 0 ? gw : partial.data() + (ch - 1) * wsize) + gi * goff;
        gemm_packed(uk, split_a ? no : na, split_a ? nb : no, nr, a_of(gi, a0, r0),
                    b_of(gi, b0, r0), CView<T>{out + a0 * ldc + b0, ldc}, false,
                    thread_workspace<T>());
    });

    add_partials(gw, partial.data(), nchunks, wsize, nt);
}

// NHWC: gw (Cg, K) rows c, columns k, reduced over the N*H*W rows of x / gy;
// NCHW: gw (K, Cg) rows k, columns c, reduced over the pixels of the batch
// (H*W == 1: the rows of x / gy as (N, C) matrices).
// Per group A is the activation on the gw rows side (x for NHWC, gy for NCHW)
// and B the other.
template <class T>
void pointwise_backward_filter(const ConvGeom& g, const T* x, const T* gy, T* gw) {
    const i64 P = g.H * g.W, R = g.N * P, Cg = g.Cg(), Kg = g.Kg(), G = g.groups;
    const int nt = threads_for_work(double(R) * g.K * Cg);
    const i64 na = g.nhwc ? Cg : Kg, nb = g.nhwc ? Kg : Cg;  // per group
    const i64 ldc = g.nhwc ? g.K : Cg, goff = g.nhwc ? Kg : Kg * Cg;
    if (!g.nhwc && P > 1) {
        // channel o of group gi, pixel j of the batch: (N, G*n_side, P) arrays
        auto pixels = [&](const T* base, i64 nside) {
            return [=, pack_t = ukernel<T>().pack_t](i64 gi, i64 o0, i64 r0) {
                return BatchPixelPack<T>{base + (gi * nside + o0) * P, P, P, G * nside * P, r0,
                                         pack_t};
            };
        };
        return filter_chunks_gemm<T>(R, G, na, nb, ldc, goff, gw, nt, pixels(gy, Kg),
                                     pixels(x, Cg));
    }
    const FlatCols<T> xs{x, g.C}, ys{gy, g.K};
    const FlatCols<T> A = g.nhwc ? xs : ys, B = g.nhwc ? ys : xs;
    auto rows = [&](const FlatCols<T>& m, i64 nside) {
        return [=](i64 gi, i64 o0, i64 r0) {
            return DensePack<T>{m.p + r0 * m.ld + gi * nside + o0, 1, m.ld};
        };
    };
    filter_chunks_gemm<T>(R, G, na, nb, ldc, goff, gw, nt, rows(A, na), rows(B, nb));
}

}  // namespace aek
