// Fused packed attention for models/deployment: a tile of query rows at a time goes from
// packed Q and K signs to scores, softmax, {0, 1} probability bits and the AND-popcount
// against V's signs, so the (T, S) scores and probabilities never leave the cache. The
// unfused path writes them to memory: at 60 s (3 000 frames) that is 36 MB per head and
// layer, several times over, and it made a deployed model slower than its float twin.
//
// The arithmetic is the unfused path's, operation for operation, so the result is the
// same to the bit: the scores are rounded as `(count * content_scale [+ position]) *
// score_scale` is in float32 (the extension is built with -ffp-contract=off), masked
// pairs take the float32 lowest value as `bias + scores` and masked_fill give them, the
// softmax is ATen's own kernel on each row, and the bits and the output epilogue are
// pack_rows' and binary_matmul's.
#include "binary_kernels.h"

#include <ATen/Parallel.h>
#include <limits>
#include <vector>

namespace {

constexpr int64_t kRows = 16;  // query rows per task: scores and probabilities stay in L2

}  // namespace

// q (BH, T, Wd) packed signs of the queries (the relative-position core: of q + u); k (BH, S,
// Wd); vt (BH, D, Ws) packed signs of V transposed, Ws = ceil(S / 64). head_dim: the bits
// of a query row. allowed: (T, S) bool, or empty (every pair); key_padding: (BH / heads, S)
// bool, true where a key is padding, or empty. qv and positions: the relative-position
// term, or both empty: qv (BH, T, Wd) signs of q + v, positions (heads, 2T - 1, Wd) signs
// of the position rows for T-1 ... -(T-1), the score of pair (i, j) taking row T-1-i+j.
// Returns (BH, T, D) float32, as binary_matmul's scaled AND product of the probability bits.
torch::Tensor binary_attention(torch::Tensor q, torch::Tensor k, torch::Tensor vt,
                               int64_t head_dim, double content_scale, double score_scale,
                               torch::Tensor allowed, torch::Tensor key_padding, int64_t heads,
                               torch::Tensor qv, torch::Tensor positions, double position_scale,
                               double probs_alpha, double out_scale, int64_t path) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && vt.dim() == 3,
              "binary_attention takes (batch x heads, rows, words) operands");
  TORCH_CHECK(q.scalar_type() == torch::kInt64 && k.scalar_type() == torch::kInt64 &&
              vt.scalar_type() == torch::kInt64, "packed operands are int64");
  q = q.contiguous();
  k = k.contiguous();
  vt = vt.contiguous();
  const int64_t BH = q.size(0), T = q.size(1), Wd = q.size(2), S = k.size(1);
  const int64_t D = vt.size(1), Ws = vt.size(2);
  TORCH_CHECK(k.size(0) == BH && vt.size(0) == BH && k.size(2) == Wd, "operand shapes differ");
  TORCH_CHECK(head_dim <= Wd * 64 && head_dim > (Wd - 1) * 64, "head_dim does not match the packed width");
  TORCH_CHECK(Ws == (S + 63) / 64, "V's packed width does not match the keys");
  TORCH_CHECK(heads > 0 && BH % heads == 0, "batch x heads is not a multiple of heads");
  const bool has_allowed = allowed.defined() && allowed.numel() > 0;
  const bool has_padding = key_padding.defined() && key_padding.numel() > 0;
  const bool relative = positions.defined() && positions.numel() > 0;
  if (has_allowed) {
    allowed = allowed.to(torch::kBool).contiguous();
    TORCH_CHECK(allowed.dim() == 2 && allowed.size(0) == T && allowed.size(1) == S,
                "allowed is not (T, S)");
  }
  if (has_padding) {
    key_padding = key_padding.to(torch::kBool).contiguous();
    TORCH_CHECK(key_padding.dim() == 2 && key_padding.size(0) == BH / heads &&
                key_padding.size(1) == S, "key_padding is not (batch, S)");
  }
  if (relative) {
    qv = qv.contiguous();
    positions = positions.contiguous();
    TORCH_CHECK(S == T, "relative positions need self-attention (S == T)");
    TORCH_CHECK(qv.sizes() == q.sizes(), "qv is not shaped as q");
    TORCH_CHECK(positions.dim() == 3 && positions.size(0) == heads &&
                positions.size(1) == 2 * T - 1 && positions.size(2) == Wd,
                "positions is not (heads, 2T - 1, words)");
  }
  const int64_t chosen = resolve_path(path);
  const TileFn xor_tile = tile_for(chosen, kXor);
  // K and V^T, read by every row tile of their head, interleaved once where the AVX-512
  // path runs (binary_kernels.h); the position rows slide with the query row and stay rows.
  const bool interleave = chosen == 3;
  const TileFn key_tile = interleave ? interleaved_tile_for(kXor) : xor_tile;
  const TileFn and_tile = interleave ? interleaved_tile_for(kAnd) : tile_for(chosen, kAnd);
  if (interleave) {
    k = interleave_rows(k);
    vt = interleave_rows(vt);
  }
  // A head's operand, in either layout: both are contiguous with the head outermost.
  const int64_t key_stride = k.stride(0), value_stride = vt.stride(0);
  const auto* Q = reinterpret_cast<const uint64_t*>(q.data_ptr<int64_t>());
  const auto* K = reinterpret_cast<const uint64_t*>(k.data_ptr<int64_t>());
  const auto* V = reinterpret_cast<const uint64_t*>(vt.data_ptr<int64_t>());
  const auto* QV = relative ? reinterpret_cast<const uint64_t*>(qv.data_ptr<int64_t>()) : nullptr;
  const auto* P = relative ? reinterpret_cast<const uint64_t*>(positions.data_ptr<int64_t>())
                           : nullptr;
  const bool* allowed_data = has_allowed ? allowed.data_ptr<bool>() : nullptr;
  const bool* padding_data = has_padding ? key_padding.data_ptr<bool>() : nullptr;
  const float cs = static_cast<float>(content_scale), ps = static_cast<float>(position_scale);
  const float ss = static_cast<float>(score_scale), alpha = static_cast<float>(probs_alpha);
  const float os = static_cast<float>(out_scale);
  const float lowest = std::numeric_limits<float>::lowest();
  const int32_t bits = static_cast<int32_t>(head_dim);

  auto out = torch::empty({BH, T, D}, q.options().dtype(torch::kFloat32));
  float* O = out.data_ptr<float>();
  const int64_t row_tiles = (T + kRows - 1) / kRows;
  const auto float_options = torch::TensorOptions().dtype(torch::kFloat32);
  at::parallel_for(0, BH * row_tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> counts(kRows * std::max(S, D)), position_counts(relative ? T : 0);
    std::vector<float> scores(kRows * S), probs(kRows * S);
    std::vector<uint64_t> prob_bits(kRows * Ws);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / row_tiles, r0 = (task % row_tiles) * kRows;
      const int64_t r1 = std::min(T, r0 + kRows), rows = r1 - r0;
      const uint64_t* Qb = Q + bh * T * Wd;
      key_tile(Qb, K + bh * key_stride, Wd, r0, r1, 0, S, counts.data());
      for (int64_t i = 0; i < rows; ++i) {
        float* s = scores.data() + i * S;
        const int32_t* c = counts.data() + i * S;
        for (int64_t j = 0; j < S; ++j) s[j] = static_cast<float>(bits - 2 * c[j]) * cs;
        if (relative) {
          const int64_t row = r0 + i;
          xor_tile(QV + bh * T * Wd, P + ((bh % heads) * (2 * T - 1) + T - 1 - row) * Wd, Wd,
                   row, row + 1, 0, T, position_counts.data());
          for (int64_t j = 0; j < S; ++j)
            s[j] = s[j] + static_cast<float>(bits - 2 * position_counts[j]) * ps;
        }
        for (int64_t j = 0; j < S; ++j) s[j] = s[j] * ss;
        if (allowed_data) {
          const bool* a = allowed_data + (r0 + i) * S;
          for (int64_t j = 0; j < S; ++j) s[j] = a[j] ? 0.0f + s[j] : lowest;
        }
        if (padding_data) {
          const bool* pad = padding_data + (bh / heads) * S;
          for (int64_t j = 0; j < S; ++j) if (pad[j]) s[j] = lowest;
        }
      }
      auto score_tile = torch::from_blob(scores.data(), {rows, S}, float_options);
      auto prob_tile = torch::from_blob(probs.data(), {rows, S}, float_options);
      at::_softmax_out(prob_tile, score_tile, 1, false);
      for (int64_t i = 0; i < rows; ++i)
        pack_float_row(probs.data() + i * S, nullptr, S, true, alpha, prob_bits.data() + i * Ws,
                       chosen);
      and_tile(prob_bits.data(), V + bh * value_stride, Ws, 0, rows, 0, D, counts.data());
      for (int64_t i = 0; i < rows; ++i) {
        const int32_t ones = static_cast<int32_t>(
            popcount_row(prob_bits.data() + i * Ws, Ws, chosen > 1));
        const int32_t* c = counts.data() + i * D;
        float* o = O + (bh * T + r0 + i) * D;
        for (int64_t j = 0; j < D; ++j) o[j] = static_cast<float>(2 * c[j] - ones) * os;
      }
    }
  });
  return out;
}
