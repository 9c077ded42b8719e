// Matching pursuit by Gram updates on NVIDIA GPUs: one thread block per sample.
//
// Same contract as skmpsae._pursuit._numpy.gram_pursuit, the reference:
//   C      (n_rows, n_components)  correlations (X - b) @ D.T, updated in place;
//                                  with write_codes, each row is overwritten by
//                                  the sample's dense codes when its pursuit ends
//   G      (n_components, n_components)  Gram matrix D @ D.T
//   thresh, rsq (n_rows,)          tol * ||x - b||^2 and ||x - b||^2, used only
//                                  when use_tol; rsq then ends as the final
//                                  squared residual norm, as in the reference
//   idx    (n_rows, n_steps) int64, coef (n_rows, n_steps): the selections; once
//                                  a sample stops, its remaining steps repeat the
//                                  last index with a zero coefficient.
//   min_coef                       the coefficient stop: a sample stops instead of
//                                  adding a coefficient of magnitude below it (that
//                                  step records a zero); 0 never stops. thresh
//                                  carries the residual stops, relative or absolute.
//
// Each step fuses the update c -= a * G[j] with the search for the next
// maximum: every thread updates its strided elements of the row and keeps its
// best (key, index) pair, a warp-shuffle butterfly reduces the pairs within
// each warp, and each thread then scans the per-warp winners left in shared
// memory. The order (larger key, then lower index) is total, so every thread
// ends with the same winner, the first maximum as numpy.argmax finds it, and
// the whole block follows one control path (no barrier is ever divergent).
//
// Rounding: every operation is an explicit round-to-nearest intrinsic, which
// nvcc never contracts into FMA, so each product and difference is rounded
// exactly as NumPy rounds it and the selections match the reference bit for bit.
//
// The source includes no header, so that NVRTC (CuPy's RawModule) compiles it
// as it stands; the CPU emulation used by the tests force-includes its own.

#define MPG_WARP 32
#define MPG_MAX_WARPS 32
#define MPG_FULL_MASK 0xffffffffu
#define MPG_NONE 0x7fffffff  // index of "no element": loses every comparison

template <typename T> struct Arith;

template <> struct Arith<float> {
    __device__ static __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
    __device__ static __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
    __device__ static __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
    __device__ static __forceinline__ float abs(float a) { return fabsf(a); }
    __device__ static __forceinline__ float lowest() { return -3.402823466e+38f; }
};

template <> struct Arith<double> {
    __device__ static __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
    __device__ static __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
    __device__ static __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
    __device__ static __forceinline__ double abs(double a) { return fabs(a); }
    __device__ static __forceinline__ double lowest() { return -1.7976931348623157e+308; }
};

// The value a step compares: c itself (positive codes) or |c| (signed codes).
template <typename T>
__device__ __forceinline__ T mpg_key(T c, int positive) {
    return positive ? c : Arith<T>::abs(c);
}

// Whether (value a, index ia) beats (value b, index ib). Float comparison
// treats -0.0 and +0.0 as equal, as numpy.argmax does.
template <typename T>
__device__ __forceinline__ bool mpg_better(T a, int ia, T b, int ib, int positive) {
    const T ka = mpg_key(a, positive);
    const T kb = mpg_key(b, positive);
    return ka > kb || (ka == kb && ia < ib);
}

// The block's best (value, index); every thread returns the same pair. Each
// call writes one of the two shared buffers, alternately, so that a buffer is
// only rewritten after the barrier that follows every thread's reads of it.
template <typename T>
__device__ __forceinline__ void mpg_block_best(T& val, int& idx, int positive,
                                               T* s_val, int* s_idx) {
    for (int offset = MPG_WARP / 2; offset > 0; offset /= 2) {
        const T other_val = __shfl_xor_sync(MPG_FULL_MASK, val, offset);
        const int other_idx = __shfl_xor_sync(MPG_FULL_MASK, idx, offset);
        if (mpg_better(other_val, other_idx, val, idx, positive)) {
            val = other_val;
            idx = other_idx;
        }
    }
    const int lane = threadIdx.x % MPG_WARP;
    const int warp = threadIdx.x / MPG_WARP;
    if (lane == 0) {
        s_val[warp] = val;
        s_idx[warp] = idx;
    }
    __syncthreads();
    val = s_val[0];
    idx = s_idx[0];
    const int n_warps = blockDim.x / MPG_WARP;
    for (int w = 1; w < n_warps; ++w) {
        if (mpg_better(s_val[w], s_idx[w], val, idx, positive)) {
            val = s_val[w];
            idx = s_idx[w];
        }
    }
}

// blockDim.x must be a multiple of 32, at most 1024; rows are grid-strided.
template <typename T>
__device__ __forceinline__ void mpg_rows(T* C, const T* G, int n_rows, int n_components,
                                         int n_steps, int positive, int use_tol,
                                         const T* thresh, T* rsq, long long* idx_out,
                                         T* coef_out, int write_codes, T min_coef) {
    typedef Arith<T> A;
    __shared__ T s_val[2][MPG_MAX_WARPS];
    __shared__ int s_idx[2][MPG_MAX_WARPS];
    // A thread without elements holds a pair that every element beats: the
    // lowest value in positive mode, 0 (whose key |0| is the least) otherwise.
    const T none_val = positive ? A::lowest() : T(0);
    const T zero = T(0);

    for (long long row = blockIdx.x; row < n_rows; row += gridDim.x) {
        T* c = C + row * n_components;
        long long* idx = idx_out + row * n_steps;
        T* coef = coef_out + row * n_steps;

        T val = none_val;
        int j = MPG_NONE;
        for (int i = threadIdx.x; i < n_components; i += blockDim.x) {
            if (mpg_better(c[i], i, val, j, positive)) {
                val = c[i];
                j = i;
            }
        }
        int buf = 0;
        mpg_block_best(val, j, positive, s_val[buf], s_idx[buf]);
        buf ^= 1;

        T r = use_tol ? rsq[row] : zero;
        const T stop_at = use_tol ? thresh[row] : zero;
        int last = 0;
        int t = 0;
        while (t < n_steps) {
            if (use_tol && r <= stop_at) break;
            if (j == MPG_NONE) break;  // only non-finite correlations: nothing to pick
            const T a0 = (positive && !(val > zero)) ? zero : val;
            const T a = (A::abs(a0) < min_coef) ? zero : a0;
            if (threadIdx.x == 0) {
                idx[t] = j;
                coef[t] = a;
            }
            last = j;
            ++t;
            if (a == zero) break;
            const T* g = G + (long long)j * n_components;
            if (use_tol) {
                // ||r - a d_j||^2 = ||r||^2 - a (2 c_j - a G_jj), in the reference's order.
                r = A::sub(r, A::mul(a, A::sub(A::add(val, val), A::mul(a, g[j]))));
            }
            T best = none_val;
            int best_j = MPG_NONE;
            for (int i = threadIdx.x; i < n_components; i += blockDim.x) {
                const T v = A::sub(c[i], A::mul(a, g[i]));
                c[i] = v;
                if (mpg_better(v, i, best, best_j, positive)) {
                    best = v;
                    best_j = i;
                }
            }
            mpg_block_best(best, best_j, positive, s_val[buf], s_idx[buf]);
            buf ^= 1;
            val = best;
            j = best_j;
        }
        for (int u = t + threadIdx.x; u < n_steps; u += blockDim.x) {
            idx[u] = last;
            coef[u] = zero;
        }
        if (use_tol && threadIdx.x == 0) rsq[row] = r;
        if (write_codes) {
            for (int i = threadIdx.x; i < n_components; i += blockDim.x) c[i] = zero;
            __syncthreads();
            if (threadIdx.x == 0) {
                // In step order, as the CPU engines accumulate repeated atoms.
                for (int u = 0; u < t; ++u) c[idx[u]] = A::add(c[idx[u]], coef[u]);
            }
        }
        // The next row reuses the shared buffers.
        __syncthreads();
    }
}

extern "C" __global__ void mp_gram_f32(float* C, const float* G, int n_rows, int n_components,
                                       int n_steps, int positive, int use_tol,
                                       const float* thresh, float* rsq,
                                       long long* idx, float* coef, int write_codes,
                                       float min_coef) {
    mpg_rows<float>(C, G, n_rows, n_components, n_steps, positive, use_tol, thresh, rsq, idx,
                    coef, write_codes, min_coef);
}

extern "C" __global__ void mp_gram_f64(double* C, const double* G, int n_rows, int n_components,
                                       int n_steps, int positive, int use_tol,
                                       const double* thresh, double* rsq,
                                       long long* idx, double* coef, int write_codes,
                                       double min_coef) {
    mpg_rows<double>(C, G, n_rows, n_components, n_steps, positive, use_tol, thresh, rsq, idx,
                     coef, write_codes, min_coef);
}
