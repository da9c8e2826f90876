"""models.deploy: packed W1A1 products against torch references (every kernel path this
CPU runs), every BQ zoo model deployed against its simulation, save/load and size against
the analyzer, refusals, and `measure --deployed`.

Comparing whole models: the simulation sums +-alpha*c in float, so where a binarizer's input
sits within rounding of its threshold (an exact tie when a bias-free product is 0) its sign
is rounding noise, and one flipped sign moves later layers far more than rounding does. The
models compared here are made "trained-like" with every binarizer alpha and every binary
weight scale a power of two and random biases and offsets: the simulation's products are
then exact, and any disagreement is the deployment's.

Cost: whole zoo models run on 0.25 s utterances (12 frames), one thread (results do not
depend on the thread count, and on a shared machine idle-spinning OpenMP workers make
multi-threaded passes many times slower); the sparse attention pattern (blocks of 32
frames) is checked on small sparse models at 2 s, where it masks pairs.
"""
import os
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

import models
from models.bit import BinaryConv1d, BinaryLinear, ElasticBinarizer, LearnableBias
from models.deployment import DeployError, kernels, load, save

SECONDS = 0.25
BQ = [name for name in models.names() if name.startswith("bq-")]
W1A1_BY_OVERRIDE = ("vanilla", {"weight_bits": 1, "activation_bits": 1})  # as --set gives


@contextmanager
def threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threads(1):
        yield


@pytest.fixture(scope="module")
def paths():
    """Compiles (or loads the cached) extension once for the module."""
    return kernels.supported_paths()


def wave(seconds=SECONDS, seed=1):
    return torch.randn(1, int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


def power_of_two(value: torch.Tensor) -> torch.Tensor:
    return torch.exp2(torch.round(torch.log2(value)))


def trained_like(model, x):
    """One training-mode forward initializes the binarizers; then exact scales (see above).
    (Parameters stop requiring gradients first: no autograd graph is built for the pass.)"""
    model.requires_grad_(False).train()
    torch.manual_seed(0)
    model(x)
    model.eval()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ElasticBinarizer):
                # The probabilities' binarizer starts at 4x their mean, which at random
                # weights sets no bit (P V would be 0): a quarter of it sets many.
                shrink = 4.0 if module.init_over_nonzero else 1.0
                module.alpha.copy_(power_of_two(module.alpha / shrink))
            elif isinstance(module, LearnableBias):
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=generator))
            elif isinstance(module, (BinaryLinear, BinaryConv1d)):
                weight = module.weight
                scale = power_of_two(weight.abs().mean())
                weight.copy_(torch.where(weight >= weight.mean(), scale, -scale))
                if module.bias is not None:
                    module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def zoo(paths):
    """name -> (simulated, deployed) for every BQ model and one W1A1 by overrides."""
    built = {}
    for name, overrides in [(name, {}) for name in BQ] + [W1A1_BY_OVERRIDE]:
        label = name if not overrides else f"{name} W1A1"
        simulated = trained_like(models.build(name, seed=0, **overrides), wave())
        built[label] = (simulated, models.deploy(simulated))
    return built


def signs(shape, generator):
    return torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)


# Row widths of 1-16 words: under 4 (the scalar path), a tail only (300 bits: 5 words),
# a full 8-word chunk and a tail (600: 10), whole chunks (1000: 16); odd row counts and
# column counts off the 2 x 4 and 1 x 8 blocks.
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 7, 63), (17, 9, 64), (37, 261, 130),
                                   (9, 13, 300), (8, 11, 600), (70, 259, 1000)])
def test_packed_product_equals_the_float_product_on_every_path(paths, m, n, k):
    generator = torch.Generator().manual_seed(m * n + k)
    a, b = signs((3, m, k), generator), signs((3, n, k), generator)
    ones = (torch.rand((3, m, k), generator=generator) < 0.3).float()
    signed_reference = torch.bmm(a, b.transpose(1, 2))
    unsigned_reference = torch.bmm(ones, b.transpose(1, 2))
    packed_a, packed_b = kernels.pack_rows(a), kernels.pack_rows(b)
    packed_ones = kernels.pack_rows(ones > 0)
    assert "portable" in paths
    for path in paths:
        for count in (1, 2):  # the largest shapes split over both threads
            with threads(count):
                signed = kernels.binary_matmul(packed_a, packed_b, k, kernels.XOR, path=path)
                unsigned = kernels.binary_matmul(packed_ones, packed_b, k, kernels.AND,
                                                 path=path)
            assert signed.dtype == torch.int32
            assert torch.equal(signed.double(), signed_reference.double()), (path, count)
            assert torch.equal(unsigned.double(), unsigned_reference.double()), (path, count)
        # The fused float epilogue rounds as torch does: products * scale + bias.
        scale, bias = torch.rand(n, generator=generator), torch.randn(n, generator=generator)
        fused = kernels.binary_matmul(packed_a, packed_b, k, kernels.XOR, path=path,
                                      scale=scale, bias=bias)
        assert torch.equal(fused, signed_reference * scale + bias), path
        fused = kernels.binary_matmul(packed_ones, packed_b, k, kernels.AND, path=path,
                                      scale=scale[:1])
        assert torch.equal(fused, unsigned_reference * scale[:1]), path


def test_packing_reproduces_the_binarizers_thresholds(paths):
    generator = torch.Generator().manual_seed(0)
    alpha = 0.3
    x = torch.randn(7, 200, generator=generator)
    x[0, :6] = torch.tensor([0.0, -0.0, 0.15, 0.1500001, 0.45, -1e-30])  # thresholds, exactly
    offset = torch.randn(200, generator=generator) * 0.1
    unpack = torch.arange(200)
    levels = ((x + offset) / torch.tensor(alpha)).round().clamp(0, 1)
    for unsigned, expected in [(False, (x + offset) >= 0), (True, levels > 0)]:
        for path in paths:
            words = kernels.pack_rows(x, offset, alpha, unsigned, path=path)
            assert words.shape == (7, 4)
            bits = (words[:, unpack // 64] >> (unpack % 64)) & 1
            assert torch.equal(bits.bool(), expected), path


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_packing_takes_every_floating_dtype_at_its_own_rounding(paths, dtype):
    """A model deployed in half or bfloat16 packs its rows in that dtype: the sum and the
    division by alpha round as the simulation's tensor ops do in it."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, 130, generator=generator).to(dtype)
    offset = (torch.randn(130, generator=generator) * 0.1).to(dtype)
    alpha = 0.3
    unpack = torch.arange(130)
    shifted = x + offset
    for unsigned, expected in [(False, shifted >= 0),
                               (True, shifted / torch.tensor(alpha, dtype=dtype) > 0.5)]:
        words = kernels.pack_rows(x, offset, alpha, unsigned)
        bits = (words[:, unpack // 64] >> (unpack % 64)) & 1
        assert torch.equal(bits.bool(), expected), (dtype, unsigned)


def test_a_bfloat16_linear_deploys_and_matches_its_simulation(paths):
    torch.manual_seed(0)
    layer = BinaryLinear(130, 70)
    with torch.no_grad():
        layer.input_offset.bias.normal_()
    layer.input_binarizer.mark_initialized(0.7)
    model = torch.nn.Sequential(layer).to(torch.bfloat16)
    deployed = models.deploy(model)
    x = torch.randn(3, 5, 130, dtype=torch.bfloat16)
    with torch.no_grad():
        expected, got = model(x).float(), deployed(x).float()
    # the outputs are about 1: a bfloat16 step there is 2^-7; rounding apart by two at most
    assert (got - expected).abs().max() <= 2 ** -6


@pytest.mark.parametrize("kernel,stride,padding,unsigned", [(31, 1, 15, False), (5, 2, 0, False),
                                                            (3, 1, 1, True), (64, 1, 0, False)])
def test_packed_depthwise_conv_equals_conv1d(paths, kernel, stride, padding, unsigned):
    generator = torch.Generator().manual_seed(kernel)
    batch, channels, time = 2, 5, 150
    x = (torch.rand((batch, channels, time), generator=generator) < 0.5).float() if unsigned \
        else signs((batch, channels, time), generator)
    w = signs((channels, 1, kernel), generator)
    valid = torch.ones(batch, time, dtype=torch.bool)
    valid[1, 101:] = False
    reference = F.conv1d(x * valid[:, None], w, padding=padding, stride=stride, groups=channels)
    bits = F.pad((x > 0), (padding, padding)).reshape(batch * channels, -1)
    valid_bits = F.pad(valid[:, None].expand(batch, channels, time), (padding, padding))
    t_out = reference.size(-1)
    for path in paths:
        out = kernels.binary_depthwise(kernels.pack_rows(bits),
                                       kernels.pack_rows(valid_bits.reshape(batch * channels, -1)),
                                       kernels.pack_rows(w[:, 0] > 0).view(-1), kernel, stride,
                                       t_out, unsigned, path=path)
        assert torch.equal(out.view_as(reference).double(), reference.double()), path


def test_a_path_the_cpu_lacks_is_refused_in_one_line(paths):
    missing = [name for name in kernels.PATHS if name not in paths]
    if not missing:
        pytest.skip("this CPU runs every kernel path")
    with pytest.raises(DeployError, match=f"cannot run the {missing[0]} kernel path"):
        kernels.path_number(missing[0])
    with pytest.raises(DeployError, match="unknown kernel path"):
        kernels.path_number("sse")


@pytest.mark.parametrize("unsigned,per_channel", [(False, False), (True, False), (False, True)])
def test_deployed_linear_matches_binary_linear_at_any_scale(paths, unsigned, per_channel):
    torch.manual_seed(0)
    layer = BinaryLinear(130, 70, unsigned_input=unsigned, per_channel_scale=per_channel)
    with torch.no_grad():
        layer.input_offset.bias.normal_()
        layer.bias.normal_()
    layer.input_binarizer.mark_initialized(0.7)
    model = torch.nn.Sequential(layer)
    deployed = models.deploy(model)
    x = torch.randn(3, 5, 130)
    with torch.no_grad():
        expected, got = model(x), deployed(x)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)


def assert_deployed_equals_simulated(simulated, deployed, x, label):
    """Batch of two (the second padded: 5/8 of it valid), last hidden states within 1e-4."""
    lengths = torch.tensor([x.size(1), x.size(1) * 5 // 8])
    batch = torch.cat([x, x])
    with torch.no_grad():
        expected = simulated(batch, lengths)
        got = deployed(batch, lengths)
    packed = {type(m).__name__ for m in deployed.modules() if type(m).__name__.startswith("Packed")}
    assert "PackedLinear" in packed
    assert not any(isinstance(m, (BinaryLinear, BinaryConv1d, ElasticBinarizer))
                   for m in deployed.modules()), "a binarized module was left simulated"
    reference = expected.last_hidden_state
    error = (got.last_hidden_state - reference).norm() / reference.norm()
    assert error <= 1e-4, f"{label}: relative error {error:.2e}"


@pytest.mark.parametrize("label", BQ + [f"{W1A1_BY_OVERRIDE[0]} W1A1"])
def test_deployed_zoo_model_equals_its_simulation(zoo, label):
    simulated, deployed = zoo[label]
    assert_deployed_equals_simulated(simulated, deployed, wave(seed=2), label)


@pytest.mark.parametrize("name", ["bq-sparseformer-sw-s", "bq-sparseformer-dn-s"])
@pytest.mark.parametrize("attention", ["masked", "blocked"])
def test_deployed_sparse_attention_masks_as_the_simulation(paths, name, attention):
    # 2 s is 99 frames: the pattern's 32-frame blocks mask pairs (the zoo test's 12 frames
    # fit in one block).
    x = wave(2.0, seed=3)
    simulated = trained_like(models.build(name, seed=0, layers=1, dim=64, heads=2,
                                          attention=attention), x)
    assert_deployed_equals_simulated(simulated, models.deploy(simulated), x,
                                     f"{name} {attention}")


@pytest.mark.parametrize("name,overrides", [
    ("bq-vanilla", dict(layers=2, dim=64, heads=2)),
    ("bq-conformer-s", dict(layers=2)),                          # head_dim 36: a part word
    ("bq-sparseformer-dn-s", dict(layers=2, dim=64, heads=2, attention="masked")),
    ("bq-sparseformer-sw-s", dict(layers=2, dim=64, heads=2, attention="blocked"))])
def test_fused_attention_equals_the_unfused_packed_path_to_the_bit(paths, monkeypatch, name,
                                                                     overrides):
    # 2 s (99 frames): two query tiles of 16 rows and a ragged one, 2 words of probability
    # bits per row, the sparse patterns' blocks mask pairs, and the second utterance's
    # padded keys are masked.
    from models.deployment import unfused_attention

    x = wave(2.0, seed=4)
    deployed = models.deploy(trained_like(models.build(name, seed=0, **overrides), x))
    assert any(type(m).__name__.startswith("Packed") and "Attention" in type(m).__name__
               for m in deployed.modules()), "no packed attention core"
    batch, lengths = torch.cat([x, x]), torch.tensor([x.size(1), x.size(1) * 5 // 8])
    calls = []
    fused_kernel = kernels.binary_attention
    monkeypatch.setattr(kernels, "binary_attention",
                        lambda *args, **kwargs: calls.append(1) or fused_kernel(*args, **kwargs))
    with torch.no_grad():
        with unfused_attention(deployed):
            unfused = deployed(batch, lengths).last_hidden_state
        assert not calls
        for path in paths:
            monkeypatch.setenv(kernels.PATH_ENV, path)
            fused = deployed(batch, lengths).last_hidden_state
            assert torch.equal(fused, unfused), (name, path)
    assert len(calls) == 2 * len(paths), "a core did not run fused"


def test_a_deployed_model_traces_its_packed_kernels_on_meta(zoo):
    # bq-vanilla: 12 layers, each 6 binarized Linear layers (q, k, v, out, fc1, fc2) and
    # one fused attention core. 1 s of audio is 49 frames; 12 heads of 64.
    import copy

    from profiler.kernel_estimate import trace_kernels

    deployed = copy.deepcopy(zoo["bq-vanilla"][1]).to("meta")
    kernels = trace_kernels(deployed, torch.empty(1, 16000, device="meta"))
    products = [k.dims for k in kernels if k.kind == "packed-matmul"]
    assert len(products) == 12 * 6
    assert set(products) == {(1, 49, 768, 768), (1, 49, 3072, 768), (1, 49, 768, 3072)}
    # every product's input is packed once, plus K and V (q, k, v, out, fc1, fc2, Q, K,
    # V); the probabilities are packed inside the fused core, whose scores stay in cache
    assert sum(k.kind == "packing" for k in kernels) == 12 * 9
    cores = [k.dims for k in kernels if k.kind == "packed-attention"]
    assert cores == [(12 * 49 * 49, 64, 64)] * 12


def test_every_layer_kind_is_packed(zoo):
    kinds = {type(m).__name__ for _, deployed in zoo.values() for m in deployed.modules()}
    assert {"PackedLinear", "PackedPointwiseConv1d", "PackedDepthwiseConv1d",
            "PackedDotProductAttention", "PackedSparseAttention",
            "PackedRelPositionAttentionCore", "PackedRelPositionSelfAttention"} <= kinds


@pytest.mark.parametrize("label", ["bq-conformer-s", "bq-sparseformer-sw-s"])
def test_saved_deployed_model_reloads_and_matches_the_analyzers_storage(zoo, label, tmp_path):
    import profiler

    simulated, deployed = zoo[label]
    path = tmp_path / "deployed.pt"
    save(deployed, path)
    # Storage does not depend on the input: a short one keeps the analyzer's pass cheap.
    storage = profiler.profile(simulated, wave(0.05)).totals["storage_bytes"]
    assert abs(os.path.getsize(path) / storage - 1) <= 0.02
    reloaded = load(path)
    with torch.no_grad():
        x = wave(0.2)
        assert torch.equal(reloaded(x).last_hidden_state, deployed(x).last_hidden_state)


def test_refuses_a_model_without_binarized_layers(paths):
    with pytest.raises(ValueError, match="no binarized"):
        models.deploy(models.build("sparseformer-sw-s", layers=1, dim=64, heads=2))


def test_a_convolution_no_packed_kernel_runs_is_refused_before_any_work(paths):
    """A binarized Conv1d that is neither pointwise nor depthwise (a full 3-tap conv) is
    named by the early check, as deploy() would refuse it, before binarizers are asked."""
    from models.deployment import deployable_layers

    model = torch.nn.Sequential(BinaryLinear(8, 8), BinaryConv1d(8, 8, 3, padding=1))
    for check in (deployable_layers, models.deploy):
        with pytest.raises(ValueError, match=r"^1: no packed kernel .* kernel 3, groups 1"):
            check(model)


def test_refuses_binarizers_never_initialized(paths):
    model = models.build("bq-sparseformer-sw-s", layers=1, dim=64, heads=2)
    with pytest.raises(ValueError, match="never initialized.*training-mode forward"):
        models.deploy(model)


def test_no_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(kernels.shutil, "which", lambda tool: None)
    with pytest.raises(DeployError, match=r"g\+\+.*ninja"):
        kernels._build()


def test_measure_deployed_cli(cli, paths):
    # The smallest BQ model at a short input: this checks the command, not the speed.
    result = cli("measure", "--models", "bq-sparseformer-dn-s", "--deployed", "--seconds", "0.2",
                 "--warmup", "0", "--repeats", "1", "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "bq-sparseformer-dn-s (deployed)" in result.stdout
    bad = cli("measure", "--models", "sparseformer-dn-s", "--deployed", "--seconds", "0.2",
              "--device", "cpu", "--threads", "1")
    assert bad.returncode == 2 and "no binarized" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
