"""Deployed binarized models: ``deploy(model)`` returns a copy of a zoo model in which every
W1A1 product runs on bit-packed operands (``kernels``: C++ built on first use), and
``save``/``load`` write and read a deployed zoo model at 1 bit per binarized weight.

What is packed, and why it equals the simulation (``models/bit.py``):
- Binarized Linear / pointwise conv. Simulated: ``F.linear(xq, wq) + b`` with
  ``xq = alpha * s``, ``s = sign(x + beta)`` in {-1, +1} (sign(0) = +1; alpha clamped to
  >= 1e-5; beta the per-input-channel offset) and ``wq = c * t``, ``t = sign(W - mean W)``
  (W >= mean: +1), ``c = mean|W|`` per tensor or per output channel. So
  ``y = alpha c (s . t) + b`` with ``s . t = K - 2 popcount(s XOR t)`` over the K bits
  (bits: 1 for +1; the pad bits past K are 0 in both words, so they cancel in the XOR).
  After a ReLU (BiT's FFN) the input is unsigned: ``xq = alpha * a``,
  ``a = clip(round((x + beta) / alpha), 0, 1)`` in {0, 1}, which is 1 exactly when
  ``(x + beta) / alpha > 0.5`` (round half to even sends 0.5 to 0); then
  ``a . t = 2 popcount(a AND t) - popcount(a)``.
- Depthwise conv: the same per channel over the kernel taps, on the time axis packed;
  zero padding and masked frames enter the simulation as 0, not +-alpha, so a validity
  word restricts the count: ``sum = popcount(v) - 2 popcount((s XOR t) AND v)``.
- Attention: Q, K, V signed, probabilities unsigned, each with its own alpha:
  ``Q K^T = alpha_q alpha_k (d - 2 popcount(q XOR k))``, and with p in {0, 1}
  (``probs / alpha_p > 0.5``), ``P V = alpha_p alpha_v (2 popcount(p AND v) - popcount(p))``
  contracted over the keys (V packed along time). The relative-position attention's
  ``(Q + v) P^T`` is a signed product too; its P comes from ``linear_pos``, whose input,
  the position table, depends on parameters only and is stored as sign(table + beta).
- Float stays float: front end, norms, softmax, masks, the relative shift, biases. On the
  CPU in float32 an attention core runs fused (``csrc/binary_attention.cpp``: scores,
  softmax, bits and the product for a tile of query rows, the (T, T) matrices never in
  memory), equal to the unfused path to the bit; ``unfused_attention(model)`` turns it off.
The kernels count exact integer products and apply the float scale and bias as they write
(rounded as torch would: product, then sum). Deployed and
simulated outputs then differ only by float rounding, with one caveat that belongs to the
simulation: its float sums of +-alpha c are rounded, so a value that sits on a binarizer's
threshold (an exact tie, or within rounding of it) can land on either side, and one such
flip changes later layers by far more than rounding. Where every alpha and c is a power of
two the simulation's products are exact and the two models agree to rounding throughout
(tests/test_deploy.py builds its models so).

Not packed: k-bit layers (W1A2, W2A2, ...) and learned weight scales stay simulated; a
blocked sparse core is deployed as the masked one (the same function, dense cost).
The AVX-512 VPOPCNTDQ path is compiled everywhere but was only run where the CPU has it
(untested on the AVX2 machine this was written on).
"""
from .attention import unfused_attention
from .convert import deploy, deployable_layers, load, packed_layers, save
from .kernels import DeployError

__all__ = ["DeployError", "deploy", "deployable_layers", "load", "packed_layers", "save",
           "unfused_attention"]
