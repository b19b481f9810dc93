// Fused GPU kernels for minivit's fast path (minivit/fused.py launches them with cupy.RawModule).
//
// Each kernel does in one pass over memory what the plain code (minivit/layers, minivit/optim.py)
// does in several NumPy/CuPy operations, with the same arithmetic in the same order where that
// matters. The plain functions stay the ones to read; these are only a speed-up, and one runs by
// default only after a GPU has checked it against its plain twin (minivit/fast/fused/verified.json).
//
// Every kernel exists twice, as NAME_f32 (float) and NAME_f64 (double): the bodies are templates,
// and the INSTANTIATE macros at the bottom give them plain C names (extern "C"), so CuPy and the
// NVRTC compile test find them by name. No #include: NVRTC compiles this without CUDA headers.
//
// Two launch shapes:
//   elementwise: a grid-stride loop over n elements (any grid size covers any n);
//   row-wise:    one warp (32 threads) per row of length n or D; the row's sums and maxima are
//                warp shuffles, so no shared memory and no __syncthreads are needed.

typedef long long i64;

__device__ __forceinline__ float  v_exp(float x)   { return expf(x); }
__device__ __forceinline__ double v_exp(double x)  { return exp(x); }
__device__ __forceinline__ float  v_tanh(float x)  { return tanhf(x); }
__device__ __forceinline__ double v_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float  v_sqrt(float x)  { return sqrtf(x); }
__device__ __forceinline__ double v_sqrt(double x) { return sqrt(x); }

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;                                  // every lane holds the row's sum
}

template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) {
        T other = __shfl_xor_sync(0xffffffffu, v, o);
        v = other > v ? other : v;
    }
    return v;
}

#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// One warp per row: `row` and `lane` for this thread; a whole warp leaves together, so the
// shuffles below always see 32 active lanes.
#define WARP_PER_ROW(rows)                                                    \
    const i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;  \
    const int lane = threadIdx.x % 32;                                        \
    if (row >= (rows)) return;

// ------------------------------------------------------------------------------ GELU (tanh)
// x: (n,) the first linear layer's x W, *without* its bias (d > 0: bias (d,) is added here, in
// place, so x holds x W + b afterwards, the pre-activation the backward needs); d == 0: no bias.
// t = tanh(c (x + k x^3)), y = 0.5 x (1 + t): the plain gelu_forward's cache (x, t) and output.
template <typename T>
__device__ void gelu_bias_forward(T* x, const T* bias, T* t, T* y, i64 n, i64 d) {
    const T C = (T)0.7978845608028654, K = (T)0.044715;      // sqrt(2/pi), 0.044715
    GRID_STRIDE(i, n) {
        T xv = x[i];
        if (d > 0) { xv += bias[i % d]; x[i] = xv; }
        T inner = xv * xv * K;                 // the plain code's order: ((x x k + 1) x) c
        inner += (T)1;
        inner *= xv;
        inner *= C;
        T tv = v_tanh(inner);
        t[i] = tv;
        y[i] = (tv + (T)1) * xv * (T)0.5;
    }
}

// dx = dout * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2)), from the forward's cache (x, t).
template <typename T>
__device__ void gelu_backward(const T* dout, const T* x, const T* t, T* dx, i64 n) {
    const T C = (T)0.7978845608028654, C3K = (T)(3.0 * 0.044715 * 0.7978845608028654);
    GRID_STRIDE(i, n) {
        T xv = x[i], tv = t[i];
        T dinner = xv * xv * C3K + C;          // c (1 + 3k x^2)
        dinner *= (T)1 - tv * tv;              // sech^2
        dinner *= xv;
        dinner += tv;
        dinner += (T)1;
        dinner *= (T)0.5;
        dx[i] = dinner * dout[i];
    }
}

// ------------------------------------------------------------------------------ dropout
// mask holds uniform draws u in [0, 1) on entry (drawn by the caller from the same generator,
// with the same call, as the plain dropout_forward) and the scaled keep-mask (u >= p) / (1 - p)
// on exit; y = x * mask.
template <typename T>
__device__ void dropout_forward(const T* x, T* mask, T* y, T p, T scale, i64 n) {
    GRID_STRIDE(i, n) {
        T m = mask[i] >= p ? scale : (T)0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

// ------------------------------------------------------------------------- residual adds
// out = x + a * dropout_mask * drop_path_mask: a residual branch a joins the stream x (eqs. 2-3).
// mode bit 1: dmask holds uniform draws on entry, turned in place into the dropout mask
//             (u >= p) * scale as dropout_forward does, and applied;
// mode bit 2: pmask (B,) is the per-sample drop-path mask, sample = i / per_sample.
template <typename T>
__device__ void residual_forward(const T* x, const T* a, T* dmask, const T* pmask, T* out,
                                 T p, T scale, i64 n, i64 per_sample, int mode) {
    GRID_STRIDE(i, n) {
        T v = a[i];
        if (mode & 1) { T m = dmask[i] >= p ? scale : (T)0; dmask[i] = m; v *= m; }
        if (mode & 2) v *= pmask[i / per_sample];
        out[i] = x[i] + v;
    }
}

// The gradient reaching the branch: da = dout * drop_path_mask * dropout_mask (same modes;
// dmask now holds the mask). (The gradient of x is dout itself: no kernel needed.)
template <typename T>
__device__ void residual_backward(const T* dout, const T* dmask, const T* pmask, T* da,
                                  i64 n, i64 per_sample, int mode) {
    GRID_STRIDE(i, n) {
        T v = dout[i];
        if (mode & 2) v *= pmask[i / per_sample];
        if (mode & 1) v *= dmask[i];
        da[i] = v;
    }
}

// ------------------------------------------------------------------------------- softmax
// y = softmax(x) along rows of length n: subtract the row max (no overflow), exponentiate,
// multiply by 1 / row sum.
template <typename T>
__device__ void softmax_forward(const T* x, T* y, i64 rows, int n) {
    WARP_PER_ROW(rows)
    const T* xr = x + row * n;
    T* yr = y + row * n;
    T m = xr[0];
    for (int j = lane; j < n; j += 32) m = xr[j] > m ? xr[j] : m;
    m = warp_max(m);
    T s = (T)0;
    for (int j = lane; j < n; j += 32) { T e = v_exp(xr[j] - m); yr[j] = e; s += e; }
    const T r = (T)1 / warp_sum(s);
    for (int j = lane; j < n; j += 32) yr[j] *= r;
}

// dx = s * (dout - sum_j dout_j s_j) per row (the softmax Jacobian-vector product).
template <typename T>
__device__ void softmax_backward(const T* dout, const T* s, T* dx, i64 rows, int n) {
    WARP_PER_ROW(rows)
    const T* dr = dout + row * n;
    const T* sr = s + row * n;
    T acc = (T)0;
    for (int j = lane; j < n; j += 32) acc += dr[j] * sr[j];
    acc = warp_sum(acc);
    for (int j = lane; j < n; j += 32) dx[row * n + j] = sr[j] * (dr[j] - acc);
}

// ----------------------------------------------------------------------------- LayerNorm
// Per row of D features: mu, the biased variance of (x - mu) (two passes: stable), rstd =
// 1 / sqrt(var + eps), xhat = (x - mu) rstd, y = xhat gamma + beta. Writes y, xhat (rows, D)
// and rstd (rows,): the plain layernorm_forward's output and cache.
template <typename T>
__device__ void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* xhat,
                                  T* rstd, i64 rows, int D, T eps) {
    WARP_PER_ROW(rows)
    const T* xr = x + row * D;
    T s = (T)0;
    for (int j = lane; j < D; j += 32) s += xr[j];
    const T mu = warp_sum(s) / (T)D;
    T q = (T)0;
    for (int j = lane; j < D; j += 32) { T c = xr[j] - mu; q += c * c; }
    const T r = (T)1 / v_sqrt(warp_sum(q) / (T)D + eps);
    for (int j = lane; j < D; j += 32) {
        T h = (xr[j] - mu) * r;
        xhat[row * D + j] = h;
        y[row * D + j] = h * gamma[j] + beta[j];
    }
    if (lane == 0) rstd[row] = r;
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, per row; has_res: plus dres
// (the residual stream's gradient, so the block's `dz += dout` costs no extra pass; dx may be
// the same buffer as dres).
template <typename T>
__device__ void layernorm_backward(const T* dy, const T* xhat, const T* rstd, const T* gamma,
                                   const T* dres, T* dx, i64 rows, int D, int has_res) {
    WARP_PER_ROW(rows)
    const T* dr = dy + row * D;
    const T* hr = xhat + row * D;
    T sg = (T)0, sgx = (T)0;
    for (int j = lane; j < D; j += 32) { T g = dr[j] * gamma[j]; sg += g; sgx += g * hr[j]; }
    const T mg = warp_sum(sg) / (T)D, mgx = warp_sum(sgx) / (T)D, r = rstd[row];
    for (int j = lane; j < D; j += 32) {
        T v = r * (dr[j] * gamma[j] - mg - hr[j] * mgx);
        if (has_res) v += dres[row * D + j];
        dx[row * D + j] = v;
    }
}

// dgamma = sum over rows of dy * xhat, dbeta = sum of dy, in two deterministic stages (no
// atomics): this kernel writes one partial sum per chunk of rows (grid.y = chunk, one thread
// per feature), the caller sums the (chunks, D) partials.
template <typename T>
__device__ void layernorm_param_grads(const T* dy, const T* xhat, T* part_dgamma, T* part_dbeta,
                                      i64 rows, int D, i64 rows_per_chunk) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= D) return;
    const i64 r0 = (i64)blockIdx.y * rows_per_chunk;
    const i64 r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    T sg = (T)0, sb = (T)0;
    for (i64 r = r0; r < r1; ++r) { T g = dy[r * D + col]; sg += g * xhat[r * D + col]; sb += g; }
    part_dgamma[(i64)blockIdx.y * D + col] = sg;
    part_dbeta[(i64)blockIdx.y * D + col] = sb;
}

// --------------------------------------------------------------------------------- AdamW
// One AdamW step in place, with the host-computed scalars of the plain adamw_update
// (omb1 = 1 - b1 and omb2 = 1 - b2 come from the host too, rounded once as the plain code's are):
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w *= decay (= 1 - lr wd);
// w -= step_size * m / (sqrt(v) + eps_c)  (both bias corrections folded into step_size, eps_c).
template <typename T>
__device__ void adamw_update(T* w, const T* g, T* m, T* v, i64 n, T b1, T omb1, T b2, T omb2,
                             T decay, T step_size, T eps_c) {
    GRID_STRIDE(i, n) {
        const T gi = g[i];
        T mi = m[i] * b1 + omb1 * gi;
        T vi = v[i] * b2 + omb2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        T wi = w[i] * decay;
        w[i] = wi - step_size * (mi / (v_sqrt(vi) + eps_c));
    }
}

// ------------------------------------------------------- the extern "C" names (f32 and f64)
#define INSTANTIATE(T, S)                                                                          \
extern "C" __global__ void gelu_bias_forward_##S(T* x, const T* b, T* t, T* y, i64 n, i64 d)       \
    { gelu_bias_forward<T>(x, b, t, y, n, d); }                                                     \
extern "C" __global__ void gelu_backward_##S(const T* dout, const T* x, const T* t, T* dx, i64 n) \
    { gelu_backward<T>(dout, x, t, dx, n); }                                                        \
extern "C" __global__ void dropout_forward_##S(const T* x, T* mask, T* y, T p, T scale, i64 n)    \
    { dropout_forward<T>(x, mask, y, p, scale, n); }                                                \
extern "C" __global__ void residual_forward_##S(const T* x, const T* a, T* dm, const T* pm, T* out,\
        T p, T scale, i64 n, i64 per_sample, int mode)                                              \
    { residual_forward<T>(x, a, dm, pm, out, p, scale, n, per_sample, mode); }                      \
extern "C" __global__ void residual_backward_##S(const T* dout, const T* dm, const T* pm, T* da,   \
        i64 n, i64 per_sample, int mode)                                                            \
    { residual_backward<T>(dout, dm, pm, da, n, per_sample, mode); }                                \
extern "C" __global__ void softmax_forward_##S(const T* x, T* y, i64 rows, int n)                 \
    { softmax_forward<T>(x, y, rows, n); }                                                          \
extern "C" __global__ void softmax_backward_##S(const T* dout, const T* s, T* dx, i64 rows, int n)\
    { softmax_backward<T>(dout, s, dx, rows, n); }                                                  \
extern "C" __global__ void layernorm_forward_##S(const T* x, const T* gamma, const T* beta, T* y,  \
        T* xhat, T* rstd, i64 rows, int D, T eps)                                                   \
    { layernorm_forward<T>(x, gamma, beta, y, xhat, rstd, rows, D, eps); }                          \
extern "C" __global__ void layernorm_backward_##S(const T* dy, const T* xhat, const T* rstd,      \
        const T* gamma, const T* dres, T* dx, i64 rows, int D, int has_res)                         \
    { layernorm_backward<T>(dy, xhat, rstd, gamma, dres, dx, rows, D, has_res); }                   \
extern "C" __global__ void layernorm_param_grads_##S(const T* dy, const T* xhat, T* pg, T* pb,     \
        i64 rows, int D, i64 rows_per_chunk)                                                        \
    { layernorm_param_grads<T>(dy, xhat, pg, pb, rows, D, rows_per_chunk); }                        \
extern "C" __global__ void adamw_update_##S(T* w, const T* g, T* m, T* v, i64 n, T b1, T omb1,   \
        T b2, T omb2, T decay, T step_size, T eps_c)                                                \
    { adamw_update<T>(w, g, m, v, n, b1, omb1, b2, omb2, decay, step_size, eps_c); }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
