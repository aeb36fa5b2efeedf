"""benchmarks/bench_deformable_attention.py runs, checks agreement and reports its ratio
(a smoke test, not a timing)."""
import re

import pytest

from helpers import assert_ok, run_tool

pytestmark = pytest.mark.slow


def test_deformable_attention_benchmark_reports_both_cases():
    output = assert_ok(run_tool('benchmarks/bench_deformable_attention.py', '--image', '64',
                                '--batch', '1', '--repeats', '1'))
    for case in ('encoder', 'decoder'):
        assert re.search(rf'{case}: \d+ queries, 85 values, batch 1: mmcv [\d.]+ s, detlab '
                         rf'[\d.]+ s, mmcv/detlab [\d.]+x', output), output
