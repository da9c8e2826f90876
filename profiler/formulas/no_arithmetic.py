"""The ops that do no arithmetic at inference, registered at zero FLOPs: random draws and
dropout (the identity at inference), copies, views, indexing, padding, factories, sorting.

Each is counted as a call only."""
from __future__ import annotations

from .registry import aten_ops, zero_cost

# Dropout is the identity at inference; profile a model in eval() for inference costs.
zero_cost(aten_ops(["native_dropout", "dropout", "bernoulli", "feature_dropout",
                    "alpha_dropout", "rand", "randn", "rand_like", "randn_like", "randint",
                    "randperm", "uniform", "normal", "multinomial", "exponential"]))

zero_cost(aten_ops([
    "clone", "copy", "_to_copy", "contiguous", "cat", "stack", "index", "index_select",
    "gather", "scatter", "index_put", "index_copy", "index_fill", "masked_select",
    "masked_scatter", "embedding", "_embedding_bag", "select_scatter", "slice_scatter",
    "diagonal_scatter", "as_strided_scatter", "constant_pad_nd", "reflection_pad1d",
    "reflection_pad2d", "replication_pad1d", "replication_pad2d", "pad", "roll", "flip",
    "repeat", "repeat_interleave", "tril", "triu", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "empty", "empty_like", "empty_strided", "new_zeros",
    "new_ones", "new_full", "new_empty", "new_empty_strided", "arange", "linspace",
    "logspace", "eye", "scalar_tensor", "fill", "zero", "lift_fresh", "lift_fresh_copy",
    "detach", "alias", "_unsafe_view", "view", "reshape", "_reshape_alias", "expand",
    "permute", "transpose", "t", "squeeze", "unsqueeze", "select", "slice", "narrow",
    "split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
    "chunk", "unbind", "unfold", "as_strided", "view_as",
    "_local_scalar_dense", "item", "_assert_async", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "is_nonzero", "resize", "set", "nonzero", "sort", "argsort",
    "_pin_memory", "record_stream", "_has_compatible_shallow_copy_type",
    "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned", "to_padded_tensor",
    "_transform_bias_rescale_qkv", "_masked_softmax", "bucketize", "searchsorted",
    "one_hot", "col2im", "im2col", "pixel_shuffle", "channel_shuffle", "_unique2",
    "unique_consecutive", "unique_dim", "topk", "kthvalue", "_copy_from",
    "_copy_from_and_resize", "_conj", "_neg_view", "resolve_conj", "resolve_neg",
    "_foreach_copy", "_index_put_impl", "index_add", "scatter_add", "scatter_reduce",
    "_fused_sdp_choice", "_make_per_tensor_quantized_tensor",
]))
