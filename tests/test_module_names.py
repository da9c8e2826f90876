"""profiler.module_names: the rules that fold and group a profile's rows, on hand-made names."""
from profiler.module_names import ancestor_at, is_within, module_depth


def test_depth_counts_levels_below_the_model():
    assert [module_depth(n) for n in ("", "encoder", "encoder.layers.0")] == [0, 1, 3]


def test_ancestor_at_folds_deeper_names_and_keeps_shallower_ones():
    assert ancestor_at("encoder.layers.0.attention", 2) == "encoder.layers"
    assert ancestor_at("encoder.layers.0.attention", 0) == ""
    assert ancestor_at("encoder", 2) == "encoder"
    assert ancestor_at("", 1) == ""


def test_within_is_the_subtree_not_a_prefix_of_the_text():
    assert is_within("encoder.layers.0", "encoder")
    assert is_within("encoder", "encoder")
    assert is_within("anything.at.all", "")
    # a sibling whose name starts with the same letters is not below it
    assert not is_within("encoder_proj", "encoder")
    assert not is_within("encoder", "encoder.layers")
