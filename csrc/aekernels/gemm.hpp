// Packed, cache-blocked GEMM driver (BLIS loop order) and the generic
// micro-kernel.  C(M x N) (+)= L(M x K) * R(K x N), where L and R are *packers*:
// objects whose pack(o0, no, k0, kc, R, scratch) returns ceil(no/R) micro-panels
// of R "outer" indices (rows of L / columns of R) by kc reduction indices, zero
// padded, either written into scratch or pre-packed once per call (weights).
// Packers let the conv code feed implicit im2col patches straight into the
// panels, so no im2col matrix is ever materialised.
#pragma once

#include "aekernels/common.hpp"
#include "aekernels/pack.hpp"
#include "aekernels/ukernels.hpp"

namespace aek {

template <class T>
struct DirectKernels;  // direct_ukernels.hpp

template <class T>
struct UKernel {
    const char* name;
    int mr, nr;     // register tile
    i64 mc, kc, nc; // cache blocks: A block mc x kc in L2, B micro-panel kc x nr in L1
    void (*fn)(i64 kc, const T* a, const T* b, T* c, i64 ldc, int accumulate);
    // optional: micro-panels from rows contiguous along the reduction
    // (AEK_DECLARE_PACKT; BatchPixelPack)
    void (*pack_t)(const T* s, i64 ls, i64 rows, i64 n, i64 R, T* d) = nullptr;
};

// Direct small-M kernel (shift_rows) and the q granularity it needs.
template <class T>
struct ShiftKernel {
    const char* name;
    i64 q;      // nq must be a multiple of this
    i64 max_m;  // use it instead of the GEMM up to this many output channels
    void (*fn)(i64 M, i64 ntaps, const T* w, i64 ldw, const T* slab, const i64* toff, i64 nq,
               T* c, i64 ldc);
};

// Dot-product tiles for backward-filter over a slab (dot_tiles).
template <class T>
struct DotKernel {
    const char* name;
    i64 mr, nr, w;  // M, N multiples of mr, nr; w = vector lanes
    void (*fn)(i64 M, i64 N, i64 rows, i64 ow, const T* const* arow, i64 apitch, const T* b,
               const i64* boff, i64 bpitch, T* c, i64 ldc, int accumulate);
};

// Channel-vector direct conv (cl_rows); fn == nullptr: not available (generic).
template <class T>
struct ClKernel {
    const char* name;
    i64 cb;   // channel block of the slab = vector lanes
    i64 nvw;  // output channels per packed weight block
    void (*fn)(i64 M, i64 rows, i64 GB, i64 nti, const i64* ioff, i64 ntj, const i64* joff,
               i64 ncb, i64 cbs, i64 ls, const T* slab, i64 rs, const T* wpk, T* out, i64 as,
               i64 ps, i64 ms, const T* bias);
    i64 fmr;  // backward-filter: dY channels per tile (ffn; nullptr: use the dot tiles)
    void (*ffn)(i64 Mpad, i64 ncol, const i64* coff, i64 rows, i64 GB, const T* slab, i64 rs,
                const T* g, i64 gps, i64 gms, i64 gbs, T* c, i64 ldc);
    // optional: channel-major rows -> slab columns (cl_transpose_rows)
    void (*tr)(const T* s, i64 cs, i64 nc, i64 n, T* d);
    // optional: rows of a planar slab (cl_planar_rows)
    void (*pr)(const T* s, i64 hs, i64 rows, i64 lo, i64 n, i64 Wp, T* d) = nullptr;
};

// Winograd F(2x2, 3x3) transforms (wino_input / wino_output); in == nullptr:
// not available, 3x3 convs stay on the direct paths.
template <class T>
struct WinoKernel {
    const char* name;
    void (*in)(const T* slab, i64 rs, i64 cbs, i64 ncb, i64 TY, i64 TX, T* v, i64 vps, i64 vcbs);
    void (*out)(const T* m, i64 ps, i64 K, i64 TY, i64 TX, i64 OHv, i64 OW, const T* bias,
                T* y, i64 ms, i64 hs, i64 ws, T* buf);
};

struct IsaTable {
    const char* isa;  // "avx512" | "avx2" | "generic"
    UKernel<float> f32;
    UKernel<double> f64;
    ShiftKernel<float> shift_f32;
    ShiftKernel<double> shift_f64;
    DotKernel<float> dot_f32;
    DotKernel<double> dot_f64;
    ClKernel<float> cl_f32;
    ClKernel<double> cl_f64;
    WinoKernel<float> wino_f32 = {"none", nullptr, nullptr};
    // Direct small-tap conv kernels (conv_direct.hpp); null: not provided
    // (e.g. a consumer's own table), the slab/GEMM path runs instead.
    const DirectKernels<float>* direct_f32 = nullptr;
    const DirectKernels<double>* direct_f64 = nullptr;
};

const IsaTable& isa_table();  // dispatch.cpp: chosen once from CPUID + AEKERNELS_ISA
void fill_direct_kernels(IsaTable& t);  // conv_direct.cpp: the set matching t.isa

template <class T> const UKernel<T>& ukernel();
template <> inline const UKernel<float>& ukernel<float>() { return isa_table().f32; }
template <> inline const UKernel<double>& ukernel<double>() { return isa_table().f64; }
template <class T> const DotKernel<T>& dot_kernel();
template <> inline const DotKernel<float>& dot_kernel<float>() { return isa_table().dot_f32; }
template <> inline const DotKernel<double>& dot_kernel<double>() { return isa_table().dot_f64; }
template <class T> const ClKernel<T>& cl_kernel();
template <> inline const ClKernel<float>& cl_kernel<float>() { return isa_table().cl_f32; }
template <> inline const ClKernel<double>& cl_kernel<double>() { return isa_table().cl_f64; }
template <class T> const ShiftKernel<T>& shift_kernel();
template <> inline const ShiftKernel<float>& shift_kernel<float>() { return isa_table().shift_f32; }
template <> inline const ShiftKernel<double>& shift_kernel<double>() { return isa_table().shift_f64; }

// Baseline micro-kernel: plain loops the compiler vectorises for the build's
// baseline ISA (SSE2 on x86-64, NEON on arm64).
template <class T, int MR, int NR>
void gemm_ukernel_generic(i64 kc, const T* __restrict a, const T* __restrict b,
                          T* __restrict c, i64 ldc, int accumulate) {
    T ab[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) ab[i][j] = T(0);
    for (i64 k = 0; k < kc; ++k) {
        const T* ak = a + k * MR;
        const T* bk = b + k * NR;
        for (int i = 0; i < MR; ++i) {
            const T ai = ak[i];
            for (int j = 0; j < NR; ++j) ab[i][j] += ai * bk[j];
        }
    }
    for (int i = 0; i < MR; ++i) {
        T* ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < NR; ++j) ci[j] += ab[i][j];
        else
            for (int j = 0; j < NR; ++j) ci[j] = ab[i][j];
    }
}

// Where C lives.  roff == nullptr: C(m, n) = base[m*ldc + n] (the micro-kernel
// stores straight into it).  Otherwise C(m, n) = base[roff[m] + coff[n]]: used
// for transposed outputs and the phase sub-grids of strided backward-input;
// tiles then go through a small buffer.  cseg > 0 (with roff == nullptr): C's
// column n is column j = cseg0 + n of segments of cseg columns, segment s at
// base + s*cseg_stride (the images of an NCHW batch as one GEMM); only tiles
// that straddle two segments go through the buffer.
template <class T>
struct CView {
    T* base;
    i64 ldc;
    const i64* roff = nullptr;
    const i64* coff = nullptr;
    i64 cseg = 0, cseg_stride = 0, cseg0 = 0;

    i64 col(i64 n) const {
        if (coff) return coff[n];
        return cseg ? (cseg0 + n) / cseg * cseg_stride + (cseg0 + n) % cseg : n;
    }
    // col(n0 + j) for j < nr, one division for all (edge tiles of every GEMM)
    void cols(i64 n0, i64 nr, i64* out) const {
        if (coff || !cseg) {
            for (i64 j = 0; j < nr; ++j) out[j] = coff ? coff[n0 + j] : n0 + j;
            return;
        }
        i64 s = (cseg0 + n0) / cseg, p = (cseg0 + n0) % cseg;
        for (i64 j = 0; j < nr; ++j) {
            out[j] = s * cseg_stride + p;
            if (++p == cseg) { p = 0; ++s; }
        }
    }
    T* row(i64 m) const { return base + (roff ? roff[m] : m * ldc); }
    // the nr columns from n0 on are contiguous in memory
    bool contiguous(i64 n0, i64 nr) const {
        return !roff && (!cseg || (cseg0 + n0) / cseg == (cseg0 + n0 + nr - 1) / cseg);
    }
};

// The K block the driver uses; pre-packed operands must be laid out with it.
template <class T>
inline i64 gemm_kc(const UKernel<T>& uk, i64 K) { return std::max<i64>(1, std::min(uk.kc, K)); }

template <class T, class PL, class PR>
void gemm_packed(const UKernel<T>& uk, i64 M, i64 N, i64 K, const PL& pl, const PR& pr,
                 const CView<T>& c, bool accumulate, Workspace<T>& ws) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (i64 m = 0; m < M; ++m)
                for (i64 n = 0; n < N; ++n) c.row(m)[c.col(n)] = T(0);
        return;
    }
    const i64 MR = uk.mr, NR = uk.nr;
    const i64 KC = gemm_kc(uk, K);
    const i64 MC = std::min(uk.mc, ceil_div(M, MR) * MR);
    const i64 NC = std::min(uk.nc, ceil_div(N, NR) * NR);
    T* bp = ws.b.get(static_cast<std::size_t>(NC * KC));
    T* ap = ws.a.get(static_cast<std::size_t>(MC * KC));
    T* tmp = ws.tmp.get(static_cast<std::size_t>(MR * NR));
    for (i64 jc = 0; jc < N; jc += NC) {
        const i64 nc = std::min(NC, N - jc);
        for (i64 pc = 0; pc < K; pc += KC) {
            const i64 kc = std::min(KC, K - pc);
            const bool acc = accumulate || pc > 0;
            const T* bpk = pr.pack(jc, nc, pc, kc, NR, bp);
            for (i64 ic = 0; ic < M; ic += MC) {
                const i64 mc = std::min(MC, M - ic);
                const T* apk = pl.pack(ic, mc, pc, kc, MR, ap);
                for (i64 jr = 0; jr < nc; jr += NR) {
                    const i64 nr = std::min(NR, nc - jr);
                    const T* bpan = bpk + jr * kc;
                    for (i64 ir = 0; ir < mc; ir += MR) {
                        const i64 mr = std::min(MR, mc - ir);
                        const T* apan = apk + ir * kc;
                        const i64 m0 = ic + ir, n0 = jc + jr;
                        if (mr == MR && nr == NR && c.contiguous(n0, NR)) {
                            uk.fn(kc, apan, bpan, c.row(m0) + c.col(n0), c.ldc, acc);
                            continue;
                        }
                        uk.fn(kc, apan, bpan, tmp, NR, 0);
                        i64 cols[kMaxPanel];
                        c.cols(n0, nr, cols);
                        for (i64 i = 0; i < mr; ++i) {
                            T* d = c.row(m0 + i);
                            const T* t = tmp + i * NR;
                            for (i64 j = 0; j < nr; ++j)
                                d[cols[j]] = acc ? d[cols[j]] + t[j] : t[j];
                        }
                    }
                }
            }
        }
    }
}

}  // namespace aek
