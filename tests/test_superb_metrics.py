"""The metrics of the SUPERB tasks on cases worked out by hand, and the bootstrap interval."""
import numpy as np
import pytest

from models.trainer.superb.tasks import metrics


def test_word_error_rate_on_hand_counted_pairs():
    references = ["the cat sat on the mat", "hello world", "a b c"]
    hypotheses = ["the cat sit on mat",      # 1 substitution + 1 deletion
                  "hello big world",         # 1 insertion
                  ""]                        # 3 deletions
    errors, lengths = metrics.word_errors(references, hypotheses)
    assert errors.tolist() == [2, 1, 3] and lengths.tolist() == [6, 2, 3]
    assert metrics.word_error_rate(references, hypotheses) == pytest.approx(6 / 11)


def test_diarization_error_rate_on_a_two_speaker_timeline():
    from pyannote.core import Annotation, Segment

    # Reference: A speaks 0-10 s, B 8-15 s (2 s of overlap). The hypothesis hears one
    # speaker 0-9 s and another 9-15 s: A's 8-10 s under the overlap is missed once in
    # 8-9 (only x is active) and once in 9-10 (only y, mapped to B). Total speech 17 s.
    reference, hypothesis = Annotation(), Annotation()
    reference[Segment(0, 10)] = "A"
    reference[Segment(8, 15)] = "B"
    hypothesis[Segment(0, 9)] = "x"
    hypothesis[Segment(9, 15)] = "y"
    parts = metrics.diarization_components([reference], [hypothesis], [15.0])
    assert parts["missed"].tolist() == [2.0] and parts["total"].tolist() == [17.0]
    assert parts["confusion"].tolist() == [0.0] and parts["false_alarm"].tolist() == [0.0]
    assert metrics.diarization_error_rate(parts) == pytest.approx(2 / 17)


def test_diarization_from_frames_counts_confusion():
    # 0.5 s frames. Reference: A in 0-4 s, B in 4-10 s; hypothesis: x in 0-6 s, y in 6-10 s.
    # Best mapping x->A, y->B; 4-6 s is B labelled as A: 2 s of confusion out of 10 s.
    reference = np.zeros((20, 2), dtype=int)
    reference[:8, 0] = 1
    reference[8:, 1] = 1
    hypothesis = np.zeros((20, 2), dtype=int)
    hypothesis[:12, 0] = 1
    hypothesis[12:, 1] = 1
    parts = metrics.diarization_components([metrics.frames_to_annotation(reference, 0.5)],
                                           [metrics.frames_to_annotation(hypothesis, 0.5)], [10.0])
    assert parts["confusion"].tolist() == [2.0]
    assert metrics.diarization_error_rate(parts) == pytest.approx(0.2)


def test_two_speakers_over_the_same_segment_stay_two():
    # Reference: A alone over 0-1 s (0.02 s frames). A hypothesis with both outputs on for
    # the whole second has one speaker too many throughout: 1 s of false alarm, DER 1.0. One
    # track per segment kept only the last speaker: scored as a perfect answer, DER 0.
    reference = np.zeros((50, 2), dtype=int)
    reference[:, 0] = 1
    both = np.ones((50, 2), dtype=int)
    hypothesis = metrics.frames_to_annotation(both, 0.02)
    assert sorted(hypothesis.labels()) == ["spk0", "spk1"]
    parts = metrics.diarization_components([metrics.frames_to_annotation(reference, 0.02)],
                                           [hypothesis], [1.0])
    assert parts["false_alarm"].tolist() == pytest.approx([1.0])
    assert metrics.diarization_error_rate(parts) == pytest.approx(1.0)


def test_equal_error_rate_on_small_score_lists():
    # Threshold 0.7 accepts targets 0.9, 0.8 and non-target 0.7: miss 1/3 = false alarm 1/3.
    assert metrics.equal_error_rate([1, 1, 1, 0, 0, 0],
                                    [0.9, 0.8, 0.4, 0.7, 0.3, 0.2]) == pytest.approx(1 / 3)
    assert metrics.equal_error_rate([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2]) == 0.0
    # Targets 0.9 and 0.5, non-target 0.7: the ROC jumps from (fa 0, miss 1/2) to
    # (fa 1, miss 1/2); the rates cross half way, at 1/2.
    assert metrics.equal_error_rate([1, 1, 0], [0.9, 0.5, 0.7]) == pytest.approx(0.5)


def test_mtwv_on_a_small_detection_list():
    assert metrics.TWV_BETA == pytest.approx(999.9)
    truth = np.array([[1, 1, 0, 0], [0, 1, 0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.4, 0.6, 0.1], [0.2, 0.8, 0.3, 0.5]])
    # Threshold 0.8: term 1 finds 1 of 2 (TWV 0.5), term 2 finds its one (TWV 1), no false
    # alarm; any lower threshold adds a false alarm costing beta/2 or beta/3.
    value, threshold = metrics.maximum_term_weighted_value(scores, truth)
    assert value == pytest.approx(0.75) and threshold == pytest.approx(0.8)
    # With beta = 1, threshold 0.4: term 1 misses nothing and has 1 false alarm of 2 (0.5);
    # term 2 finds its one and has 1 false alarm (0.5) of 3 (1 - 1/3).
    twv = metrics.term_weighted_values(scores, truth, np.array([0.4]), beta=1.0)
    assert twv[:, 0] == pytest.approx([0.5, 2 / 3])
    # Nothing detected scores 0 whatever the beta.
    assert metrics.term_weighted_values(scores, truth, np.array([np.inf]))[:, 0] == \
        pytest.approx([0.0, 0.0])


def test_slot_type_f1_and_slot_value_cer():
    references = [{"time": ["seven am"], "room": ["kitchen"]}, {}, {"room": ["hall"]}]
    hypotheses = [{"time": ["seven pm"], "device": ["lights"]}, {}, {}]
    # Item 1: P = R = 1/2 -> F1 1/2; item 2: both empty -> 1; item 3: nothing found -> 0.
    f1 = metrics.slot_type_f1_per_item(references, hypotheses)
    assert f1.tolist() == pytest.approx([0.5, 1.0, 0.0])
    # "seven am" -> "seven pm": 1 edit of 8; "kitchen" missing: 7 of 7; "hall": 4 of 4.
    edits, lengths = metrics.slot_value_errors(references, hypotheses)
    assert edits.tolist() == [8.0, 0.0, 4.0] and lengths.tolist() == [15.0, 0.0, 4.0]
    assert edits.sum() / lengths.sum() == pytest.approx(12 / 19)


def test_slot_value_cer_takes_the_closest_value_of_a_type():
    edits, _ = metrics.slot_value_errors([{"city": ["paris"]}],
                                         [{"city": ["london", "pariss"]}])
    assert edits.tolist() == [1.0]


def test_bootstrap_interval_of_a_constant_has_zero_width():
    low, high = metrics.bootstrap_interval(metrics.mean_statistic([0.7] * 50), 50)
    assert low == pytest.approx(0.7) and high == pytest.approx(0.7)


def test_bootstrap_interval_of_two_items():
    # Resampling [0, 1] gives means 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4: the 2.5 %
    # and 97.5 % quantiles of 1000 draws are 0 and 1.
    assert metrics.bootstrap_interval(metrics.mean_statistic([0.0, 1.0]), 2) == (0.0, 1.0)
    assert metrics.bootstrap_interval(metrics.mean_statistic([1.0]), 1) == (1.0, 1.0)


def test_bootstrap_interval_matches_the_normal_approximation():
    # 900 of 1000 correct: the binomial 95 % half-width is 1.96 * sqrt(0.9 * 0.1 / 1000).
    correct = np.array([1.0] * 900 + [0.0] * 100)
    low, high = metrics.bootstrap_interval(metrics.mean_statistic(correct), 1000, seed=3)
    half = 1.96 * np.sqrt(0.9 * 0.1 / 1000)
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert low < 0.9 < high
    assert metrics.bootstrap_interval(metrics.mean_statistic(correct), 1000, seed=3) == (low, high)


def test_ratio_and_mtwv_statistics_on_all_items_equal_the_metric():
    statistic = metrics.ratio_statistic([2, 1, 3], [6, 2, 3])
    assert statistic(np.arange(3)) == pytest.approx(6 / 11)
    truth = np.array([[1, 1, 0, 0], [0, 1, 0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.4, 0.6, 0.1], [0.2, 0.8, 0.3, 0.5]])
    statistic, terms = metrics.mtwv_statistic(scores, truth)
    assert terms == 2 and statistic(np.arange(2)) == pytest.approx(0.75)
