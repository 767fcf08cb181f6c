// Direct conv kernels for a small reduction (C/groups * kh * kw taps), written
// once against the vector-traits interface of simd_templates.hpp and compiled
// in every ISA translation unit (conv_direct*.cpp) with that unit's traits, so
// each instantiation has internal linkage.  Nothing but <cstdint> here.
//
// With few taps a conv is bound by the traffic of its big side (y, or dY for
// backward-filter), so these kernels read every tap straight from padded input
// rows (see conv_direct.hpp: tap[t] points at the input element of output
// column 0 of row 0, row r is tap[t] + r * xrow) and touch y / dY exactly once,
// in place: no slab, no packed panels, no staging buffer.
//
// Traits V as in simd_templates.hpp plus: add(a, b), store_part(p, r, n)
// (lanes [0, n) of r to p, n in [1, W]), load_part with n in [1, W].
#pragma once

#include <cstdint>

namespace aek {
namespace direct {

using i64 = std::int64_t;

template <int K>
struct Int {
    static constexpr int value = K;
};

// f(Int<n>{}) for a run-time n in [1, MAX]: register tiles are compile-time
// sized so their accumulators stay in registers; this picks the instantiation.
template <int MAX, class F>
inline void with_int(i64 n, F&& f) {
    if constexpr (MAX > 1) {
        if (n < MAX) {
            with_int<MAX - 1>(n, f);
            return;
        }
    }
    f(Int<MAX>{});
}

// Write-intent prefetch: the output of these kernels goes to memory, and
// fetching the next tile's lines while this tile computes lets the two overlap.
// AEK_PREFETCH_R: a read prefetch into L2 (e.g. bwf_nchw's next dY block).
// Prefetches never fault, so the addresses may run past the arrays' ends.
#if defined(__GNUC__) || defined(__clang__)
#define AEK_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#define AEK_PREFETCH_R(p) __builtin_prefetch((p), 0, 2)
#else
#define AEK_PREFETCH_W(p) ((void)0)
#define AEK_PREFETCH_R(p) ((void)0)
#endif

// p itself, hidden from the optimiser: the kernels broadcast from p + a
// constant, but GCC re-associates tap[t] + xo + c into tap[t] + (xo + c) and
// keeps every loop-invariant xo + c in its own register (spilled once there
// are more than a few), instead of one pointer with constant displacements.
// (A template over V like everything here, see below.)
template <class V>
inline const typename V::T* opaque(const typename V::T* p) {
#if defined(__GNUC__) || defined(__clang__)
    asm("" : "+r"(p));
#endif
    return p;
}

// Valid lanes of the last of nv vectors covering n remaining elements (1..W).
// Every function here is a template over the traits V (or over a lambda of
// one): an inline function shared by the ISA units and the generic one could
// be linked as a single (AVX) copy for all of them.
template <class V>
inline int lanes_in_last(i64 n, i64 nv) {
    const i64 rest = n - (nv - 1) * V::W;
    return static_cast<int>(rest < V::W ? rest : V::W);
}

// Blocks of at most MAX items covering n, sized evenly (9 = 5 + 4, not 6 + 3),
// so the last block is not a mostly idle tile: f(first, count).
template <class F>
inline void even_blocks(i64 n, i64 max, F&& f) {
    const i64 nblk = (n + max - 1) / max;
    i64 first = 0;
    for (i64 b = 0; b < nblk; ++b) {
        const i64 cnt = (n - first + (nblk - b) - 1) / (nblk - b);
        f(first, cnt);
        first += cnt;
    }
}

// ------------------------------------------------------------ rows buffer copy
// d[c*lddc + r*lddr + e] = s[c*ldsc + r*ldsr + e] for c < nc, r < nr, e < len:
// the rows of x into a rows buffer (conv_direct.hpp), in whole vectors with
// a partial last one, so that the zeros on either side stay.  (The baseline
// build's copies move 16 bytes at a time; these rows are a few vectors long
// and the copy costs about as much as the FMAs of a few-output conv.)
// With pf != 0, the same lines pf elements on (the rows a later item of this
// thread copies) are prefetched, one per line copied: the copy waits on
// memory otherwise, and these come in while the kernel computes.
template <class V>
void copy_rows(i64 nc, i64 nr, i64 len, const typename V::T* s, i64 ldsc, i64 ldsr,
               typename V::T* d, i64 lddc, i64 lddr, i64 pf) {
    using T = typename V::T;
    constexpr int W = V::W;
    constexpr i64 kLine = 64 / static_cast<i64>(sizeof(T));
    const i64 full = len - len % W;
    const int rem = static_cast<int>(len - full);
    for (i64 c = 0; c < nc; ++c)
        for (i64 r = 0; r < nr; ++r) {
            const T* sr = s + c * ldsc + r * ldsr;
            T* dr = d + c * lddc + r * lddr;
            if (pf != 0)
                for (i64 e = 0; e < len + kLine - 1; e += kLine) AEK_PREFETCH_R(sr + pf + e);
            for (i64 e = 0; e < full; e += W) V::store(dr + e, V::load(sr + e));
            if (rem) V::store_part(dr + full, V::load_part(sr + full, rem), rem);
        }
}

// ---------------------------------------------------------------- forward, NCHW
// y[m*ldyk + a*ldyr + q] = bias[m] + sum_t w[m*ldw + t] * tap[t][xo + a*xrow + q]
// for m < MR, a < RT rows, q < (NV-1)*W + last: MR output channels x NV
// vectors of RT output rows, each weight broadcast feeding RT x NV FMAs.
// Loads of the last vector may read past the row's end (callers pad the
// rows); only `last` lanes are stored.
template <class V, int MR, int RT, int NV>
inline void fwd_nchw_tile(i64 ntaps, const typename V::T* const* tap, i64 xo, i64 xrow,
                          const typename V::T* w, i64 ldw, const typename V::T* bias,
                          typename V::T* y, i64 ldyr, i64 ldyk, int last) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc[MR][RT][NV];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int a = 0; a < RT; ++a)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
                acc[m][a][v] = V::zero();
                AEK_PREFETCH_W(y + m * ldyk + a * ldyr + (NV + v) * W);
            }
    for (i64 t = 0; t < ntaps; ++t) {
        const T* s = opaque<V>(tap[t] + xo);
        R b[RT][NV];
#pragma GCC unroll 8
        for (int a = 0; a < RT; ++a)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) b[a][v] = V::load(s + a * xrow + v * W);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const R c = V::bcast(w + m * ldw + t);
#pragma GCC unroll 8
            for (int a = 0; a < RT; ++a)
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[m][a][v] = V::fma(c, b[a][v], acc[m][a][v]);
        }
    }
    // (unrolled like the loops above: a rolled loop would keep acc in memory)
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int a = 0; a < RT; ++a) {
            T* d = y + m * ldyk + a * ldyr;
            if (bias) {
                const R bm = V::bcast(bias + m);
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[m][a][v] = V::add(acc[m][a][v], bm);
            }
#pragma GCC unroll 8
            for (int v = 0; v + 1 < NV; ++v) V::store(d + v * W, acc[m][a][v]);
            if (last == W)
                V::store(d + (NV - 1) * W, acc[m][a][NV - 1]);
            else
                V::store_part(d + (NV - 1) * W, acc[m][a][NV - 1], last);
        }
}

// All K output channels of `rows` output rows (row r at y + r*ldyr, channel
// k at + k*ldyk).  Channel blocks outer: each block writes its MR planes
// front to back while the (small) input rows stay in L1.  Rows of fewer than
// NVMAX vectors are taken NVMAX / nv rows per tile, so that every weight
// broadcast still feeds up to NVMAX vectors.
template <class V, int MRMAX, int NVMAX>
void fwd_nchw(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap, i64 xrow,
              const typename V::T* w, i64 ldw, const typename V::T* bias, typename V::T* y,
              i64 ldyr, i64 ldyk) {
    using T = typename V::T;
    constexpr int W = V::W;
    // Split stores cost two lines each: when every channel's row shares one
    // alignment, a partial vector up to the next vector-size boundary comes
    // first (a whole line for 64-byte vectors).  Each output's sum is the same
    // whatever the vector split.
    constexpr i64 kLine = W * static_cast<i64>(sizeof(T));
    const bool same_align = (ldyk * static_cast<i64>(sizeof(T))) % kLine == 0 &&
                            (ldyr * static_cast<i64>(sizeof(T))) % kLine == 0;
    const i64 mis = static_cast<i64>(reinterpret_cast<std::uintptr_t>(y) % kLine);
    const i64 head = same_align && mis % static_cast<i64>(sizeof(T)) == 0 && mis != 0
                         ? (ow < (kLine - mis) / static_cast<i64>(sizeof(T))
                                ? ow
                                : (kLine - mis) / static_cast<i64>(sizeof(T)))
                         : 0;
    const i64 nvec = (ow - head + W - 1) / W;
    even_blocks(K, MRMAX, [&](i64 m0, i64 mcount) {
        with_int<MRMAX>(mcount, [&](auto mr) {
            constexpr int MR = decltype(mr)::value;
            const T* bm = bias ? bias + m0 : nullptr;
            const T* wm = w + m0 * ldw;
            T* ym = y + m0 * ldyk;
            if (head == 0 && nvec < NVMAX) {
                const int last = lanes_in_last<V>(ow, nvec);
                with_int<NVMAX - 1>(nvec, [&](auto nvc) {
                    constexpr int NV = decltype(nvc)::value;
                    constexpr int RT = NVMAX / NV;
                    for (i64 r = 0; r < rows; r += RT)
                        with_int<RT>(rows - r < RT ? rows - r : RT, [&](auto rtc) {
                            fwd_nchw_tile<V, MR, decltype(rtc)::value, NV>(
                                ntaps, tap, r * xrow, xrow, wm, ldw, bm, ym + r * ldyr, ldyr,
                                ldyk, last);
                        });
                });
                return;
            }
            for (i64 r = 0; r < rows; ++r) {
                T* yr = ym + r * ldyr;
                if (head > 0)
                    fwd_nchw_tile<V, MR, 1, 1>(ntaps, tap, r * xrow, xrow, wm, ldw, bm, yr, ldyr,
                                               ldyk, static_cast<int>(head));
                even_blocks(nvec, NVMAX, [&](i64 v0, i64 nv) {
                    const i64 q0 = head + v0 * W;
                    const int last = lanes_in_last<V>(ow - q0, nv);
                    with_int<NVMAX>(nv, [&](auto nvc) {
                        fwd_nchw_tile<V, MR, 1, decltype(nvc)::value>(
                            ntaps, tap, r * xrow + q0, xrow, wm, ldw, bm, yr + q0, ldyr, ldyk,
                            last);
                    });
                });
            }
        });
    });
}

// ------------------------------------------------- forward, NCHW, few outputs
// Taps (c, i, j), c < nc, i < kh, j < kw, at tap[(c*kh + i)*kw + j], where kh
// "slides": tap (c, i, j) of output row a is tap (c, 0, j) of row a + i, i.e.
// tap[(c*kh + i)*kw + j] == tap[c*kh*kw + j] + i*xrow (stride and dilation 1).
// y[m*ldyk + a*ldyr + q] = bias[m] + sum_{c,i,j} w[m*ldw + (c*kh + i)*kw + j] * tap(c, i, j)[xo + a*xrow + q]
// for m < MR, a < na (<= RT) rows, q < (NV-1)*W + last.
// With one or two output channels the weight broadcasts cannot be shared
// across channels, and each input vector would feed only one or two FMAs, so
// the loads bound the loop (most of them unaligned, split across lines).  The
// tile therefore walks the input rows of RT output rows once per (c, j): each
// loaded vector feeds the KH output rows it lies under, with the KH weights
// held in registers.  Rows past na are computed and dropped (the caller's
// rows buffer covers whole tiles).
template <class V, int MR, int RT, int NV, int KH>
inline void fwd_rows_tile(i64 nc, i64 kw, const typename V::T* const* tap, i64 xo, i64 xrow,
                          const typename V::T* w, i64 ldw, const typename V::T* bias,
                          typename V::T* y, i64 ldyr, i64 ldyk, i64 na, int last) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc[MR][RT][NV];
#pragma GCC unroll 64
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 64
        for (int a = 0; a < RT; ++a)
#pragma GCC unroll 64
            for (int v = 0; v < NV; ++v) acc[m][a][v] = V::zero();
    for (i64 c = 0; c < nc; ++c)
        for (i64 j = 0; j < kw; ++j) {
            const i64 t0 = c * KH * kw + j;
            const T* s = tap[t0] + xo;
            R wr[MR][KH];
#pragma GCC unroll 64
            for (int m = 0; m < MR; ++m)
#pragma GCC unroll 64
                for (int i = 0; i < KH; ++i) wr[m][i] = V::bcast(w + m * ldw + t0 + i * kw);
#pragma GCC unroll 64
            for (int u = 0; u < RT + KH - 1; ++u) {
                R x[NV];
#pragma GCC unroll 64
                for (int v = 0; v < NV; ++v) x[v] = V::load(s + u * xrow + v * W);
#pragma GCC unroll 64
                for (int i = 0; i < KH; ++i) {
                    const int a = u - i;
                    if (a < 0 || a >= RT) continue;
#pragma GCC unroll 64
                    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 64
                        for (int v = 0; v < NV; ++v)
                            acc[m][a][v] = V::fma(wr[m][i], x[v], acc[m][a][v]);
                }
            }
        }
#pragma GCC unroll 64
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 64
        for (int a = 0; a < RT; ++a) {
            if (a >= na) break;
            T* d = y + m * ldyk + a * ldyr;
            if (bias) {
                const R bm = V::bcast(bias + m);
#pragma GCC unroll 64
                for (int v = 0; v < NV; ++v) acc[m][a][v] = V::add(acc[m][a][v], bm);
            }
#pragma GCC unroll 64
            for (int v = 0; v + 1 < NV; ++v) V::store(d + v * W, acc[m][a][v]);
            if (last == W)
                V::store(d + (NV - 1) * W, acc[m][a][NV - 1]);
            else
                V::store_part(d + (NV - 1) * W, acc[m][a][NV - 1], last);
        }
}

// Power of two in [1, 8] (so it divides kDirectRowsTile) for a tile of MR x
// RT x NV accumulators, NV input vectors and MR x KH weights in REGS registers.
constexpr int rows_tile_max(int regs, int mr, int nv, int kh) {
    const int fit = (regs - nv - mr * kh) / (mr * nv);
    return fit >= 8 ? 8 : fit >= 4 ? 4 : fit >= 2 ? 2 : 1;
}

// K <= 8 output channels of `rows` output rows, taps as for fwd_rows_tile
// (kh sliding rows, KHMAX at most; taller kernels are read as kh*kw taps of
// one row).  Column blocks of at most NVMAX vectors, each swept in tiles of
// RT or RT/2 rows (whichever computes fewer rows past the end), RT the most
// that REGS registers hold.  Reads input rows for `rows` rounded up to 8.
// K > 2 (the flipped backward-input of a conv with 3..8 input channels): the
// taps are read one by one (KH = 1), so only MR weights sit in registers and
// the accumulators go to rows; this also bounds the instances to MR x NV.
template <class V, int REGS, int NVMAX, int KHMAX>
void fwd_nchw_rows(i64 K, i64 rows, i64 ow, i64 nc, i64 kh, i64 kw,
                   const typename V::T* const* tap, i64 xrow, const typename V::T* w, i64 ldw,
                   const typename V::T* bias, typename V::T* y, i64 ldyr, i64 ldyk) {
    constexpr int W = V::W;
    if (kh > KHMAX || K > 2) {
        kw *= kh;
        kh = 1;
    }
    const i64 nvec = (ow + W - 1) / W;
    even_blocks(nvec, NVMAX, [&](i64 v0, i64 nv) {
        const i64 q0 = v0 * W;
        const int last = lanes_in_last<V>(ow - q0, nv);
        with_int<NVMAX>(nv, [&](auto nvc) {
            constexpr int NV = decltype(nvc)::value;
            auto run = [&](auto mr, auto khc) {
                constexpr int MR = decltype(mr)::value;
                constexpr int KH = decltype(khc)::value;
                constexpr int RT = rows_tile_max(REGS, MR, NV, KH);
                constexpr int RH = RT > 1 ? RT / 2 : 1;
                auto tile = [&](auto rtc, i64 a0) {
                    constexpr int RTS = decltype(rtc)::value;
                    fwd_rows_tile<V, MR, RTS, NV, KH>(nc, kw, tap, a0 * xrow + q0, xrow, w, ldw,
                                                      bias, y + a0 * ldyr + q0, ldyr, ldyk,
                                                      rows - a0 < RTS ? rows - a0 : RTS, last);
                };
                if constexpr (MR > 2) {
                    // RT is small here (MR accumulators per row): full tiles,
                    // then a half tile for a short tail, which wastes less
                    // than a whole sweep in half tiles would cost in loads.
                    i64 a0 = 0;
                    for (; a0 + RT <= rows; a0 += RT) tile(Int<RT>{}, a0);
                    if (a0 < rows) {
                        if (rows - a0 <= RH)
                            tile(Int<RH>{}, a0);
                        else
                            tile(Int<RT>{}, a0);
                    }
                    return;
                }
                const i64 over = (rows + RT - 1) / RT * RT - rows;
                const i64 over_half = (rows + RH - 1) / RH * RH - rows;
                const bool half = over_half < over;
                for (i64 a0 = 0; a0 < rows; a0 += half ? RH : RT) {
                    if (half)
                        tile(Int<RH>{}, a0);
                    else
                        tile(Int<RT>{}, a0);
                }
            };
            if (K > 2) {
                with_int<8>(K, [&](auto mr) { run(mr, Int<1>{}); });
                return;
            }
            with_int<2>(K, [&](auto mr) {
                with_int<KHMAX>(kh, [&](auto khc) { run(mr, khc); });
            });
        });
    });
}

// ------------------------------------------------ forward along output channels
// acc[a][p][v] = sum_t tap[t][xo + a*xrow + p] * w[t*ldw + v*W + lane] for
// p < MP pixels of RT output rows and NV vectors of output channels (w rows
// zero padded to whole vectors): one weight load per tap feeds RT x MP x NV FMAs.
template <class V, int RT, int MP, int NV>
inline void kvec_accumulate(i64 ntaps, const typename V::T* const* tap, i64 xo, i64 xrow,
                            const typename V::T* w, i64 ldw,
                            typename V::R (&acc)[RT][MP][NV]) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
#pragma GCC unroll 8
    for (int a = 0; a < RT; ++a)
#pragma GCC unroll 16
        for (int p = 0; p < MP; ++p)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[a][p][v] = V::zero();
    for (i64 t = 0; t < ntaps; ++t) {
        const T* s = opaque<V>(tap[t] + xo);
        const T* wt = w + t * ldw;
        R b[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) b[v] = V::load(wt + v * W);
#pragma GCC unroll 8
        for (int a = 0; a < RT; ++a)
#pragma GCC unroll 16
            for (int p = 0; p < MP; ++p) {
                const R x = V::bcast(s + a * xrow + p);
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[a][p][v] = V::fma(x, b[v], acc[a][p][v]);
            }
    }
}

// ---------------------------------------------------------------- forward, NHWC
// y[p*ldyp + k] = bias[k] + sum_t tap[t][xo + p] * w[t*ldw + k]
// for p < MP pixels, k < (NV-1)*W + last: vectorised along the (contiguous)
// output channels.  w rows and bias are zero padded to whole vectors.
template <class V, int MP, int NV>
inline void fwd_nhwc_tile(i64 ntaps, const typename V::T* const* tap, i64 xo,
                          const typename V::T* w, i64 ldw, const typename V::T* bias,
                          typename V::T* y, i64 ldyp, int last) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc1[1][MP][NV];
    kvec_accumulate<V, 1, MP, NV>(ntaps, tap, xo, 0, w, ldw, acc1);
    auto& acc = acc1[0];
    R bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = bias ? V::load(bias + v * W) : V::zero();
    for (int p = 0; p < MP; ++p) {
        T* d = y + p * ldyp;
        if (bias)
            for (int v = 0; v < NV; ++v) acc[p][v] = V::add(acc[p][v], bv[v]);
        for (int v = 0; v + 1 < NV; ++v) V::store(d + v * W, acc[p][v]);
        if (last == W)
            V::store(d + (NV - 1) * W, acc[p][NV - 1]);
        else
            V::store_part(d + (NV - 1) * W, acc[p][NV - 1], last);
    }
}

// All K channels of `rows` output rows (pixel (r, b) at y + r*ldyr + b*ldyp).
template <class V, int MPMAX, int NVMAX>
void fwd_nhwc(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap, i64 xrow,
              const typename V::T* w, i64 ldw, const typename V::T* bias, typename V::T* y,
              i64 ldyr, i64 ldyp) {
    constexpr int W = V::W;
    const i64 nvec = (K + W - 1) / W;
    for (i64 r = 0; r < rows; ++r)
        for (i64 p0 = 0; p0 < ow; p0 += MPMAX) {
            with_int<MPMAX>(ow - p0 < MPMAX ? ow - p0 : MPMAX, [&](auto mp) {
                constexpr int MP = decltype(mp)::value;
                even_blocks(nvec, NVMAX, [&](i64 v0, i64 nv) {
                    const int last = lanes_in_last<V>(K - v0 * W, nv);
                    with_int<NVMAX>(nv, [&](auto nvc) {
                        fwd_nhwc_tile<V, MP, decltype(nvc)::value>(
                            ntaps, tap, r * xrow + p0, w + v0 * W, ldw,
                            bias ? bias + v0 * W : nullptr, y + r * ldyr + p0 * ldyp + v0 * W,
                            ldyp, last);
                    });
                });
            });
        }
}

// ------------------------------------------- forward, NCHW, along output channels
// y[k*ldyk + a*ldyr + q] = bias[k] + sum_t tap[t][xo + a*xrow + q] * w[t*ldw + k]
// for q < MP pixels of RT output rows, k < kvalid (<= NV*W): accumulated as
// fwd_nhwc_tile does (w rows and bias zero padded to whole vectors), then
// each channel's MP pixels of a row are stored as one run: transposed in
// registers (traits with kTranspose, MP <= W) or through a small buffer.
template <class V, int RT, int MP, int NV>
inline void fwd_kvec_tile(i64 ntaps, const typename V::T* const* tap, i64 xo, i64 xrow,
                          const typename V::T* w, i64 ldw, const typename V::T* bias,
                          typename V::T* y, i64 ldyr, i64 ldyk, i64 kvalid) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R acc[RT][MP][NV];
    kvec_accumulate<V, RT, MP, NV>(ntaps, tap, xo, xrow, w, ldw, acc);
    if (bias)
        for (int v = 0; v < NV; ++v) {
            const R bv = V::load(bias + v * W);
            for (int a = 0; a < RT; ++a)
                for (int p = 0; p < MP; ++p) acc[a][p][v] = V::add(acc[a][p][v], bv);
        }
    for (int a = 0; a < RT; ++a) {
        T* ya = y + a * ldyr;
        if constexpr (V::kTranspose && MP <= W) {
            for (int v = 0; v < NV; ++v) {
                R t[W];
                for (int p = 0; p < W; ++p) t[p] = p < MP ? acc[a][p < MP ? p : 0][v] : V::zero();
                V::transpose(t);
                for (int l = 0; l < W; ++l) {
                    const i64 k = i64(v) * W + l;
                    if (k >= kvalid) break;
                    if (MP == W)
                        V::store(ya + k * ldyk, t[l]);
                    else
                        V::store_part(ya + k * ldyk, t[l], MP);
                }
            }
        } else {
            alignas(64) T tile[MP][NV * W];
            for (int p = 0; p < MP; ++p)
                for (int v = 0; v < NV; ++v) V::store(&tile[p][v * W], acc[a][p][v]);
            for (i64 k = 0; k < kvalid; ++k)
                for (int p = 0; p < MP; ++p) ya[k * ldyk + p] = tile[p][k];
        }
    }
}

// All K channels of `rows` output rows (y[k*ldyk + r*ldyr + q]): rows cut
// into even tiles of at most MPMAX pixels, and as many rows per tile as ACC
// accumulators hold (at most 4; rows past a multiple of that in tiles of fewer).
template <class V, int ACC, int MPMAX, int NVMAX>
void fwd_nchw_kvec(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap, i64 xrow,
                   const typename V::T* w, i64 ldw, const typename V::T* bias, typename V::T* y,
                   i64 ldyr, i64 ldyk) {
    constexpr int W = V::W;
    const i64 nvec = (K + W - 1) / W;
    even_blocks(ow, MPMAX, [&](i64 p0, i64 np) {
        with_int<MPMAX>(np, [&](auto mp) {
            constexpr int MP = decltype(mp)::value;
            even_blocks(nvec, NVMAX, [&](i64 v0, i64 nv) {
                const i64 k0 = v0 * W;
                const i64 kvalid = K - k0 < nv * W ? K - k0 : nv * W;
                with_int<NVMAX>(nv, [&](auto nvc) {
                    constexpr int NV = decltype(nvc)::value;
                    constexpr int RFIT = ACC / (MP * NV);
                    constexpr int RT = RFIT >= 4 ? 4 : RFIT >= 1 ? RFIT : 1;
                    for (i64 r = 0; r < rows; r += RT) {
                        with_int<RT>(rows - r < RT ? rows - r : RT, [&](auto rtc) {
                            fwd_kvec_tile<V, decltype(rtc)::value, MP, NV>(
                                ntaps, tap, r * xrow + p0, xrow, w + k0, ldw,
                                bias ? bias + k0 : nullptr, y + k0 * ldyk + r * ldyr + p0, ldyr,
                                ldyk, kvalid);
                        });
                    }
                });
            });
        });
    });
}

// ------------------------------------------------------- backward-filter, NCHW
// acc[m*ldacc + t*W + lane] += sum_{r < rows, q < ow, q % W == lane}
//                                 gy[m*ldg2 + r*ldgr + q] * tap[t][r*xrow + q]
// for m < MR channels, t < NT taps: dot products along the output row, kept
// as vectors (the caller sums the lanes once, at the very end).  Row tails are
// masked on both operands, so lanes past the row add exact zeros.
// With PF, each full dY vector also prefetches (into L2) the one pf elements
// further on: the next block of channels, or the next image's dY.  A block's
// planes are short streams (one image's plane per channel, a few KB) that
// the hardware prefetcher hardly trains on, so without this the dY loads wait
// for L3 / memory (ae_enc1: most of the kernel's time).
template <class V, int MR, int NT, bool PF>
inline void bwf_nchw_tile(i64 rows, i64 ow, const typename V::T* const* tap, i64 xrow,
                          const typename V::T* gy, i64 ldgr, i64 ldg2, i64 pf,
                          typename V::T* acc, i64 ldacc) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R s[MR][NT];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) s[m][t] = V::zero();
    const i64 full = ow - ow % W;
    const int rem = static_cast<int>(ow - full);
    for (i64 r = 0; r < rows; ++r) {
        const T* g = gy + r * ldgr;
        const T* xp[NT];
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) xp[t] = tap[t] + r * xrow;
        for (i64 q = 0; q < full; q += W) {
            R a[MR];
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) {
                a[m] = V::load(g + m * ldg2 + q);
                if constexpr (PF) AEK_PREFETCH_R(g + m * ldg2 + q + pf);
            }
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t) {
                const R b = V::load(xp[t] + q);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) s[m][t] = V::fma(a[m], b, s[m][t]);
            }
        }
        if (rem) {
            R a[MR];
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) a[m] = V::load_part(g + m * ldg2 + full, rem);
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t) {
                const R b = V::load_part(xp[t] + full, rem);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) s[m][t] = V::fma(a[m], b, s[m][t]);
            }
        }
    }
    // (every loop over m and t unrolled: a rolled one keeps s in memory)
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
            T* d = acc + m * ldacc + t * W;
            V::store(d, V::add(V::load(d), s[m][t]));
        }
}

// Channel blocks outer, tap blocks inner (a block's dY stays in L1 for its
// tap blocks); the first tap block prefetches the dY of the next channel
// block (after the last: what follows this item's dY, the next image's).
template <class V, int MRMAX, int NTMAX>
void bwf_nchw(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap, i64 xrow,
              const typename V::T* gy, i64 ldgr, i64 ldg2, typename V::T* acc, i64 ldacc) {
    constexpr int W = V::W;
    even_blocks(K, MRMAX, [&](i64 m0, i64 mcount) {
        with_int<MRMAX>(mcount, [&](auto mr) {
            constexpr int MR = decltype(mr)::value;
            even_blocks(ntaps, NTMAX, [&](i64 t0, i64 nt) {
                with_int<NTMAX>(nt, [&](auto ntc) {
                    constexpr int NT = decltype(ntc)::value;
                    const auto* g = gy + m0 * ldg2;
                    auto* a = acc + m0 * ldacc + t0 * W;
                    if (t0 == 0)
                        bwf_nchw_tile<V, MR, NT, true>(rows, ow, tap + t0, xrow, g, ldgr, ldg2,
                                                       MR * ldg2, a, ldacc);
                    else
                        bwf_nchw_tile<V, MR, NT, false>(rows, ow, tap + t0, xrow, g, ldgr, ldg2,
                                                        0, a, ldacc);
                });
            });
        });
    });
}

// ------------------------------------------------------- backward-filter, NHWC
// acc[t*ldacc + k] += sum_{r < rows, p < ow} tap[t][x0 + r*xrow + p] * gy[r*ldgr + p*ldg2 + k]
// for t < NT taps, k < NV vectors of channels (lanes past `last` in the last
// vector load zeros): vectorised along the contiguous channels of dY, so every
// accumulator stays a plain partial sum of one gw entry.  PB pixels per step
// share each tap pointer (loaded once per step: NT pointers do not fit in
// registers).  The loops over taps and vectors are unrolled completely so that
// the NT x NV accumulators stay in registers (GCC keeps them in memory otherwise).
template <class V, int NT, int NV, int PB>
inline void bwf_nhwc_tile(i64 rows, i64 ow, const typename V::T* const* tap, i64 x0, i64 xrow,
                          const typename V::T* gy, i64 ldgr, i64 ldg2, int last,
                          typename V::T* acc, i64 ldacc) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    R s[NT][NV];
#pragma GCC unroll 64
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) s[t][v] = V::zero();
    auto load_gy = [&](const T* g, R* b) {
#pragma GCC unroll 8
        for (int v = 0; v + 1 < NV; ++v) b[v] = V::load(g + v * W);
        b[NV - 1] = last == W ? V::load(g + (NV - 1) * W) : V::load_part(g + (NV - 1) * W, last);
    };
    // pixels [p, p + NP) of row r, NP <= PB
    auto step = [&](auto npc, const T* g, i64 xo, i64 p) {
        constexpr int NP = decltype(npc)::value;
        R b[NP][NV];
#pragma GCC unroll 8
        for (int u = 0; u < NP; ++u) load_gy(g + (p + u) * ldg2, b[u]);
#pragma GCC unroll 64
        for (int t = 0; t < NT; ++t) {
            const T* xp = opaque<V>(tap[t] + xo + p);
#pragma GCC unroll 8
            for (int u = 0; u < NP; ++u) {
                const R a = V::bcast(xp + u);
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) s[t][v] = V::fma(a, b[u][v], s[t][v]);
            }
        }
    };
    for (i64 r = 0; r < rows; ++r) {
        const T* g = gy + r * ldgr;
        const i64 xo = x0 + r * xrow;
        i64 p = 0;
        for (; p + PB <= ow; p += PB) step(Int<PB>{}, g, xo, p);
        for (; p < ow; ++p) step(Int<1>{}, g, xo, p);
    }
#pragma GCC unroll 64
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            T* d = acc + t * ldacc + v * W;
            V::store(d, V::add(V::load(d), s[t][v]));
        }
}

// ACC accumulators per tile: NT = ACC / NV taps per pass over dY, and GYR
// registers of dY vectors: GYR / NV pixels per step.  The taps of output row
// r, column q are at tap[t][x0 + r*xrow + q].
template <class V, int ACC, int NVMAX, int GYR>
void bwf_nhwc(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap, i64 x0,
              i64 xrow, const typename V::T* gy, i64 ldgr, i64 ldg2, typename V::T* acc,
              i64 ldacc) {
    constexpr int W = V::W;
    const i64 nvec = (K + W - 1) / W;
    even_blocks(nvec, NVMAX, [&](i64 v0, i64 nv) {
        const int last = lanes_in_last<V>(K - v0 * W, nv);
        with_int<NVMAX>(nv, [&](auto nvc) {
            constexpr int NV = decltype(nvc)::value;
            constexpr int NTMAX = ACC / NV;
            constexpr int PB = GYR / NV > 1 ? GYR / NV : 1;
            even_blocks(ntaps, NTMAX, [&](i64 t0, i64 nt) {
                with_int<NTMAX>(nt, [&](auto ntc) {
                    bwf_nhwc_tile<V, decltype(ntc)::value, NV, PB>(
                        rows, ow, tap + t0, x0, xrow, gy + v0 * W, ldgr, ldg2, last,
                        acc + t0 * ldacc + v0 * W, ldacc);
                });
            });
        });
    });
}

// ----------------------------------- backward-filter, NCHW, along dY channels
// acc[t*ldacc + k] += sum_{r < rows, q < ow} tap[t][r*xrow + q] * gy[k*ldg2 + r*ldgr + q]
// for k < K (acc rows padded to a multiple of 16 entries): bwf_nhwc over dY
// transposed to pixel-major order, BUF elements at a time (whole
// rows when they fit, else pieces of one row), channels padded with zeros to
// whole 16-entry rows.  Each accumulator stays a partial sum of one gw entry
// whatever the pieces.
template <class V, int ACC, int NVMAX, int GYR, i64 BUF>
void bwf_nchw_kvec(i64 K, i64 rows, i64 ow, i64 ntaps, const typename V::T* const* tap,
                   i64 xrow, const typename V::T* gy, i64 ldgr, i64 ldg2, typename V::T* acc,
                   i64 ldacc) {
    using T = typename V::T;
    using R = typename V::R;
    constexpr int W = V::W;
    const i64 Kp = (K + 15) / 16 * 16;
    alignas(64) T buf[BUF];
    // pixels per piece: whole rows, or a run of one row
    const i64 run = ow * Kp <= BUF ? ow : BUF / Kp;
    const i64 nrow = ow * Kp <= BUF ? BUF / (ow * Kp) : 1;
    for (i64 r0 = 0; r0 < rows; r0 += nrow) {
        const i64 nr = rows - r0 < nrow ? rows - r0 : nrow;
        for (i64 q0 = 0; q0 < ow; q0 += run) {
            const i64 nq = ow - q0 < run ? ow - q0 : run;
            for (i64 r = 0; r < nr; ++r) {
                const T* g = gy + (r0 + r) * ldgr + q0;
                T* d = buf + r * nq * Kp;
                i64 q = 0;
                if constexpr (V::kTranspose) {
                    // W channels x W pixels per register transpose
                    for (; q < nq; q += W) {
                        const int n = nq - q < W ? static_cast<int>(nq - q) : W;
                        for (i64 k0 = 0; k0 < Kp; k0 += W) {
                            R t[W];
                            for (int c = 0; c < W; ++c) {
                                const T* s = g + (k0 + c) * ldg2 + q;
                                t[c] = k0 + c >= K ? V::zero()
                                                   : n == W ? V::load(s) : V::load_part(s, n);
                            }
                            V::transpose(t);
                            for (int j = 0; j < n; ++j) V::store(d + (q + j) * Kp + k0, t[j]);
                        }
                    }
                } else {
                    for (; q < nq; ++q) {
                        for (i64 k = 0; k < K; ++k) d[q * Kp + k] = g[k * ldg2 + q];
                        for (i64 k = K; k < Kp; ++k) d[q * Kp + k] = T(0);
                    }
                }
            }
            bwf_nhwc<V, ACC, NVMAX, GYR>(K, nr, nq, ntaps, tap, r0 * xrow + q0, xrow, buf,
                                         nq * Kp, Kp, acc, ldacc);
        }
    }
}

}  // namespace direct
}  // namespace aek
