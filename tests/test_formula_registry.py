"""The formula registry: one formula per op unless an override is asked for, only ops the
installed PyTorch has, and the fast meta path's ops taken from it (each checked against the
op's own meta kernel)."""
import pytest
import torch

from profiler import fastmeta, formulas
from profiler.formulas import products, registry

aten = torch.ops.aten


@pytest.fixture
def restore_registry():
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    fastmeta._rules.clear()


def _two_macs(*args, **kwargs):
    return 2


def test_a_second_formula_for_an_op_raises(restore_registry):
    with pytest.raises(ValueError, match=r"aten.mm already has a formula \(mm\).*override=True"):
        formulas.formula(aten.mm)(_two_macs)
    with pytest.raises(ValueError, match="already has a formula"):
        formulas.zero_cost([aten.trace, aten.add])  # add is taken: nothing is registered
    assert "aten.trace" not in formulas.registered_ops()
    with pytest.raises(ValueError, match="already has a formula"):
        formulas.decomposition(aten._native_multi_head_attention)(_two_macs)
    assert formulas.lookup(aten.mm.default).fn is products.mm


def test_override_replaces_and_a_new_op_registers(restore_registry):
    formulas.formula(aten.mm, override=True)(_two_macs)
    assert formulas.lookup(aten.mm.default).fn is _two_macs
    formulas.elementwise(aten.trace, 1, per="input")
    assert "aten.trace" in formulas.registered_ops()


def test_only_ops_of_the_installed_torch():
    with pytest.raises(ValueError, match=r"has no op aten.no_such_op"):
        registry.aten_ops(["add", "no_such_op"])
    with pytest.raises(TypeError, match="ATen op"):
        formulas.formula("aten::mm")(_two_macs)
    with pytest.raises(ValueError, match="output must be one of"):
        formulas.formula(aten.trace, output="diagonal")(_two_macs)
    # in-place variants are taken where they exist, and only then
    assert registry.aten_ops(["add", "where"]) == [aten.add, aten.add_, aten.where]


def _sample_args(rule, packet):
    x = torch.randn(3, 1, 5, device="meta")
    y = torch.randn(4, 5, device="meta")
    if packet is aten.where:
        return (torch.ones(4, 5, dtype=torch.bool, device="meta"), x, y)
    if rule == "same":
        return (x, 0.5) if packet in (aten.clamp, aten.clamp_, aten.clamp_min, aten.clamp_min_,
                                      aten.clamp_max, aten.clamp_max_) else (x,)
    if rule in ("broadcast", "compare"):
        inplace = str(packet).endswith("_")
        return (torch.randn(3, 4, 5, device="meta") if inplace else x, y)
    if rule == "mm":
        a, b = torch.randn(3, 4, device="meta"), torch.randn(4, 6, device="meta")
        return (torch.randn(6, device="meta"), a, b) if packet is aten.addmm else (a, b)
    if rule == "bmm":
        a, b = torch.randn(2, 3, 4, device="meta"), torch.randn(2, 4, 6, device="meta")
        return (torch.randn(2, 3, 6, device="meta"), a, b) if packet is aten.baddbmm else (a, b)
    if rule == "reduce_all":
        return (x,)
    assert rule == "layer_norm"
    return (x, [5], torch.ones(5, device="meta"), torch.zeros(5, device="meta"), 1e-5)


class _Recorder(torch.utils._python_dispatch.TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.func = func
        return func(*args, **(kwargs or {}))


def _signature(out):
    items = out if isinstance(out, tuple) else (out,)
    return [(tuple(t.shape), t.dtype, t.is_contiguous()) for t in items]


def test_the_fast_path_takes_its_ops_from_the_registry_and_matches_the_kernels():
    checked = []
    for rule in formulas.OUTPUT_RULES:
        names = formulas.registered_ops(output=rule)
        assert names, rule
        for name in names:
            packet = getattr(aten, name.removeprefix("aten."))
            args = _sample_args(rule, packet)
            with _Recorder() as recorder:
                expected = packet(*args)
            fast = fastmeta.fast_output(recorder.func, args, {})
            if fast is not None:  # None: the kernel runs (e.g. eq_ keeps a float dtype)
                assert _signature(fast) == _signature(expected), name
                checked.append(name)
    # the ops the fast path shortcut before it read the registry
    for name in ("add", "mul_", "gelu", "relu_", "ge", "where", "mm", "addmm", "bmm",
                 "baddbmm", "native_layer_norm", "mean", "sum"):
        assert f"aten.{name}" in checked
    assert fastmeta.fast_output(aten.cumsum.default, (torch.randn(3, device="meta"), 0), {}) \
        is None
