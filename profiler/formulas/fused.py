"""Fused kernels, costed by the unfused reference computation they replace.

Scaled-dot-product attention, the ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` fast paths and oneDNN's LSTM layer are registered as
*decompositions*: each runs PyTorch's own reference computation on meta tensors while the
analyzer counts it, so a fused kernel costs exactly what the unfused path costs (attention's
Q.K^T and A.V included), and a CPU run (which takes the fast paths) gives the same counts as
a meta run (which cannot). Pieces are attributed with :func:`part` to the submodules the
unfused path runs them in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import decomposition, part

aten = torch.ops.aten


@decomposition([aten._scaled_dot_product_flash_attention_for_cpu])
def sdpa_flash_cpu(query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None,
                   scale=None):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_mask, 0.0, is_causal, scale=scale
    )


@decomposition([aten._scaled_dot_product_flash_attention])
def sdpa_flash(query, key, value, dropout_p=0.0, is_causal=False, return_debug_mask=False,
               *, scale=None):
    aten._scaled_dot_product_attention_math(query, key, value, None, 0.0, is_causal, scale=scale)


@decomposition([aten._scaled_dot_product_efficient_attention,
               aten._scaled_dot_product_cudnn_attention])
def sdpa_with_bias(query, key, value, attn_bias=None, compute_log_sumexp=False, dropout_p=0.0,
                   is_causal=False, *args, scale=None, **kwargs):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_bias, 0.0, is_causal, scale=scale
    )


@decomposition([aten._scaled_dot_product_fused_attention_overrideable])
def sdpa_overrideable(query, key, value, attn_bias=None, dropout_p=0.0, is_causal=False,
                      *args, scale=None, **kwargs):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_bias, 0.0, is_causal, scale=scale
    )


def _split_mha_mask(mask, mask_type, batch, heads, tgt_len, src_len):
    """The fast paths take one merged mask and its type (0: (L, S) attention mask,
    1: (B, S) key padding mask, 2: (B, H, L, S) both merged); the unfused call takes two."""
    if mask is None:
        return None, None
    if mask_type == 1:
        return None, mask
    if mask_type == 2:
        return mask.reshape(batch * heads, tgt_len, src_len), None
    return mask, None


def _mha_reference(query, key, value, embed_dim, num_heads, qkv_weight, qkv_bias,
                   proj_weight, proj_bias, mask, need_weights, average_attn_weights,
                   mask_type):
    # The fast path works on batch-first tensors; F.multi_head_attention_forward takes
    # (L, B, E), the transposes being views as on nn.MultiheadAttention's slow path.
    batch, tgt_len = query.shape[0], query.shape[1]
    src_len = key.shape[1]
    attn_mask, key_padding_mask = _split_mha_mask(mask, mask_type, batch, num_heads,
                                                  tgt_len, src_len)
    # Same identities as the slow path: `query is key is value` selects one packed
    # in-projection there.
    q = query.transpose(0, 1)
    k = q if key is query else key.transpose(0, 1)
    v = k if value is key else value.transpose(0, 1)
    out, _ = F.multi_head_attention_forward(
        q, k, v, embed_dim, num_heads, qkv_weight, qkv_bias, None, None, False, 0.0,
        proj_weight, proj_bias, training=False, key_padding_mask=key_padding_mask,
        need_weights=need_weights, attn_mask=attn_mask,
        average_attn_weights=average_attn_weights,
    )
    return out.transpose(0, 1)


@decomposition(aten._native_multi_head_attention)
def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                                proj_weight, proj_bias, mask=None, need_weights=True,
                                average_attn_weights=True, mask_type=None):
    _mha_reference(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                   proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type)


@decomposition(aten._transformer_encoder_layer_fwd)
def transformer_encoder_layer(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                              proj_bias, use_gelu, norm_first, eps, norm_weight_1,
                              norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
                              ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None,
                              mask_type=None):
    # Mirrors nn.TransformerEncoderLayer's slow path, with each piece attributed to the
    # submodule that runs it there.
    def self_attention(x):
        with part("self_attn"):
            return _mha_reference(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias,
                                  proj_weight, proj_bias, mask, False, True, mask_type)

    def norm(x, name, weight, bias):
        with part(name):
            return F.layer_norm(x, (embed_dim,), weight, bias, eps)

    def feed_forward(x):
        with part("linear1"):
            h = F.linear(x, ffn_weight_1, ffn_bias_1)
        h = F.gelu(h) if use_gelu else F.relu(h)
        with part("linear2"):
            return F.linear(h, ffn_weight_2, ffn_bias_2)

    x = src
    if norm_first:
        x = x + self_attention(norm(x, "norm1", norm_weight_1, norm_bias_1))
        x = x + feed_forward(norm(x, "norm2", norm_weight_2, norm_bias_2))
    else:
        x = norm(x + self_attention(x), "norm1", norm_weight_1, norm_bias_1)
        x = norm(x + feed_forward(x), "norm2", norm_weight_2, norm_bias_2)


@decomposition(aten.mkldnn_rnn_layer)
def mkldnn_lstm_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, reverse,
                      batch_sizes, mode, hidden_size, num_layers, has_biases, bidirectional,
                      batch_first, train):
    # oneDNN runs one direction of one LSTM layer per call on a time-major input; the
    # reference is the generic single-layer LSTM (running it reversed costs the same).
    params = [weight_ih, weight_hh, bias_ih, bias_hh] if has_biases else [weight_ih, weight_hh]
    aten.lstm.input(input, [hx.unsqueeze(0), cx.unsqueeze(0)], params, has_biases, 1, 0.0,
                    False, False, False)
