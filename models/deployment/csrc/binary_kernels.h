// What the extension's sources share (binary_kernels.cpp defines these).
#pragma once

#include <torch/extension.h>
#include <cstdint>

enum Op { kXor = 0, kAnd = 1 };

// The kernel path to run: `path` itself, or the best this CPU has for 0 (1 portable,
// 2 avx2, 3 avx512); a path the CPU lacks is refused.
int64_t resolve_path(int64_t path);

// Counts popcount(A[i] OP B[j]) for rows [m0, m1) x [n0, n1) of W-word rows into C
// (row i - m0, ldc = n1 - n0).
using TileFn = void (*)(const uint64_t* A, const uint64_t* B, int64_t W, int64_t m0, int64_t m1,
                        int64_t n0, int64_t n1, int32_t* C);
TileFn tile_for(int64_t path, int64_t op);

// The AVX-512 path's faster layout of B: (batch, N, W) rows -> (batch, ceil(N / 8), W, 8),
// word w of rows 8g .. 8g + 7 side by side (rows past N zero), and the tile that reads it
// in place of B (n0 a multiple of 8). Only where resolve_path gives 3.
torch::Tensor interleave_rows(const torch::Tensor& b);
TileFn interleaved_tile_for(int64_t op);

int64_t popcount_row(const uint64_t* a, int64_t W, bool fast);

// One float32 row of K packed as pack_rows does it (offset may be null).
void pack_float_row(const float* row, const float* offset, int64_t K, bool unsigned_levels,
                    float alpha, uint64_t* words, int64_t path);

torch::Tensor binary_depthwise(torch::Tensor x, torch::Tensor valid, torch::Tensor w, int64_t K,
                               int64_t stride, int64_t T_out, bool unsigned_input, int64_t path);

torch::Tensor binary_attention(torch::Tensor q, torch::Tensor k, torch::Tensor vt,
                               int64_t head_dim, double content_scale, double score_scale,
                               torch::Tensor allowed, torch::Tensor key_padding, int64_t heads,
                               torch::Tensor qv, torch::Tensor positions, double position_scale,
                               double probs_alpha, double out_scale, int64_t path);
