"""benchmarks/bench_pipeline.py runs and reports its ratios (a smoke test, not a timing)."""
import pytest
import re

from helpers import assert_ok, run_tool


@pytest.mark.slow
def test_pipeline_benchmark_reports_ratio_ceiling_and_stages(coco128):
    output = assert_ok(run_tool('benchmarks/bench_pipeline.py', '--data-root', coco128,
                                '--rounds', '1', '--workers', '2', '--stages'))
    ratios = dict(re.findall(r'^(ratio|ceiling)[^:]*: ([0-9.]+)x$', output, re.MULTILINE))
    assert set(ratios) == {'ratio', 'ceiling'} and all(float(v) > 0 for v in ratios.values())
    assert re.search(r'detlab: get_data_info .*LoadImageFromFile .*PackDetInputs [0-9.]+; total',
                     output)
    assert len(re.findall(r'worker \d: RSS \d+, PSS \d+', output)) == 2
