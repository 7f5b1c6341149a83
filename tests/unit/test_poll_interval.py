"""How often the results poller reads a test: the operator's interval, unless the test's master
would quit before its final numbers could be read."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.api.parse import parse
from reconciler.runtime.results import SETTLE_SECONDS, poll_interval

ROOT = Path(__file__).resolve().parents[2]


def example(autoquit: dict | None) -> dict:
    test = yaml.safe_load((ROOT / "examples" / "locusttest.yaml").read_text())
    if autoquit is None:
        del test["spec"]["master"]["autoquit"]
    else:
        test["spec"]["master"]["autoquit"] = autoquit
    return test


def test_the_examples_10_s_autoquit_leaves_time_to_see_the_stop_and_settle():
    spec = parse(example({"enabled": True, "timeout": 10}))
    interval = poll_interval(10.0, spec)
    # Seen stopped within one interval (with its jitter), then two answers SETTLE_SECONDS apart.
    assert interval * 1.1 + 2 * SETTLE_SECONDS < 10


def test_a_long_autoquit_window_keeps_the_operators_interval():
    assert poll_interval(10.0, parse(example(None))) == 10.0  # 60 s by default
    assert poll_interval(10.0, parse(example({"enabled": True, "timeout": 120}))) == 10.0


def test_without_autoquit_or_a_spec_the_operators_interval_holds():
    assert poll_interval(10.0, parse(example({"enabled": False}))) == 10.0
    assert poll_interval(3.0, None) == 3.0


def test_a_shorter_operator_interval_is_kept():
    assert poll_interval(1.0, parse(example({"enabled": True, "timeout": 10}))) == 1.0
