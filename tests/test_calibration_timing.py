"""profiler.calibration's timing loops on calls that record themselves (no real timing)."""
from profiler.calibration import best_time, interleaved_times, median_time


def test_interleaved_times_warm_each_up_once_then_take_rounds_in_turn():
    called, synced = [], []
    calls = {"a": lambda: called.append("a"), "b": lambda: called.append("b")}
    times = interleaved_times(calls, rounds=3, synchronize=lambda: synced.append(called[-1]))
    assert called == ["a", "b"] + ["a", "b"] * 3
    assert synced == called                 # a synchronization after every call, timed ones too
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}
    assert all(s >= 0 for t in times.values() for s in t)
    called.clear()
    times = interleaved_times(calls, rounds=2, warmup=2)
    assert called == ["a", "b"] * 2 + ["a", "b"] * 2      # two warm-up rounds, two timed
    assert {name: len(t) for name, t in times.items()} == {"a": 2, "b": 2}


def test_best_and_median_time_run_at_least_min_runs_after_a_warm_up():
    called = []
    ticks = iter(range(100))                 # a clock that advances one second a reading

    best, runs = best_time(lambda: called.append(1), 0.0, lambda: None, min_runs=4,
                           clock=lambda: next(ticks))
    assert runs == 4 and len(called) == 5 and best == 1
    ticks = iter(range(100))
    median, runs = median_time(lambda: None, 0.0, lambda: None, min_runs=3,
                               clock=lambda: next(ticks))
    assert runs == 3 and median == 1
