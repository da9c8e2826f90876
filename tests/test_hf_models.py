"""`--model hf:NAME` and `hf:path/config.json`: transformers audio encoders built from a
config, offline, with random (or no) weights; their counts against a closed form and
against FlopCounterMode; bad input as one line with exit status 2."""
import json

import pytest
import torch

from models import huggingface
from profiler import profile
from profiler.cli import main

# Small configs: one layer, narrow, so that a build takes milliseconds.
SMALL = {
    "hubert": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
                   intermediate_size=128),
    "wav2vec2": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
                     intermediate_size=128),
    "wavlm": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
                  intermediate_size=128),
    "data2vec-audio": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
                           intermediate_size=128),
    "whisper": dict(encoder_layers=1, d_model=64, encoder_attention_heads=4,
                    encoder_ffn_dim=128, num_mel_bins=16, max_source_positions=50),
}


def write_config(folder, model_type: str, **fields):
    path = folder / f"{model_type}.json"
    path.write_text(json.dumps({"model_type": model_type, **SMALL[model_type], **fields}),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("model_type", sorted(SMALL))
def test_each_family_profiles_from_a_local_config(tmp_path, capsys, model_type):
    config = write_config(tmp_path, model_type)
    out = tmp_path / "profile.json"
    assert main(["profile", "--model", f"hf:{config}", "--seconds", "0.5", "--format", "json",
                 "--output", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    expected_shape = [1, 16, 100] if model_type == "whisper" else [1, 8000]
    assert result["info"]["inputs"][0]["shape"] == expected_shape
    assert result["info"]["device"] == "meta"
    built = huggingface.build(f"hf:{config}", device="meta").module
    assert result["totals"]["params"] == sum(p.numel() for p in built.parameters())
    assert result["totals"]["macs"] > 0 and not result["unsupported"]


def test_the_default_config_path_builds_hubert_base_on_meta(tmp_path):
    out = tmp_path / "profile.json"
    assert main(["profile", "--model", "hf:hubert", "--seconds", "1", "--format", "json",
                 "--output", str(out)]) == 0
    totals = json.loads(out.read_text(encoding="utf-8"))["totals"]
    # HuBERT-Base: 12 layers of width 768 (transformers' HubertConfig() defaults).
    from transformers import HubertConfig, HubertModel

    with torch.device("meta"):
        reference = HubertModel(HubertConfig())
    assert totals["params"] == sum(p.numel() for p in reference.parameters())
    assert totals["storage_bytes"] == 4 * totals["params"]


def test_one_hubert_layer_against_its_closed_form(tmp_path):
    """The transformer layer of a 1-layer HuBERT: Q, K, V and output projections, the two
    attention products over T frames, the feed-forward; T from the wav2vec 2.0 CNN's
    frame formula (kernels 10, 3, 3, 3, 3, 2, 2; strides 5, 2, 2, 2, 2, 2, 2; no padding)."""
    dim, ffn, samples = 64, 128, 8000
    frames = samples
    for kernel, stride in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
        frames = (frames - kernel) // stride + 1
    assert frames == 24
    layer_macs = 4 * frames * dim * dim + 2 * frames * frames * dim + 2 * frames * dim * ffn
    model = huggingface.build(f"hf:{write_config(tmp_path, 'hubert')}", device="meta")
    assert model.input_shape(1, samples) == (1, samples)
    result = profile(model.module, torch.empty(1, samples, device="meta"))
    assert result.subtree("encoder.layers.0")["macs"] == layer_macs


def test_whisper_s_encoder_against_flop_counter_mode(tmp_path):
    from torch.utils.flop_counter import FlopCounterMode

    # Eager attention (matmuls): FlopCounterMode has no formula for the kernel CPU runs
    # scaled_dot_product_attention with (a known cause in profiler/peers.py).
    model = huggingface.build(f"hf:{write_config(tmp_path, 'whisper')}",
                              {"_attn_implementation": "eager"}, device="cpu")
    features = torch.randn(model.input_shape(1, None))
    assert features.shape == (1, 16, 100)   # 2 x max_source_positions log-mel frames
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.module(features)
    assert 2 * profile(model.module, features).totals["macs"] == counter.get_total_flops()


def test_overrides_are_config_fields(tmp_path):
    config = write_config(tmp_path, "wav2vec2")
    model = huggingface.build(f"hf:{config}", {"num_hidden_layers": 2}, device="meta")
    assert len(model.module.encoder.layers) == 2


@pytest.mark.parametrize("spec, contents, message", [
    ("hf:{dir}/bad.json", "not json {", "is not JSON"),
    ("hf:{dir}/bert.json", '{"model_type": "bert"}', "model_type 'bert'"),
    ("hf:{dir}/list.json", "[1, 2]", "not a JSON object"),
    ("hf:{dir}/missing.json", None, "does not exist"),
    ("hf:bert", None, "expected one of hubert"),
])
def test_bad_hf_input_is_one_line_and_exit_2(tmp_path, capsys, spec, contents, message):
    spec = spec.format(dir=tmp_path)
    if contents is not None:
        (tmp_path / spec.rpartition("/")[2]).write_text(contents, encoding="utf-8")
    assert main(["profile", "--model", spec, "--seconds", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_an_unknown_override_is_one_line_and_exit_2(capsys):
    assert main(["profile", "--model", "hf:hubert", "--set", "no_such_field=1"]) == 2
    assert "no field 'no_such_field'" in capsys.readouterr().err


@pytest.mark.parametrize("override, raised", [
    ("hidden_size=-5", "RuntimeError"), ("num_attention_heads=0", "ZeroDivisionError")])
def test_a_config_transformers_cannot_build_is_one_line_and_exit_2(capsys, override, raised):
    assert main(["profile", "--model", "hf:hubert", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot build HubertModel" in err and raised in err


def test_the_command_line_knows_the_prefix_without_importing_the_zoo():
    from profiler.commands import loading

    assert loading.HF_PREFIX == huggingface.PREFIX
