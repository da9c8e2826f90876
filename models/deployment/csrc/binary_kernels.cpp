// Bit-packed W1A1 products for models/deployment (see its docstring for the math).
//
// Operands are rows of 64-bit words, bit k of word k / 64 holding element k (1 = +1, or 1
// in a {0, 1} operand); bits past K are 0. Three CPU paths live in one build, each function
// compiled for its own target, and `path` picks one at run time (0 = best this CPU has):
//   1 portable  plain C++ (the compiler's popcount)
//   2 avx2      256-bit XOR/AND, popcount by a 4-bit lookup (vpshufb) summed with vpsadbw
//   3 avx512    512-bit XOR/AND and VPOPCNTDQ on B interleaved by groups of 8 rows
// The packed depthwise convolution is in binary_depthwise.cpp and the fused attention in
// binary_attention.cpp (same extension; binary_kernels.h is what they share).
#include "binary_kernels.h"

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cstdint>

namespace {

constexpr int64_t kTileN = 256;   // rows of B kept hot in L1/L2 while A rows stream past
constexpr int64_t kTileM = 16;    // rows of A per task

template <int OP>
inline uint64_t combine(uint64_t a, uint64_t b) { return OP == kXor ? a ^ b : a & b; }

// Each tile function counts popcount(a OP b) for rows [m0, m1) x [n0, n1) into C (ldc =
// n1 - n0, row i - m0). OP is a template parameter and the row loops are inlined: with
// rows of a few words (K = 64 in attention, 768 in a Linear) per-call and per-branch
// overhead, not the popcounts, set the speed.

// ---- portable ---------------------------------------------------------------------------
template <int OP>
void tile_portable(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
                   int64_t n0, int64_t n1, int32_t* C) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    for (int64_t j = n0; j < n1; ++j) {
      const uint64_t* b = B + j * W;
      int64_t count = 0;
      for (int64_t w = 0; w < W; ++w) count += __builtin_popcountll(combine<OP>(a[w], b[w]));
      C[(i - m0) * (n1 - n0) + j - n0] = static_cast<int32_t>(count);
    }
  }
}

// ---- AVX2 -------------------------------------------------------------------------------
// popcount(a OP b) over one row pair of W words: the columns left after a kernel's blocks.
template <int OP>
__attribute__((target("popcnt"), always_inline))
inline int64_t popcount_dot(const uint64_t* a, const uint64_t* b, int64_t W) {
  int64_t count = 0;
  for (int64_t w = 0; w < W; ++w) count += _mm_popcnt_u64(combine<OP>(a[w], b[w]));
  return count;
}

__attribute__((target("avx2,popcnt"), always_inline))
inline __m256i popcount_bytes_avx2(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);
}

__attribute__((target("avx2,popcnt"), always_inline))
inline int64_t hsum_avx2(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// Rows of fewer than 4 words (attention's K = 64): scalar popcnt, one A word against 8 rows.
template <int OP>
__attribute__((target("avx2,popcnt")))
void tile_narrow_popcnt(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
                        int64_t n0, int64_t n1, int32_t* C) {
  const int64_t ldc = n1 - n0;
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    int32_t* c = C + (i - m0) * ldc - n0;
    int64_t j = n0;
    for (; j + 8 <= n1; j += 8) {
      int64_t count[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t w = 0; w < W; ++w)
        for (int r = 0; r < 8; ++r) count[r] += _mm_popcnt_u64(combine<OP>(a[w], B[(j + r) * W + w]));
      for (int r = 0; r < 8; ++r) c[j + r] = static_cast<int32_t>(count[r]);
    }
    for (; j < n1; ++j) c[j] = static_cast<int32_t>(popcount_dot<OP>(a, B + j * W, W));
  }
}

// One A row against four B rows per step; byte counters are widened every 31 chunks (each
// byte grows by at most 8 per chunk).
template <int OP>
__attribute__((target("avx2,popcnt")))
void tile_avx2(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
               int64_t n0, int64_t n1, int32_t* C) {
  if (W < 4) return tile_narrow_popcnt<OP>(A, B, W, m0, m1, n0, n1, C);
  const int64_t ldc = n1 - n0, chunks = W / 4;
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* a = A + i * W;
    int32_t* c = C + (i - m0) * ldc - n0;
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      const uint64_t* b = B + j * W;
      __m256i total[4] = {zero, zero, zero, zero};
      for (int64_t c0 = 0; c0 < chunks; c0 += 31) {
        const int64_t c1 = std::min(chunks, c0 + 31);
        __m256i bytes[4] = {zero, zero, zero, zero};
        for (int64_t q = c0; q < c1; ++q) {
          __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4 * q));
          for (int r = 0; r < 4; ++r) {
            __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + r * W + 4 * q));
            __m256i v = OP == kXor ? _mm256_xor_si256(va, vb) : _mm256_and_si256(va, vb);
            bytes[r] = _mm256_add_epi8(bytes[r], popcount_bytes_avx2(v));
          }
        }
        for (int r = 0; r < 4; ++r)
          total[r] = _mm256_add_epi64(total[r], _mm256_sad_epu8(bytes[r], zero));
      }
      for (int r = 0; r < 4; ++r) {
        int64_t count = hsum_avx2(total[r]);
        for (int64_t w = chunks * 4; w < W; ++w) count += _mm_popcnt_u64(combine<OP>(a[w], b[r * W + w]));
        c[j + r] = static_cast<int32_t>(count);
      }
    }
    for (; j < n1; ++j) c[j] = static_cast<int32_t>(popcount_dot<OP>(a, B + j * W, W));
  }
}

// ---- AVX-512 VPOPCNTDQ --------------------------------------------------------------------
// B interleaved by groups of 8 rows (word w of rows 8g .. 8g + 7 side by side, rows past N
// zero): one 512-bit load holds one word of 8 B rows, and broadcasting an A word against
// it counts 8 outputs in the lanes of one accumulator, so no output needs a horizontal
// sum and no row tail wastes a masked load. ROWS rows of A against GROUPS groups.
template <int OP, int ROWS, int GROUPS>
__attribute__((target("avx512f,avx512vpopcntdq,avx2"), always_inline))
inline void block_interleaved(const uint64_t* a, const uint64_t* bg, int64_t W, int32_t* c,
                              int64_t ldc, int64_t valid) {
  __m512i total[ROWS][GROUPS];
  for (int r = 0; r < ROWS; ++r)
    for (int g = 0; g < GROUPS; ++g) total[r][g] = _mm512_setzero_si512();
  for (int64_t w = 0; w < W; ++w) {
    __m512i vb[GROUPS];
    for (int g = 0; g < GROUPS; ++g)
      vb[g] = _mm512_loadu_si512(reinterpret_cast<const void*>(bg + (g * W + w) * 8));
    for (int r = 0; r < ROWS; ++r) {
      const __m512i va = _mm512_set1_epi64(static_cast<long long>(a[r * W + w]));
      for (int g = 0; g < GROUPS; ++g) {
        __m512i v = OP == kXor ? _mm512_xor_si512(va, vb[g]) : _mm512_and_si512(va, vb[g]);
        total[r][g] = _mm512_add_epi64(total[r][g], _mm512_popcnt_epi64(v));
      }
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int g = 0; g < GROUPS; ++g) {
      const __m256i sums = _mm512_cvtepi64_epi32(total[r][g]);
      const int64_t columns = std::min<int64_t>(8, valid - 8 * g);
      if (columns == 8) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8 * g), sums);
      } else if (columns > 0) {
        alignas(32) int32_t lanes[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
        for (int64_t k = 0; k < columns; ++k) c[r * ldc + 8 * g + k] = lanes[k];
      }
    }
}

// The AVX-512 tile on interleaved B (``Bi``: groups of 8 rows; n0 a multiple of 8).
template <int OP>
__attribute__((target("avx512f,avx512vpopcntdq,avx2")))
void tile_avx512_interleaved(const uint64_t* A, const uint64_t* Bi, int64_t W, int64_t m0,
                             int64_t m1, int64_t n0, int64_t n1, int32_t* C) {
  const int64_t ldc = n1 - n0;
  for (int64_t j = n0; j < n1; j += 16) {
    const uint64_t* bg = Bi + (j / 8) * W * 8;
    int32_t* c = C - m0 * ldc + (j - n0);
    const int64_t valid = n1 - j;
    int64_t i = m0;
    if (valid > 8) {
      for (; i + 4 <= m1; i += 4)
        block_interleaved<OP, 4, 2>(A + i * W, bg, W, c + i * ldc, ldc, valid);
      for (; i < m1; ++i)
        block_interleaved<OP, 1, 2>(A + i * W, bg, W, c + i * ldc, ldc, valid);
    } else {
      for (; i + 4 <= m1; i += 4)
        block_interleaved<OP, 4, 1>(A + i * W, bg, W, c + i * ldc, ldc, valid);
      for (; i < m1; ++i)
        block_interleaved<OP, 1, 1>(A + i * W, bg, W, c + i * ldc, ldc, valid);
    }
  }
}

__attribute__((target("popcnt")))
int64_t popcount_row_fast(const uint64_t* a, int64_t W) {
  int64_t count = 0;
  for (int64_t w = 0; w < W; ++w) count += _mm_popcnt_u64(a[w]);
  return count;
}

}  // namespace

// Rows as they are. On the AVX-512 path every product but the fused attention's sliding
// position rows reads B interleaved (interleaved_tile_for); those rows are a head's width,
// under 4 words in every zoo model, where the AVX2 tile's scalar popcounts are the fast
// ones, so path 3 takes the AVX2 tile here.
TileFn tile_for(int64_t path, int64_t op) {
  if (op == kXor) return path >= 2 ? tile_avx2<kXor> : tile_portable<kXor>;
  return path >= 2 ? tile_avx2<kAnd> : tile_portable<kAnd>;
}

TileFn interleaved_tile_for(int64_t op) {
  return op == kXor ? tile_avx512_interleaved<kXor> : tile_avx512_interleaved<kAnd>;
}

torch::Tensor interleave_rows(const torch::Tensor& b) {
  const int64_t batch = b.size(0), N = b.size(1), W = b.size(2), groups = (N + 7) / 8;
  auto interleaved = torch::zeros({batch, groups, W, 8}, b.options());
  auto* to = reinterpret_cast<uint64_t*>(interleaved.data_ptr<int64_t>());
  const auto* from = reinterpret_cast<const uint64_t*>(b.data_ptr<int64_t>());
  at::parallel_for(0, batch * groups, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bi = t / groups, g = t % groups;
      for (int64_t r = 0; r < 8 && 8 * g + r < N; ++r)
        for (int64_t w = 0; w < W; ++w)
          to[(t * W + w) * 8 + r] = from[(bi * N + 8 * g + r) * W + w];
    }
  });
  return interleaved;
}

int64_t popcount_row(const uint64_t* a, int64_t W, bool fast) {
  if (fast) return popcount_row_fast(a, W);
  int64_t count = 0;
  for (int64_t w = 0; w < W; ++w) count += __builtin_popcountll(a[w]);
  return count;
}

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

// Paths this CPU can run, best last.
std::vector<int64_t> supported_paths() {
  std::vector<int64_t> paths;
  for (int p = 1; p <= 3; ++p) if (cpu_has(p)) paths.push_back(p);
  return paths;
}

// a (Bt, M, W), b (Bt, N, W) int64 -> (Bt, M, N): the exact integer products
//   signed x signed   (op 0): sum a_k b_k = K - 2 popcount(a ^ b)
//   {0,1} x signed    (op 1): sum a_k b_k = 2 popcount(a & b) - popcount(a)
// as int32, or, where `scale` is given (one value, or N), float32 `count * scale[j] +
// bias[j]` written in the same pass (bias may be empty). The float epilogue rounds as
// torch's `counts.float() * scale + bias` does (two roundings: built with -ffp-contract=off).
torch::Tensor binary_matmul(torch::Tensor a, torch::Tensor b, int64_t K, int64_t op,
                            int64_t path, torch::Tensor scale, torch::Tensor bias) {
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3, "binary_matmul takes (batch, rows, words) operands");
  TORCH_CHECK(a.scalar_type() == torch::kInt64 && b.scalar_type() == torch::kInt64,
              "packed operands are int64");
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(2), "operand shapes differ");
  TORCH_CHECK(op == kXor || op == kAnd, "unknown op ", op);
  a = a.contiguous();
  b = b.contiguous();
  const int64_t batch = a.size(0), M = a.size(1), N = b.size(1), W = a.size(2);
  TORCH_CHECK(K <= W * 64 && K > (W - 1) * 64, "K does not match the packed width");
  const bool to_float = scale.defined() && scale.numel() > 0;
  const bool has_bias = bias.defined() && bias.numel() > 0;
  if (to_float) {
    scale = scale.to(torch::kFloat32).contiguous();
    TORCH_CHECK(scale.numel() == 1 || scale.numel() == N, "scale has ", scale.numel(),
                " entries for N = ", N);
  }
  if (has_bias) {
    TORCH_CHECK(to_float, "a bias needs a scale");
    bias = bias.to(torch::kFloat32).contiguous();
    TORCH_CHECK(bias.numel() == N, "bias has ", bias.numel(), " entries for N = ", N);
  }
  const int64_t chosen = resolve_path(path);
  const TileFn tile = tile_for(chosen, op);
  // The AVX-512 path reads B interleaved by groups of 8 rows (tile_avx512_interleaved): one
  // copy of B per call, N x W words against M x N x W word pairs of counting.
  const bool interleave = chosen == 3;
  const torch::Tensor interleaved = interleave ? interleave_rows(b) : torch::Tensor();
  const auto* Bi = interleave ? reinterpret_cast<const uint64_t*>(interleaved.data_ptr<int64_t>())
                              : nullptr;
  const TileFn interleaved_tile = interleaved_tile_for(op);
  auto out = torch::empty({batch, M, N}, a.options().dtype(to_float ? torch::kFloat32
                                                                     : torch::kInt32));
  const auto* A = reinterpret_cast<const uint64_t*>(a.data_ptr<int64_t>());
  const auto* B = reinterpret_cast<const uint64_t*>(b.data_ptr<int64_t>());
  const float* S = to_float ? scale.data_ptr<float>() : nullptr;
  const int64_t scale_step = to_float && scale.numel() == N ? 1 : 0;
  const float* bias_data = has_bias ? bias.data_ptr<float>() : nullptr;
  void* C = to_float ? static_cast<void*>(out.data_ptr<float>())
                     : static_cast<void*>(out.data_ptr<int32_t>());
  const int64_t m_tiles = (M + kTileM - 1) / kTileM, n_tiles = (N + kTileN - 1) / kTileN;
  const int64_t tasks = batch * n_tiles * m_tiles;
  const int64_t work_per_task = std::max<int64_t>(1, kTileM * std::min(N, kTileN) * W);
  at::parallel_for(0, tasks, std::max<int64_t>(1, (1 << 16) / work_per_task),
                   [&](int64_t begin, int64_t end) {
    std::vector<int32_t> counts(kTileM * kTileN);
    for (int64_t task = begin; task < end; ++task) {
      // n tile outermost within a batch item: consecutive tasks share the same B tile.
      const int64_t bi = task / (n_tiles * m_tiles);
      const int64_t rest = task % (n_tiles * m_tiles);
      const int64_t nt = rest / m_tiles, mt = rest % m_tiles;
      const int64_t m0 = mt * kTileM, m1 = std::min(M, m0 + kTileM);
      const int64_t n0 = nt * kTileN, n1 = std::min(N, n0 + kTileN), width = n1 - n0;
      const uint64_t* Ab = A + bi * M * W;
      if (interleave)
        interleaved_tile(Ab, Bi + bi * interleaved.stride(0), W, m0, m1, n0, n1, counts.data());
      else
        tile(Ab, B + bi * N * W, W, m0, m1, n0, n1, counts.data());
      for (int64_t i = m0; i < m1; ++i) {
        const int32_t* row = counts.data() + (i - m0) * width;
        const int32_t ones = op == kXor ? 0 : static_cast<int32_t>(
            popcount_row(Ab + i * W, W, chosen > 1));
        const int64_t at = (bi * M + i) * N;
        if (!to_float) {
          int32_t* o = static_cast<int32_t*>(C) + at;
          for (int64_t j = n0; j < n1; ++j) {
            const int32_t x = row[j - n0];
            o[j] = op == kXor ? static_cast<int32_t>(K) - 2 * x : 2 * x - ones;
          }
        } else {
          float* o = static_cast<float*>(C) + at;
          for (int64_t j = n0; j < n1; ++j) {
            const int32_t x = row[j - n0];
            const int32_t value = op == kXor ? static_cast<int32_t>(K) - 2 * x : 2 * x - ones;
            const float scaled = static_cast<float>(value) * S[j * scale_step];
            o[j] = bias_data ? scaled + bias_data[j] : scaled;
          }
        }
      }
    }
  });
  return out;
}

namespace {

// One row of K packed by plain comparisons (the portable path, and float64 rows).
template <typename scalar_t>
void pack_row_scalar(const scalar_t* row, const scalar_t* off, int64_t K, bool unsigned_levels,
                     scalar_t alpha, uint64_t* words) {
  const scalar_t half = static_cast<scalar_t>(0.5);
  const int64_t W = (K + 63) / 64;
  for (int64_t w = 0; w < W; ++w) {
    uint64_t word = 0;
    const int64_t k0 = w * 64, k1 = std::min(K, k0 + 64);
    for (int64_t k = k0; k < k1; ++k) {
      const scalar_t v = off ? row[k] + off[k] : row[k];
      const bool bit = unsigned_levels ? (v / alpha > half) : (v >= scalar_t(0));
      word |= static_cast<uint64_t>(bit) << (k - k0);
    }
    words[w] = word;
  }
}

// One float32 row packed 8 elements per compare: the same IEEE comparisons as the scalar
// loop (>= 0 is true for -0.0 and false for NaN, as there), so the bits are identical.
__attribute__((target("avx2")))
void pack_row_avx2(const float* row, const float* off, int64_t K, bool unsigned_levels,
                   float alpha, uint64_t* words) {
  const __m256 zero = _mm256_setzero_ps(), half = _mm256_set1_ps(0.5f);
  const __m256 scale = _mm256_set1_ps(alpha);
  const int64_t W = (K + 63) / 64;
  for (int64_t w = 0; w < W; ++w) {
    const int64_t k0 = w * 64, k1 = std::min(K, k0 + 64);
    uint64_t word = 0;
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8) {
      __m256 v = _mm256_loadu_ps(row + k);
      if (off) v = _mm256_add_ps(v, _mm256_loadu_ps(off + k));
      const __m256 bit = unsigned_levels
          ? _mm256_cmp_ps(_mm256_div_ps(v, scale), half, _CMP_GT_OQ)
          : _mm256_cmp_ps(v, zero, _CMP_GE_OQ);
      word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(bit))) << (k - k0);
    }
    for (; k < k1; ++k) {
      const float v = off ? row[k] + off[k] : row[k];
      const bool bit = unsigned_levels ? (v / alpha > 0.5f) : (v >= 0.0f);
      word |= static_cast<uint64_t>(bit) << (k - k0);
    }
    words[w] = word;
  }
}

}  // namespace

void pack_float_row(const float* row, const float* offset, int64_t K, bool unsigned_levels,
                    float alpha, uint64_t* words, int64_t path) {
  if (path >= 2) return pack_row_avx2(row, offset, K, unsigned_levels, alpha, words);
  pack_row_scalar<float>(row, offset, K, unsigned_levels, alpha, words);
}

// Packs the last dimension of x (R, K) into (R, ceil(K / 64)) int64 words. Bit k is
//   signed:   (x_k + offset_k) >= 0
//   unsigned: (x_k + offset_k) / alpha > 0.5   (round-half-even of q is >= 1 exactly then)
//   bool x:   x_k
// `offset` may be empty (no offset). float32 rows take the AVX2 loop where `path` (0 best,
// else as binary_matmul's) is 2 or more.
torch::Tensor pack_rows(torch::Tensor x, torch::Tensor offset, double alpha, bool unsigned_levels,
                        int64_t path) {
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
  if (x.scalar_type() == torch::kFloat32) {
    const float* data = x.data_ptr<float>();
    const float* off = has_offset ? offset.data_ptr<float>() : nullptr;
    const float scale = static_cast<float>(alpha);
    const int64_t chosen = resolve_path(path);
    at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        pack_float_row(data + r * K, off, K, unsigned_levels, scale, words + r * W, chosen);
    });
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pack_rows", [&] {
    const scalar_t* data = x.data_ptr<scalar_t>();
    const scalar_t* off = has_offset ? offset.data_ptr<scalar_t>() : nullptr;
    const scalar_t scale = static_cast<scalar_t>(alpha);
    at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        pack_row_scalar<scalar_t>(data + r * K, off, K, unsigned_levels, scale, words + r * W);
    });
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("supported_paths", &supported_paths, "kernel paths this CPU runs (1 portable, 2 avx2, 3 avx512)");
  m.def("binary_matmul", &binary_matmul, "packed W1A1 product (exact integer result)");
  m.def("pack_rows", &pack_rows, "binarize and pack the last dimension into 64-bit words");
  m.def("binary_depthwise", &binary_depthwise, "packed depthwise convolution");
  m.def("binary_attention", &binary_attention, "fused packed attention, a tile of rows at a time");
}
