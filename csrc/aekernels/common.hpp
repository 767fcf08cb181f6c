// Shared plumbing of the native conv kernels: integer helpers, thread count,
// denormal control, reusable aligned scratch and the parallel-loop helper.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define AEK_X86 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace aek {

using i64 = std::int64_t;

// A read prefetch hint (baseline ISA: prefetcht1).
inline void prefetch_read(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}

inline i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// Floor division that is correct for negative numerators (phase arithmetic of
// strided backward-input works with offsets left of the image).
inline i64 floor_div(i64 a, i64 b) {
    i64 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

inline bool in_range(i64 v, i64 n) {
    return static_cast<std::uint64_t>(v) < static_cast<std::uint64_t>(n);
}

// Short row copies/fills (tens of elements) are the inner loop of slab
// building; GCC would turn plain loops into libc memmove/memset calls whose
// call overhead dominates at these lengths, so keep them inline.
#if defined(__GNUC__) && !defined(__clang__)
#define AEK_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define AEK_INLINE_LOOPS
#endif
// ... and the row copies themselves inline into their loops (GCC otherwise
// keeps them out of line, a call per row of a few tens of elements).
#if defined(__GNUC__) || defined(__clang__)
#define AEK_ROW_COPY AEK_INLINE_LOOPS __attribute__((always_inline)) inline
#else
#define AEK_ROW_COPY inline
#endif

// The tail is one more move overlapping the previous one rather than a scalar
// loop (rows of a few tens of elements would spend most of their time there).
template <class T>
AEK_ROW_COPY void copy_short(const T* __restrict s, i64 n, T* __restrict d) {
    constexpr i64 L = 64 / sizeof(T), Q = 16 / sizeof(T);  // fixed-size memcpy: vector moves
    if (n >= L) {
        for (i64 i = 0; i + L < n; i += L) std::memcpy(d + i, s + i, 64);
        std::memcpy(d + n - L, s + n - L, 64);
    } else if (n >= Q) {
        for (i64 i = 0; i + Q < n; i += Q) std::memcpy(d + i, s + i, 16);
        std::memcpy(d + n - Q, s + n - Q, 16);
    } else {
        for (i64 i = 0; i < n; ++i) d[i] = s[i];
    }
}

template <class T>
AEK_ROW_COPY void zero_short(T* d, i64 n) {
    constexpr i64 L = 64 / sizeof(T), Q = 16 / sizeof(T);
    static const T z[L] = {};
    if (n >= L) {
        for (i64 i = 0; i + L < n; i += L) std::memcpy(d + i, z, 64);
        std::memcpy(d + n - L, z, 64);
    } else if (n >= Q) {
        for (i64 i = 0; i + Q < n; i += Q) std::memcpy(d + i, z, 16);
        std::memcpy(d + n - Q, z, 16);
    } else {
        for (i64 i = 0; i < n; ++i) d[i] = T(0);
    }
}

// Thread count used by every parallel region (dispatch.cpp owns the global so
// calls from different Python threads see one setting).
int num_threads();
void set_num_threads(int n);

// May fp32 3x3 stride-1 convs run on Winograd F(2x2,3x3) (aekernels.set_conv_algorithm)?
// Off by default: its rounding error follows the transformed tiles, not sum|x*w| of each
// output (TESTING.md's fp32 bound), and on data mixing large and small magnitudes it
// exceeds that bound.  Process-wide; a header-only consumer gets its own, off.
inline std::atomic<bool>& winograd_enabled() {
    static std::atomic<bool> enabled{false};
    return enabled;
}

// Threads for a call doing `work` multiply-adds (or element visits): tiny calls
// run on one thread, because waking the team costs more than it saves (and on a
// busy machine a descheduled worker stalls the whole call).
// `work` is a double: products of extents may exceed int64 for huge shapes.
constexpr double kMinWorkPerThread = double(1 << 17);
inline int threads_for_work(double work) {
    const double useful = std::max(1.0, work / kMinWorkPerThread);
    return static_cast<int>(std::min(static_cast<double>(num_threads()), useful));
}

// Flush-to-zero / denormals-are-zero for the lifetime of the guard, on this
// thread only.  Denormal operands make x86 FMAs ~100x slower (pytorch #19651),
// and autoencoder gradients decay into that range late in training.  Only fp32
// paths enable it: fp64 users ask for IEEE results.
class DenormalsGuard {
public:
    explicit DenormalsGuard(bool enable) {
#ifdef AEK_X86
        saved_ = _mm_getcsr();
        if (enable) _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#else
        (void)enable;
#endif
    }
    ~DenormalsGuard() {
#ifdef AEK_X86
        _mm_setcsr(saved_);
#endif
    }
    DenormalsGuard(const DenormalsGuard&) = delete;
    DenormalsGuard& operator=(const DenormalsGuard&) = delete;

private:
    unsigned saved_ = 0;
};

// Which parallel regions run under the guard: fp32 ones.
template <class T>
constexpr bool kFlushDenormals = std::is_same<T, float>::value;

// Grow-only, 64-byte aligned scratch.  Kept per thread so that large packing
// buffers are not mmap'ed and page-faulted again on every call.
template <class T>
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& o) noexcept : ptr_(o.ptr_), cap_(o.cap_) {
        o.ptr_ = nullptr;
        o.cap_ = 0;
    }
    ~AlignedBuffer() { release(); }

    T* get(std::size_t n) {
        if (n > cap_) {
            release();
            std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
            ptr_ = static_cast<T*>(::operator new(bytes, std::align_val_t(64)));
            cap_ = bytes / sizeof(T);
        }
        return ptr_;
    }

private:
    void release() {
        if (ptr_) ::operator delete(ptr_, std::align_val_t(64));
        ptr_ = nullptr;
        cap_ = 0;
    }
    T* ptr_ = nullptr;
    std::size_t cap_ = 0;
};

template <class T>
struct Workspace {
    AlignedBuffer<T> a, b, tmp;
    AlignedBuffer<T> slab, slabs, cbuf;
    std::vector<i64> roff, coff, toff;
    std::vector<const T*> rowptr;
};

template <class T>
Workspace<T>& thread_workspace() {
    static thread_local Workspace<T> ws;
    return ws;
}

// Run f(item) for item in [0, items) on num_threads() threads.  Which thread
// runs an item never changes the result (items write disjoint outputs), so
// dynamic scheduling keeps determinism.  Exceptions (bad_alloc) are carried out
// of the parallel region instead of terminating the process.
template <class F>
void parallel_items(i64 items, int nthreads, bool ftz, F&& f) {
    std::exception_ptr err = nullptr;
    std::atomic<bool> failed{false};
    std::mutex mu;
    const int nt = static_cast<int>(std::max<i64>(1, std::min<i64>(nthreads, items)));
    (void)nt;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        DenormalsGuard guard(ftz);
#pragma omp for schedule(dynamic, 1)
        for (i64 it = 0; it < items; ++it) {
            if (failed.load(std::memory_order_relaxed)) continue;
            try {
                f(it);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mu);
                if (!err) err = std::current_exception();
                failed.store(true);
            }
        }
    }
    if (err) std::rethrow_exception(err);
}

// dst[e] += parts[(s - 1)*n + e] for s = 1 .. nparts - 1, in that order for
// every element (reductions split into fixed slices stay deterministic).
template <class T>
void add_partials(T* dst, const T* parts, i64 nparts, i64 n, int nthreads) {
    if (nparts <= 1) return;
    const i64 block = 4096;
    parallel_items(ceil_div(n, block), nthreads, kFlushDenormals<T>, [&](i64 b) {
        const i64 e0 = b * block, e1 = std::min(n, e0 + block);
        for (i64 s = 1; s < nparts; ++s) {
            const T* src = parts + (s - 1) * n;
            for (i64 e = e0; e < e1; ++e) dst[e] += src[e];
        }
    });
}

}  // namespace aek
