// pybind11 glue for aekernels._native: type/shape checks, GIL release, and the
// call into the header-only kernels.  No maths here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "aekernels/conv.hpp"

namespace py = pybind11;
using aek::i64;

namespace {

enum class DType { f32, f64 };

struct View {
    void* ptr;
    i64 shape[4];
    i64 nbytes;
};

DType dtype_of(const py::array& a, const char* op, const char* name) {
    if (a.dtype().is(py::dtype::of<float>())) return DType::f32;
    if (a.dtype().is(py::dtype::of<double>())) return DType::f64;
    throw py::type_error(std::string(op) + ": " + name + " must be float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

// Borrow the buffer of a C-contiguous, aligned, native-endian array without
// copying; refuse anything else (the Python layer makes such copies itself).
View view_of(const py::array& a, const char* op, const char* name, int ndim, DType want,
             bool writeable) {
    if (dtype_of(a, op, name) != want)
        throw py::type_error(std::string(op) + ": " + name + " has dtype " +
                             std::string(py::str(a.dtype())) + ", expected the dtype of x");
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(op) + ": " + name + " must have rank " +
                                    std::to_string(ndim) + ", got " + std::to_string(a.ndim()));
    const int flags = a.flags();
    if (!(flags & py::array::c_style) || !(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw std::invalid_argument(std::string(op) + ": " + name +
                                    " must be C-contiguous and aligned");
    if (!a.dtype().attr("isnative").cast<bool>())
        throw std::invalid_argument(std::string(op) + ": " + name + " must be native byte order");
    if (writeable && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
        throw std::invalid_argument(std::string(op) + ": " + name + " must be writeable");
    View v{};
    v.ptr = const_cast<void*>(a.data());
    for (int i = 0; i < 4; ++i) v.shape[i] = i < ndim ? static_cast<i64>(a.shape(i)) : 1;
    v.nbytes = static_cast<i64>(a.nbytes());
    return v;
}

// Calls run(T{}) with T = float or double as dt says: the one place that maps the
// runtime dtype onto the kernels' template argument.
template <class Run>
void with_dtype(DType dt, Run&& run) {
    if (dt == DType::f32)
        run(float{});
    else
        run(double{});
}

template <class T>
T* data(const View& v) {
    return static_cast<T*>(v.ptr);
}

void check_no_overlap(const char* op, const View& out, std::initializer_list<const View*> ins) {
    const char* o0 = static_cast<const char*>(out.ptr);
    for (const View* in : ins) {
        const char* i0 = static_cast<const char*>(in->ptr);
        if (out.nbytes > 0 && in->nbytes > 0 && o0 < i0 + in->nbytes && i0 < o0 + out.nbytes)
            throw std::invalid_argument(std::string(op) + ": output overlaps an input");
    }
}

// x, w and an optional bias (one entry per output channel of y) -> y: the shared binding of
// conv2d_forward and conv_transpose2d_forward.  `transposed` says the conv geometry maps y's
// shape to x's (the forward conv a transposed conv is the adjoint of).
template <class Kernel>
void conv_with_bias(const char* op, bool transposed, const py::array& x, const py::array& w,
                    const py::object& bias, const py::array& y, i64 sh, i64 sw, i64 pt, i64 pl,
                    i64 dh, i64 dw, i64 groups, bool nhwc, Kernel kernel) {
    const DType dt = dtype_of(x, op, "x");
    View vx = view_of(x, op, "x", 4, dt, false);
    View vw = view_of(w, op, "w", 4, dt, false);
    View vy = view_of(y, op, "y", 4, dt, true);
    const aek::ConvGeom g =
        transposed
            ? aek::make_conv_geom(op, vy.shape, vw.shape, vx.shape, sh, sw, pt, pl, dh, dw, groups,
                                  nhwc)
            : aek::make_conv_geom(op, vx.shape, vw.shape, vy.shape, sh, sw, pt, pl, dh, dw, groups,
                                  nhwc);
    const i64 channels = transposed ? g.C : g.K;
    View vb{nullptr, {0, 0, 0, 0}, 0};
    if (!bias.is_none()) {
        vb = view_of(bias.cast<py::array>(), op, "bias", 1, dt, false);
        if (vb.shape[0] != channels)
            throw std::invalid_argument(std::string(op) + ": bias has " +
                                        std::to_string(vb.shape[0]) + " entries, expected " +
                                        std::to_string(channels));
    }
    check_no_overlap(op, vy, {&vx, &vw, &vb});
    py::gil_scoped_release release;
    with_dtype(dt, [&](auto zero) {
        using T = decltype(zero);
        kernel(g, data<const T>(vx), data<const T>(vw), data<const T>(vb), data<T>(vy));
    });
}

void conv2d_forward(const py::array& x, const py::array& w, const py::object& bias,
                    const py::array& y, i64 sh, i64 sw, i64 pt, i64 pl, i64 dh, i64 dw,
                    i64 groups, bool nhwc) {
    conv_with_bias("conv2d_forward", false, x, w, bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc,
                   [](const aek::ConvGeom& g, auto* xp, auto* wp, auto* bp, auto* yp) {
                       aek::conv2d_forward(g, xp, wp, bp, yp);
                   });
}

void conv2d_backward_input(const py::array& gy, const py::array& w, const py::array& gx, i64 sh,
                           i64 sw, i64 pt, i64 pl, i64 dh, i64 dw, i64 groups, bool nhwc) {
    const char* op = "conv2d_backward_input";
    const DType dt = dtype_of(gy, op, "gy");
    View vgy = view_of(gy, op, "gy", 4, dt, false);
    View vw = view_of(w, op, "w", 4, dt, false);
    View vgx = view_of(gx, op, "gx", 4, dt, true);
    const aek::ConvGeom g = aek::make_conv_geom(op, vgx.shape, vw.shape, vgy.shape, sh, sw, pt,
                                                pl, dh, dw, groups, nhwc);
    check_no_overlap(op, vgx, {&vgy, &vw});
    py::gil_scoped_release release;
    with_dtype(dt, [&](auto zero) {
        using T = decltype(zero);
        aek::conv2d_backward_input<T>(g, data<const T>(vgy), data<const T>(vw), data<T>(vgx));
    });
}

void conv_transpose2d_forward(const py::array& x, const py::array& w, const py::object& bias,
                              const py::array& y, i64 sh, i64 sw, i64 pt, i64 pl, i64 dh, i64 dw,
                              i64 groups, bool nhwc) {
    conv_with_bias("conv_transpose2d_forward", true, x, w, bias, y, sh, sw, pt, pl, dh, dw, groups,
                   nhwc, [](const aek::ConvGeom& g, auto* xp, auto* wp, auto* bp, auto* yp) {
                       aek::conv_transpose2d_forward(g, xp, wp, bp, yp);
                   });
}

void conv2d_backward_filter(const py::array& x, const py::array& gy, const py::array& gw, i64 sh,
                            i64 sw, i64 pt, i64 pl, i64 dh, i64 dw, i64 groups, bool nhwc) {
    const char* op = "conv2d_backward_filter";
    const DType dt = dtype_of(x, op, "x");
    View vx = view_of(x, op, "x", 4, dt, false);
    View vgy = view_of(gy, op, "gy", 4, dt, false);
    View vgw = view_of(gw, op, "gw", 4, dt, true);
    const aek::ConvGeom g = aek::make_conv_geom(op, vx.shape, vgw.shape, vgy.shape, sh, sw, pt,
                                                pl, dh, dw, groups, nhwc);
    check_no_overlap(op, vgw, {&vx, &vgy});
    py::gil_scoped_release release;
    with_dtype(dt, [&](auto zero) {
        using T = decltype(zero);
        aek::conv2d_backward_filter<T>(g, data<const T>(vx), data<const T>(vgy), data<T>(vgw));
    });
}

void conv2d_backward_bias(const py::array& gy, const py::array& gb, bool nhwc) {
    const char* op = "conv2d_backward_bias";
    const DType dt = dtype_of(gy, op, "gy");
    View vgy = view_of(gy, op, "gy", 4, dt, false);
    View vgb = view_of(gb, op, "gb", 1, dt, true);
    const i64 N = vgy.shape[0];
    const i64 K = nhwc ? vgy.shape[3] : vgy.shape[1];
    const i64 P = nhwc ? vgy.shape[1] * vgy.shape[2] : vgy.shape[2] * vgy.shape[3];
    if (vgb.shape[0] != K)
        throw std::invalid_argument(std::string(op) + ": gb has " + std::to_string(vgb.shape[0]) +
                                    " entries, gy has " + std::to_string(K) + " channels");
    check_no_overlap(op, vgb, {&vgy});
    py::gil_scoped_release release;
    with_dtype(dt, [&](auto zero) {
        using T = decltype(zero);
        aek::conv2d_backward_bias<T>(data<const T>(vgy), N, K, P, nhwc, data<T>(vgb));
    });
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "aekernels native conv kernels (C++17, OpenMP, runtime ISA dispatch)";
    (void)aek::isa_table();  // choose the micro-kernels once, at import
    using py::arg;
    m.def("conv2d_forward", &conv2d_forward, arg("x"), arg("w"), arg("bias").none(true), arg("y"),
          arg("sh"), arg("sw"), arg("pt"), arg("pl"), arg("dh"), arg("dw"), arg("groups"),
          arg("nhwc"));
    m.def("conv2d_backward_input", &conv2d_backward_input, arg("gy"), arg("w"), arg("gx"),
          arg("sh"), arg("sw"), arg("pt"), arg("pl"), arg("dh"), arg("dw"), arg("groups"),
          arg("nhwc"));
    m.def("conv_transpose2d_forward", &conv_transpose2d_forward, arg("x"), arg("w"),
          arg("bias").none(true), arg("y"), arg("sh"), arg("sw"), arg("pt"), arg("pl"), arg("dh"),
          arg("dw"), arg("groups"), arg("nhwc"));
    m.def("conv2d_backward_filter", &conv2d_backward_filter, arg("x"), arg("gy"), arg("gw"),
          arg("sh"), arg("sw"), arg("pt"), arg("pl"), arg("dh"), arg("dw"), arg("groups"),
          arg("nhwc"));
    m.def("conv2d_backward_bias", &conv2d_backward_bias, arg("gy"), arg("gb"), arg("nhwc"));
    m.def("set_num_threads", &aek::set_num_threads, arg("n"));
    m.def("get_num_threads", &aek::num_threads);
    m.def("isa", [] { return std::string(aek::isa_table().isa); });
    m.def("set_winograd", [](bool on) { aek::winograd_enabled().store(on); }, arg("on"));
    m.def("get_winograd", [] { return aek::winograd_enabled().load(); });
}
