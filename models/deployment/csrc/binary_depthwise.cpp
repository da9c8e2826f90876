// Packed depthwise convolution for models/deployment (part of the extension built from
// binary_kernels.cpp, which binds it and owns the kernel-path choice).
#include "binary_kernels.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

namespace {

// One depthwise output row; always inlined, so each caller below compiles the popcounts for
// its own target (a popcnt instruction, or the portable bit trick).
__attribute__((always_inline)) inline void depthwise_row(
    const uint64_t* xr, const uint64_t* vr, uint64_t wr, int64_t Wx, uint64_t kmask,
    int64_t stride, int64_t T_out, bool unsigned_input, int32_t* out) {
  for (int64_t t = 0; t < T_out; ++t) {
    const int64_t p = t * stride, word = p >> 6, shift = p & 63;
    uint64_t xb = xr[word] >> shift, vb = vr ? vr[word] >> shift : ~uint64_t(0);
    if (shift && word + 1 < Wx) {
      xb |= xr[word + 1] << (64 - shift);
      if (vr) vb |= vr[word + 1] << (64 - shift);
    }
    xb &= kmask;
    vb &= kmask;
    if (unsigned_input) {
      // {0, 1} inputs: a masked or padded frame is a 0 bit either way.
      const uint64_t ones = xb & vb;
      out[t] = 2 * __builtin_popcountll(ones & wr) - __builtin_popcountll(ones);
    } else {
      out[t] = __builtin_popcountll(vb) - 2 * __builtin_popcountll((xb ^ wr) & vb);
    }
  }
}

void depthwise_portable(const uint64_t* xr, const uint64_t* vr, uint64_t wr, int64_t Wx,
                        uint64_t kmask, int64_t stride, int64_t T_out, bool unsigned_input,
                        int32_t* out) {
  depthwise_row(xr, vr, wr, Wx, kmask, stride, T_out, unsigned_input, out);
}

__attribute__((target("popcnt")))
void depthwise_popcnt(const uint64_t* xr, const uint64_t* vr, uint64_t wr, int64_t Wx,
                      uint64_t kmask, int64_t stride, int64_t T_out, bool unsigned_input,
                      int32_t* out) {
  depthwise_row(xr, vr, wr, Wx, kmask, stride, T_out, unsigned_input, out);
}

}  // namespace

// Depthwise convolution on packed time rows: x (R, Wx) with row r of channel r % C, time
// already padded; `valid` (same shape, or empty: all valid) marks real frames (zero
// padding and masked frames enter as 0); w (C) holds each channel's K <= 64 kernel bits.
// out[r, t] = sum_k x[r, t * stride + k] w[r % C, k] over valid frames, as an integer.
// (Scalar popcounts on every path: a window is one word.)
torch::Tensor binary_depthwise(torch::Tensor x, torch::Tensor valid, torch::Tensor w, int64_t K,
                               int64_t stride, int64_t T_out, bool unsigned_input, int64_t path) {
  TORCH_CHECK(K >= 1 && K <= 64, "depthwise kernels of 1 to 64 taps, got ", K);
  TORCH_CHECK(x.scalar_type() == torch::kInt64 && w.scalar_type() == torch::kInt64,
              "packed operands are int64");
  x = x.contiguous();
  w = w.contiguous();
  const bool has_valid = valid.defined() && valid.numel() > 0;
  if (has_valid) valid = valid.contiguous();
  const int64_t R = x.size(0), Wx = x.size(1), C = w.size(0);
  TORCH_CHECK(R % C == 0, "rows are not a whole number of channel groups");
  TORCH_CHECK(T_out >= 0 && (T_out == 0 || (T_out - 1) * stride + K <= Wx * 64),
              "packed rows too short for the output");
  const auto row_fn = resolve_path(path) > 1 ? depthwise_popcnt : depthwise_portable;
  auto out = torch::empty({R, T_out}, x.options().dtype(torch::kInt32));
  const auto* X = reinterpret_cast<const uint64_t*>(x.data_ptr<int64_t>());
  const auto* V = has_valid ? reinterpret_cast<const uint64_t*>(valid.data_ptr<int64_t>()) : nullptr;
  const auto* Wt = reinterpret_cast<const uint64_t*>(w.data_ptr<int64_t>());
  int32_t* O = out.data_ptr<int32_t>();
  const uint64_t kmask = K == 64 ? ~uint64_t(0) : ((uint64_t(1) << K) - 1);
  at::parallel_for(0, R, std::max<int64_t>(1, 4096 / std::max<int64_t>(T_out, 1)),
                   [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      row_fn(X + r * Wx, V ? V + r * Wx : nullptr, Wt[r % C], Wx, kmask, stride, T_out,
             unsigned_input, O + r * T_out);
  });
  return out;
}
