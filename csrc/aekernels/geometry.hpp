// Conv geometry and the defence-in-depth checks of the shapes the kernels rely
// on.  _api.py validates the public semantics; these checks only guarantee that
// no index computed from the shapes can leave the arrays.
#pragma once

#include "aekernels/common.hpp"

namespace aek {

struct ConvGeom {
    i64 N, C, H, W;    // input image (x or gx)
    i64 K, OH, OW;     // output image (y or gy)
    i64 kh, kw;
    i64 sh, sw, pt, pl, dh, dw;
    i64 groups;
    bool nhwc;

    i64 Cg() const { return C / groups; }
    i64 Kg() const { return K / groups; }
    i64 taps() const { return Cg() * kh * kw; }
};

inline std::string shape_str(const i64 s[4]) {
    return "(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " +
           std::to_string(s[2]) + ", " + std::to_string(s[3]) + ")";
}

// xs: input-image shape, ws: weight shape, ys: output-image shape, all in the
// layout's order (NCHW/OIHW or NHWC/HWIO).
inline ConvGeom make_conv_geom(const char* op, const i64 xs[4], const i64 ws[4], const i64 ys[4],
                               i64 sh, i64 sw, i64 pt, i64 pl, i64 dh, i64 dw, i64 groups,
                               bool nhwc) {
    auto fail = [&](const std::string& what) {
        throw std::invalid_argument(std::string(op) + ": " + what);
    };
    if (sh < 1 || sw < 1) fail("stride must be >= 1");
    if (dh < 1 || dw < 1) fail("dilation must be >= 1");
    if (pt < 0 || pl < 0) fail("padding must be >= 0");
    if (groups < 1) fail("groups must be >= 1");
    for (int i = 0; i < 4; ++i)
        if (xs[i] < 0 || ws[i] < 0 || ys[i] < 0 || xs[i] >= (i64(1) << 31) ||
            ws[i] >= (i64(1) << 31) || ys[i] >= (i64(1) << 31))
            fail("array extents must lie in [0, 2**31)");
    ConvGeom g{};
    g.nhwc = nhwc;
    g.sh = sh; g.sw = sw; g.pt = pt; g.pl = pl; g.dh = dh; g.dw = dw; g.groups = groups;
    i64 wc;
    if (!nhwc) {
        g.N = xs[0]; g.C = xs[1]; g.H = xs[2]; g.W = xs[3];
        g.K = ws[0]; wc = ws[1]; g.kh = ws[2]; g.kw = ws[3];
        g.OH = ys[2]; g.OW = ys[3];
        if (ys[0] != g.N || ys[1] != g.K)
            fail("output-side array " + shape_str(ys) + " does not match input " + shape_str(xs) +
                 " and weight " + shape_str(ws));
    } else {
        g.N = xs[0]; g.H = xs[1]; g.W = xs[2]; g.C = xs[3];
        g.kh = ws[0]; g.kw = ws[1]; wc = ws[2]; g.K = ws[3];
        g.OH = ys[1]; g.OW = ys[2];
        if (ys[0] != g.N || ys[3] != g.K)
            fail("output-side array " + shape_str(ys) + " does not match input " + shape_str(xs) +
                 " and weight " + shape_str(ws));
    }
    if (g.kh < 1 || g.kw < 1 || wc < 1 || g.K < 1) fail("weight " + shape_str(ws) + " has a zero extent");
    if (g.C != wc * groups)
        fail("input channels " + std::to_string(g.C) + " != weight channels " +
             std::to_string(wc) + " * groups " + std::to_string(groups));
    if (g.K % groups != 0)
        fail("output channels " + std::to_string(g.K) + " not divisible by groups " +
             std::to_string(groups));
    // Kernel extent and offsets must stay well inside int64 (they are < 2**62).
    if (dh > (i64(1) << 31) || dw > (i64(1) << 31) || sh > (i64(1) << 31) ||
        sw > (i64(1) << 31) || pt > (i64(1) << 31) || pl > (i64(1) << 31))
        fail("stride/padding/dilation out of range");
    return g;
}

}  // namespace aek
