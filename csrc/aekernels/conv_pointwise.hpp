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
void flat_rows_gemm(i64 R, i64 G, i64 nred, i64 nout, const T* src, i64 src_ld, T* out,
                    i64 out_ld, const T* bias, int nt, WeightOf&& weight_of) {
    const UKernel<T>& uk = ukernel<T>();
    std::vector<PrePacked<T>> wp;
    wp.reserve(static_cast<std::size_t>(G));
    for (i64 gi = 0; gi < G; ++gi) wp.emplace_back(nout, nred, uk.nr, gemm_kc(uk, nred));
    const i64 wtile = flat_row_tile(nout, G, uk.nr, nt), nwtile = ceil_div(nout, wtile);
    parallel_items(G * nwtile, nt, false, [&](i64 it) {
        const i64 gi = it / nwtile, o0 = (it % nwtile) * wtile;
        wp[gi].pack_outer(weight_of(gi), o0, std::min(nout, o0 + wtile));
    });
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

// y (R, K) = x (R, C) * W per group, + bias (K, may be null).
template <class T>
void flat_pointwise_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
    const int nt = threads_for_work(double(g.N) * g.H * g.W * g.K * g.Cg());
    flat_rows_gemm(g.N * g.H * g.W, g.groups, g.Cg(), g.Kg(), x, g.C, y, g.K, bias, nt,
                   [&](i64 gi) {
                       const FlatWeight<T> fw = flat_weight(g, w, gi);
                       return DensePack<T>{fw.base, fw.ks, fw.cs};  // (c, k): outer k
                   });
}

// gx (R, C) = gy (R, K) * W^T per group, + bias (C, may be null: conv_transpose2d).
template <class T>
void flat_pointwise_backward_input(const ConvGeom& g, const T* gy, const T* w, const T* bias,
                                   T* gx) {
    const int nt = threads_for_work(double(g.N) * g.H * g.W * g.K * g.Cg());
    flat_rows_gemm(g.N * g.H * g.W, g.groups, g.Kg(), g.Cg(), gy, g.K, gx, g.C, bias, nt,
                   [&](i64 gi) {
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

// NHWC: gw (Cg, K) rows c, columns k; NCHW (H*W == 1): gw (K, Cg) rows k, columns c.
// Per group the GEMM is gw_g(a, b) = sum_r A(r, a) B(r, b) with A the
// activation on the gw rows side (x for NHWC, gy for NCHW) and B the other.
template <class T>
void flat_pointwise_backward_filter(const ConvGeom& g, const T* x, const T* gy, T* gw) {
    const UKernel<T>& uk = ukernel<T>();
    const i64 R = g.N * g.H * g.W, Cg = g.Cg(), Kg = g.Kg(), G = g.groups, wsize = g.K * Cg;
    const int nt = threads_for_work(double(R) * g.K * Cg);
    const FlatCols<T> xs{x, g.C}, ys{gy, g.K};
    const FlatCols<T> A = g.nhwc ? xs : ys, B = g.nhwc ? ys : xs;
    const i64 na = g.nhwc ? Cg : Kg, nb = g.nhwc ? Kg : Cg;  // per group
    const i64 ldc = g.nhwc ? g.K : Cg;
    auto gw_of = [&](i64 gi) { return g.nhwc ? gi * Kg : gi * Kg * Cg; };

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
        T* out = (ch == 0 ? gw : partial.data() + (ch - 1) * wsize) + gw_of(gi);
        gemm_packed(uk, split_a ? no : na, split_a ? nb : no, nr,
                    DensePack<T>{A.p + r0 * A.ld + gi * na + a0, 1, A.ld},
                    DensePack<T>{B.p + r0 * B.ld + gi * nb + b0, 1, B.ld},
                    CView<T>{out + a0 * ldc + b0, ldc}, false, thread_workspace<T>());
    });

    add_partials(gw, partial.data(), nchunks, wsize, nt);
}

}  // namespace aek
