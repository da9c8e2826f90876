"""The cost of a training step (`profile(..., mode="train")`): closed forms for the backward
of linear and convolution stacks, FlopCounterMode's forward+backward totals, float
gradients through a binarized layer, AdamW's step, and the CLI."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import profiler
from profiler.result import Profile

N, A, B, C, D = 6, 5, 7, 4, 3


def linear_stack():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(A, B), nn.ReLU(), nn.Linear(B, C), nn.Tanh(), nn.Linear(C, D))


def test_linear_stack_backward_is_twice_the_forward_except_the_first_layer():
    p = profiler.profile(linear_stack(), torch.randn(N, A), mode="train")
    rows = p.modules
    # forward MACs n*in*out; backward: weight gradient (n*in*out) and, where the layer's
    # input needs a gradient, the input gradient (n*in*out again)
    assert rows["0"]["macs"] == N * A * B and rows["0"]["backward_macs"] == N * A * B
    assert rows["2"]["macs"] == N * B * C and rows["2"]["backward_macs"] == 2 * N * B * C
    assert rows["4"]["macs"] == N * C * D and rows["4"]["backward_macs"] == 2 * N * C * D
    # bias gradients: a sum over the batch, one FLOP per gradient element
    assert rows["0"]["backward_flops"] == 2 * N * A * B + N * B
    assert rows["4"]["backward_flops"] == 2 * 2 * N * C * D + N * D
    # activation backward: one FLOP per element, as the forward
    assert rows["1"]["backward_flops"] == N * B and rows["3"]["backward_flops"] == N * C
    params = A * B + B + B * C + C + C * D + D
    t = p.totals
    assert t["trainable_params"] == params
    assert t["optimizer_flops"] == 14 * params
    assert t["train_macs"] == t["macs"] + t["backward_macs"]
    assert t["train_flops"] == t["flops"] + t["backward_flops"] + t["optimizer_flops"]
    # gradient x weight products are W32A32, gradient x activation ones A32A32
    assert p.backward_by_bits["W32A32"]["macs"] == N * B * C + N * C * D
    assert p.backward_by_bits["A32A32"]["macs"] == N * A * B + N * B * C + N * C * D
    assert not p.unsupported


def test_frozen_layers_get_no_gradient():
    model = linear_stack()
    model[0].requires_grad_(False)
    p = profiler.profile(model, torch.randn(N, A), mode="train")
    assert p.modules["0"]["backward_macs"] == 0
    assert p.modules["2"]["backward_macs"] == N * B * C  # its input needs no gradient now
    assert p.totals["trainable_params"] == B * C + C + C * D + D


def test_convolution_backward_closed_form():
    ci, c1, k1, s1, c2, k2, length, n = 2, 8, 10, 5, 6, 3, 400, 2
    model = nn.Sequential(nn.Conv1d(ci, c1, k1, stride=s1), nn.GELU(), nn.Conv1d(c1, c2, k2))
    p = profiler.profile(model, torch.randn(n, ci, length), mode="train")
    l1 = (length - k1) // s1 + 1
    l2 = l1 - k2 + 1
    first, second = n * l1 * c1 * ci * k1, n * l2 * c2 * c1 * k2
    assert p.modules["0"]["macs"] == first and p.modules["0"]["backward_macs"] == first
    assert p.modules["2"]["macs"] == second and p.modules["2"]["backward_macs"] == 2 * second
    assert p.modules["0"]["backward_flops"] == 2 * first + n * c1 * l1
    assert p.modules["1"]["backward_flops"] == n * c1 * l1
    assert not p.unsupported


def _flop_counter_total(model, x) -> int:
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        out.backward(torch.ones_like(out))
    return counter.get_total_flops()


@pytest.mark.parametrize("build, shape", [
    (linear_stack, (N, A)),
    (lambda: nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.ReLU(),
                           nn.Linear(32, 4)), (3, 10, 16)),
    (lambda: nn.Sequential(nn.Conv1d(1, 8, 10, stride=5), nn.ReLU(), nn.Conv1d(8, 16, 3),
                           nn.ReLU(), nn.Conv1d(16, 16, 1)), (2, 1, 800)),
    (lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                           nn.Conv2d(8, 8, 3, stride=2)), (2, 3, 16, 16)),
])
def test_forward_and_backward_match_flop_counter_mode(build, shape):
    # FlopCounterMode counts 2 FLOPs per MAC of matrix products and convolutions, forward
    # and backward, and nothing elementwise: right on these models. (Not on grouped
    # convolutions: it counts their weight gradient `groups` times, see the next test.)
    torch.manual_seed(0)
    model, x = build(), torch.randn(shape)
    p = profiler.profile(model, x, mode="train")
    assert 2 * p.totals["train_macs"] == _flop_counter_total(model, x)


def test_grouped_convolution_backward_is_twice_its_forward():
    n, c, k, groups, size = 2, 8, 3, 4, 12
    model = nn.Sequential(nn.Conv2d(3, c, 1), nn.Conv2d(c, c, k, groups=groups))
    p = profiler.profile(model, torch.randn(n, 3, size, size), mode="train")
    out = size - k + 1
    grouped = n * out * out * c * (c // groups) * k * k
    assert p.modules["1"]["macs"] == grouped
    assert p.modules["1"]["backward_macs"] == 2 * grouped
    model[1].requires_grad_(False)  # frozen: only the input gradient, for the layer below
    p = profiler.profile(model, torch.randn(n, 3, size, size), mode="train")
    assert p.modules["1"]["backward_macs"] == grouped


class SignSTE(nn.Linear):
    """A W1A1 linear layer trained through straight-through estimators."""
    weight_bits = 1
    activation_bits = 1

    def forward(self, x):
        w = self.weight + (torch.sign(self.weight) - self.weight).detach()
        xb = x + (torch.sign(x) - x).detach()
        return F.linear(xb, w, self.bias)


def test_a_binarized_layer_trains_in_float():
    model = nn.Sequential(nn.Linear(A, B), SignSTE(B, C))
    p = profiler.profile(model, torch.randn(N, A), mode="train")
    assert p.module_bits("1") == {"W1A1": N * B * C}
    assert p.totals["bop_bq"] == N * B * C
    # its backward runs in float: W32A32 (gradient x binarized weight), A32A32 (gradient x
    # binarized input), no binary BOPs
    assert p.totals["backward_bop_bq"] == 0
    assert set(p.backward_by_bits) == {"W32A32", "A32A32"}
    assert p.modules["1"]["backward_macs"] == 2 * N * B * C
    assert p.modules["1"]["backward_bop_nonq"] == 2 * N * B * C * 32 * 32
    # binarizing the latent weight (sign, a subtraction, an addition per element) is left
    # out of inference as precomputable, but the weights change every training step
    t = p.totals
    assert t["foldable_flops"] == 3 * B * C
    assert t["train_flops"] == (t["flops"] + 3 * B * C + t["backward_flops"]
                                + t["optimizer_flops"])


def test_forward_of_a_train_profile_is_the_inference_profile():
    model = linear_stack().eval()
    x = torch.randn(N, A)
    inference, train = profiler.profile(model, x), profiler.profile(model, x, mode="train")
    for key, value in inference.totals.items():
        assert train.totals[key] == value, key
    assert "backward_macs" not in inference.totals and inference.mode == "inference"
    assert train.mode == "train"


class WritesItsWeight(nn.Linear):
    """Writes its weight in a training forward, as a quantizer's first-step init does."""

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and not x.is_meta:
            with torch.no_grad():
                self.weight.mul_(2)
        return super().forward(x)


def test_the_users_model_is_untouched():
    model = nn.Sequential(linear_stack(), WritesItsWeight(D, 2))
    before = [p.detach().clone() for p in model.parameters()]
    for device in ("meta", "cpu"):
        profiler.profile(model, torch.randn(N, A), mode="train", device=device)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_cpu_equals_meta_and_round_trip():
    model, x = linear_stack(), torch.randn(N, A)
    meta = profiler.profile(model, x, mode="train")
    cpu = profiler.profile(model, x, mode="train", device="cpu")
    assert meta.totals == cpu.totals
    saved = meta.to_json()
    loaded = Profile.from_dict(json.loads(saved))
    assert loaded.to_json() == saved and loaded.mode == "train"
    assert dict(loaded.backward_by_bits) == dict(meta.backward_by_bits)
    assert loaded.memory == meta.memory


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be one of inference, train"):
        profiler.profile(linear_stack(), torch.randn(N, A), mode="training")


def test_frozen_model_is_one_clear_error():
    model = linear_stack().requires_grad_(False)
    with pytest.raises(profiler.ProfileError, match="no output of the model requires"):
        profiler.profile(model, torch.randn(N, A), mode="train")


def test_cli_profile_mode_train(cli, tmp_path):
    from tests.test_cli_profile import MODEL_FILE  # its mlp(): Linear(80, 256), ReLU, ...

    path = tmp_path / "mlp_file.py"
    path.write_text(MODEL_FILE)
    result = cli("profile", "--model", f"{path}:mlp", "--input-shape", "2x80", "--mode",
                 "train", "--format", "json")
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    forward = 2 * (80 * 256 + 256 * 10)
    assert totals["macs"] == forward
    assert totals["backward_macs"] == 2 * 80 * 256 + 2 * 2 * 256 * 10
    text = cli("profile", "--model", f"{path}:mlp", "--input-shape", "2x80", "--mode", "train")
    assert text.returncode == 0, text.stderr
    assert "training step" in text.stdout and "peak memory" in text.stdout


@pytest.mark.parametrize("command", [["profile", "--model", "vanilla"], ["table"]])
def test_cli_unknown_mode_is_one_line(cli, command):
    result = cli(*command, "--mode", "bogus")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--mode" in result.stderr
