// Bit-packed W1A1 products for models/deployment (see its docstring for the math).
//
// Operands are rows of 64-bit words, bit k of word k / 64 holding element k (1 = +1, or 1
// in a {0, 1} operand); bits past K are 0. Three CPU paths live in one build, each function
// compiled for its own target, and `path` picks one at run time (0 = best this CPU has):
//   1 portable  plain C++ (the compiler's popcount)
//   2 avx2      256-bit XOR/AND, popcount by a 4-bit lookup (vpshufb) summed with vpsadbw
//   3 avx512    512-bit XOR/AND and VPOPCNTDQ (untested where the CPU lacks it)
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cstdint>

namespace {

constexpr int64_t kTileN = 256;   // rows of B kept hot in L2 while A rows stream past
constexpr int64_t kTileM = 16;    // rows of A per task

enum Op { kXor = 0, kAnd = 1 };

inline uint64_t combine(uint64_t a, uint64_t b, int op) { return op == kXor ? a ^ b : a & b; }

// ---- portable ---------------------------------------------------------------------------
void tile_portable(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
                   int64_t n0, int64_t n1, int op, int32_t* C, int64_t ldc) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    for (int64_t j = n0; j < n1; ++j) {
      const uint64_t* b = B + j * W;
      int64_t count = 0;
      for (int64_t w = 0; w < W; ++w) count += __builtin_popcountll(combine(a[w], b[w], op));
      C[i * ldc + j] = static_cast<int32_t>(count);
    }
  }
}

// ---- AVX2 -------------------------------------------------------------------------------
__attribute__((target("avx2,popcnt")))
inline __m256i popcount_bytes_avx2(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);
}

__attribute__((target("avx2,popcnt")))
inline int64_t hsum_avx2(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// Counts of one A row against four B rows; byte counters are widened every 31 chunks (each
// byte grows by at most 8 per chunk).
__attribute__((target("avx2,popcnt")))
void row_x4_avx2(const uint64_t* a, const uint64_t* const b[4], int64_t W, int op,
                 int64_t out[4]) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i total[4] = {zero, zero, zero, zero};
  const int64_t chunks = W / 4;
  for (int64_t c0 = 0; c0 < chunks; c0 += 31) {
    const int64_t c1 = std::min(chunks, c0 + 31);
    __m256i bytes[4] = {zero, zero, zero, zero};
    for (int64_t c = c0; c < c1; ++c) {
      __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4 * c));
      for (int r = 0; r < 4; ++r) {
        __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[r] + 4 * c));
        __m256i v = op == kXor ? _mm256_xor_si256(va, vb) : _mm256_and_si256(va, vb);
        bytes[r] = _mm256_add_epi8(bytes[r], popcount_bytes_avx2(v));
      }
    }
    for (int r = 0; r < 4; ++r) total[r] = _mm256_add_epi64(total[r], _mm256_sad_epu8(bytes[r], zero));
  }
  for (int r = 0; r < 4; ++r) {
    int64_t count = hsum_avx2(total[r]);
    for (int64_t w = chunks * 4; w < W; ++w) count += _mm_popcnt_u64(combine(a[w], b[r][w], op));
    out[r] = count;
  }
}

__attribute__((target("avx2,popcnt")))
void tile_avx2(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
               int64_t n0, int64_t n1, int op, int32_t* C, int64_t ldc) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      const uint64_t* b[4] = {B + j * W, B + (j + 1) * W, B + (j + 2) * W, B + (j + 3) * W};
      int64_t out[4];
      row_x4_avx2(a, b, W, op, out);
      for (int r = 0; r < 4; ++r) C[i * ldc + j + r] = static_cast<int32_t>(out[r]);
    }
    for (; j < n1; ++j) {
      const uint64_t* b = B + j * W;
      int64_t count = 0;
      for (int64_t w = 0; w < W; ++w) count += _mm_popcnt_u64(combine(a[w], b[w], op));
      C[i * ldc + j] = static_cast<int32_t>(count);
    }
  }
}

// ---- AVX-512 VPOPCNTDQ --------------------------------------------------------------------
__attribute__((target("avx512f,avx512vpopcntdq,popcnt")))
void tile_avx512(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
                 int64_t n0, int64_t n1, int op, int32_t* C, int64_t ldc) {
  const int64_t chunks = W / 8;
  const __mmask8 tail_mask = static_cast<__mmask8>((1u << (W % 8)) - 1u);
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      __m512i total[4];
      for (int r = 0; r < 4; ++r) total[r] = _mm512_setzero_si512();
      for (int64_t c = 0; c <= chunks; ++c) {
        const __mmask8 mask = c < chunks ? static_cast<__mmask8>(0xff) : tail_mask;
        if (!mask) break;
        __m512i va = _mm512_maskz_loadu_epi64(mask, a + 8 * c);
        for (int r = 0; r < 4; ++r) {
          __m512i vb = _mm512_maskz_loadu_epi64(mask, B + (j + r) * W + 8 * c);
          __m512i v = op == kXor ? _mm512_xor_si512(va, vb) : _mm512_and_si512(va, vb);
          total[r] = _mm512_add_epi64(total[r], _mm512_popcnt_epi64(v));
        }
      }
      for (int r = 0; r < 4; ++r)
        C[i * ldc + j + r] = static_cast<int32_t>(_mm512_reduce_add_epi64(total[r]));
    }
    for (; j < n1; ++j) {
      const uint64_t* b = B + j * W;
      int64_t count = 0;
      for (int64_t w = 0; w < W; ++w) count += _mm_popcnt_u64(combine(a[w], b[w], op));
      C[i * ldc + j] = static_cast<int32_t>(count);
    }
  }
}

using TileFn = void (*)(const uint64_t*, const uint64_t*, int64_t, int64_t, int64_t, int64_t,
                        int64_t, int, int32_t*, int64_t);

bool cpu_has(int path) {
  __builtin_cpu_init();
  if (path == 1) return true;
  if (path == 2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  if (path == 3) return __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512vpopcntdq");
  return false;
}

int64_t resolve_path(int64_t path) {
  if (path == 0) return cpu_has(3) ? 3 : (cpu_has(2) ? 2 : 1);
  TORCH_CHECK(path >= 1 && path <= 3, "unknown kernel path ", path);
  TORCH_CHECK(cpu_has(static_cast<int>(path)), "this CPU lacks the instructions of kernel path ",
              path);
  return path;
}

TileFn tile_for(int64_t path) {
  return path == 3 ? tile_avx512 : (path == 2 ? tile_avx2 : tile_portable);
}

__attribute__((target("popcnt")))
int64_t popcount_row_fast(const uint64_t* a, int64_t W) {
  int64_t count = 0;
  for (int64_t w = 0; w < W; ++w) count += _mm_popcnt_u64(a[w]);
  return count;
}

int64_t popcount_row(const uint64_t* a, int64_t W, bool fast) {
  if (fast) return popcount_row_fast(a, W);
  int64_t count = 0;
  for (int64_t w = 0; w < W; ++w) count += __builtin_popcountll(a[w]);
  return count;
}

}  // namespace

// Paths this CPU can run, best last.
std::vector<int64_t> supported_paths() {
  std::vector<int64_t> paths;
  for (int p = 1; p <= 3; ++p) if (cpu_has(p)) paths.push_back(p);
  return paths;
}

// a (Bt, M, W), b (Bt, N, W) int64 -> (Bt, M, N) int32: the exact integer products
//   signed x signed   (op 0): sum a_k b_k = K - 2 popcount(a ^ b)
//   {0,1} x signed    (op 1): sum a_k b_k = 2 popcount(a & b) - popcount(a)
torch::Tensor binary_matmul(torch::Tensor a, torch::Tensor b, int64_t K, int64_t op,
                            int64_t path) {
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3, "binary_matmul takes (batch, rows, words) operands");
  TORCH_CHECK(a.scalar_type() == torch::kInt64 && b.scalar_type() == torch::kInt64,
              "packed operands are int64");
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(2), "operand shapes differ");
  TORCH_CHECK(op == kXor || op == kAnd, "unknown op ", op);
  a = a.contiguous();
  b = b.contiguous();
  const int64_t batch = a.size(0), M = a.size(1), N = b.size(1), W = a.size(2);
  TORCH_CHECK(K <= W * 64 && K > (W - 1) * 64, "K does not match the packed width");
  const int64_t chosen = resolve_path(path);
  const TileFn tile = tile_for(chosen);
  auto out = torch::empty({batch, M, N}, a.options().dtype(torch::kInt32));
  const auto* A = reinterpret_cast<const uint64_t*>(a.data_ptr<int64_t>());
  const auto* B = reinterpret_cast<const uint64_t*>(b.data_ptr<int64_t>());
  int32_t* C = out.data_ptr<int32_t>();
  const int64_t m_tiles = (M + kTileM - 1) / kTileM, n_tiles = (N + kTileN - 1) / kTileN;
  const int64_t tasks = batch * n_tiles * m_tiles;
  const int64_t work_per_task = std::max<int64_t>(1, kTileM * std::min(N, kTileN) * W);
  at::parallel_for(0, tasks, std::max<int64_t>(1, (1 << 16) / work_per_task),
                   [&](int64_t begin, int64_t end) {
    std::vector<int64_t> row_counts;
    for (int64_t task = begin; task < end; ++task) {
      // n tile outermost within a batch item: consecutive tasks share the same B tile.
      const int64_t bi = task / (n_tiles * m_tiles);
      const int64_t rest = task % (n_tiles * m_tiles);
      const int64_t nt = rest / m_tiles, mt = rest % m_tiles;
      const int64_t m0 = mt * kTileM, m1 = std::min(M, m0 + kTileM);
      const int64_t n0 = nt * kTileN, n1 = std::min(N, n0 + kTileN);
      const uint64_t* Ab = A + bi * M * W;
      const uint64_t* Bb = B + bi * N * W;
      int32_t* Cb = C + bi * M * N;
      tile(Ab, Bb, W, m0, m1, n0, n1, static_cast<int>(op), Cb, N);
      for (int64_t i = m0; i < m1; ++i) {
        int32_t* row = Cb + i * N;
        if (op == kXor) {
          for (int64_t j = n0; j < n1; ++j) row[j] = static_cast<int32_t>(K) - 2 * row[j];
        } else {
          const int32_t ones = static_cast<int32_t>(popcount_row(Ab + i * W, W, chosen > 1));
          for (int64_t j = n0; j < n1; ++j) row[j] = 2 * row[j] - ones;
        }
      }
    }
  });
  return out;
}

// Packs the last dimension of x (R, K) into (R, ceil(K / 64)) int64 words. Bit k is
//   signed:   (x_k + offset_k) >= 0
//   unsigned: (x_k + offset_k) / alpha > 0.5   (round-half-even of q is >= 1 exactly then)
//   bool x:   x_k
// `offset` may be empty (no offset).
torch::Tensor pack_rows(torch::Tensor x, torch::Tensor offset, double alpha, bool unsigned_levels) {
  TORCH_CHECK(x.dim() == 2, "pack_rows takes a (rows, K) tensor");
  x = x.contiguous();
  const int64_t R = x.size(0), K = x.size(1), W = (K + 63) / 64;
  auto out = torch::zeros({R, W}, x.options().dtype(torch::kInt64));
  auto* words = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(K, 1));
  if (x.scalar_type() == torch::kBool) {
    const bool* data = x.data_ptr<bool>();
    at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t w = 0; w < W; ++w) {
          uint64_t word = 0;
          const int64_t k0 = w * 64, k1 = std::min(K, k0 + 64);
          for (int64_t k = k0; k < k1; ++k)
            word |= static_cast<uint64_t>(data[r * K + k]) << (k - k0);
          words[r * W + w] = word;
        }
    });
    return out;
  }
  const bool has_offset = offset.defined() && offset.numel() > 0;
  if (has_offset) {
    TORCH_CHECK(offset.numel() == K, "offset has ", offset.numel(), " entries for K = ", K);
    offset = offset.to(x.scalar_type()).contiguous();
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pack_rows", [&] {
    const scalar_t* data = x.data_ptr<scalar_t>();
    const scalar_t* off = has_offset ? offset.data_ptr<scalar_t>() : nullptr;
    const scalar_t scale = static_cast<scalar_t>(alpha);
    const scalar_t half = static_cast<scalar_t>(0.5);
    at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* row = data + r * K;
        for (int64_t w = 0; w < W; ++w) {
          uint64_t word = 0;
          const int64_t k0 = w * 64, k1 = std::min(K, k0 + 64);
          for (int64_t k = k0; k < k1; ++k) {
            const scalar_t v = off ? row[k] + off[k] : row[k];
            const bool bit = unsigned_levels ? (v / scale > half) : (v >= scalar_t(0));
            word |= static_cast<uint64_t>(bit) << (k - k0);
          }
          words[r * W + w] = word;
        }
      }
    });
  });
  return out;
}

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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("supported_paths", &supported_paths, "kernel paths this CPU runs (1 portable, 2 avx2, 3 avx512)");
  m.def("binary_matmul", &binary_matmul, "packed W1A1 product (exact integer result)");
  m.def("pack_rows", &pack_rows, "binarize and pack the last dimension into 64-bit words");
  m.def("binary_depthwise", &binary_depthwise, "packed depthwise convolution");
}
