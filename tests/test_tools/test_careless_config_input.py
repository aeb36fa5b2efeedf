"""The tools as a user runs them, in a fresh process with no default scope set, on real
configs, and what they say about careless input: a misspelled type, a malformed or
ill-typed ``--cfg-options`` item, a syntax error in a config or in one of its ``_base_``
files."""
import json
import re

import numpy as np
import pytest

from detlab.datasets.shapes.generator import SHAPE_CLASSES

from helpers import QUICKSTART, REPO_ROOT, assert_ok, run_tool

pytestmark = pytest.mark.slow

#: Every tool that reads a config and takes --cfg-options, with the arguments
#: that come before the options (paths that are never reached are fine: the
#: options are refused first).
CONFIG_TOOLS = {
    'tools/train.py': [QUICKSTART],
    'tools/test.py': [QUICKSTART, 'none.pth'],
    'tools/misc/print_config.py': [QUICKSTART],
    'tools/analysis_tools/eval_metric.py': [QUICKSTART, 'none.pkl'],
    'tools/analysis_tools/confusion_matrix.py': [QUICKSTART, 'none.pkl', 'cm'],
    'tools/analysis_tools/browse_dataset.py': [QUICKSTART, '--not-show'],
    'tools/analysis_tools/get_flops.py': [QUICKSTART],
    'tools/analysis_tools/benchmark.py': [QUICKSTART, 'none.pth'],
    'tools/analysis_tools/receptive_field.py': [QUICKSTART],
    'tools/deployment/export_onnx.py': [QUICKSTART, 'none.pth'],
}


def failure(result) -> str:
    """stderr of a run that must have failed."""
    assert result.returncode != 0, result.stdout[-2000:]
    return result.stderr


def test_eval_metric_and_confusion_matrix_run_on_the_quickstart_config(
        quickstart_model, tmp_path):
    """The README's commands: test.py --out preds.pkl, then the analysis tools on the
    real config (its real pipeline, PackDetInputs and all)."""
    preds = tmp_path / 'preds.pkl'
    options = quickstart_model['options']
    assert_ok(run_tool('tools/test.py', quickstart_model['config'],
                       quickstart_model['checkpoint'], '--work-dir', tmp_path / 'work',
                       '--out', preds, '--cfg-options', *options))
    output = assert_ok(run_tool('tools/analysis_tools/eval_metric.py', QUICKSTART, preds,
                                '--out-dir', tmp_path / 'pr', '--cfg-options', *options))
    assert "'coco/bbox_mAP'" in output
    assert sorted(p.name for p in (tmp_path / 'pr').iterdir()) == sorted(
        f'pr_curve_{i:03d}_{name}.png' for i, name in enumerate(SHAPE_CLASSES))
    assert_ok(run_tool('tools/analysis_tools/confusion_matrix.py', QUICKSTART, preds,
                       tmp_path / 'cm', '--cfg-options', *options))
    saved = json.loads((tmp_path / 'cm' / 'confusion_matrix.json').read_text())
    assert saved['labels'] == [*SHAPE_CLASSES, 'background']
    assert np.array(saved['counts']).shape == (4, 4) and np.sum(saved['counts']) > 0


def test_print_config_prints_the_merged_config():
    output = assert_ok(run_tool('tools/misc/print_config.py', QUICKSTART, '--cfg-options',
                                'train_cfg.max_iters=7'))
    assert "type='RetinaNet'" in output and 'max_iters=7' in output


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py',
                                  'tools/analysis_tools/eval_metric.py'])
def test_cfg_option_without_equals_is_a_usage_error(tool):
    stderr = failure(run_tool(tool, *CONFIG_TOOLS[tool], '--cfg-options',
                              'train_cfg.max_iters', timeout=120))
    assert "argument --cfg-options: 'train_cfg.max_iters' is not KEY=VALUE" in stderr
    assert 'Traceback' not in stderr


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/misc/print_config.py',
                                  'tools/analysis_tools/get_flops.py'])
def test_cfg_option_of_the_wrong_type_names_key_and_expected_type(tool):
    stderr = failure(run_tool(tool, *CONFIG_TOOLS[tool], '--cfg-options',
                              'train_cfg.max_iters=abc', timeout=120))
    assert ("--cfg-options train_cfg.max_iters='abc': train_cfg.max_iters is 1600 in the "
            "config, so it takes a number, not str 'abc'.") in stderr


def test_cfg_option_types_bool_and_float():
    stderr = failure(run_tool('tools/misc/print_config.py', QUICKSTART, '--cfg-options',
                              'optim_wrapper.optimizer.lr=fast',
                              'train_dataloader.persistent_workers=1'))
    assert "optim_wrapper.optimizer.lr is 0.002 in the config, so it takes a number" in stderr
    assert ('train_dataloader.persistent_workers is True in the config, so it takes a bool '
            '(True or False), not int 1') in stderr
    # An int for a float, and None anywhere, are fine.
    output = assert_ok(run_tool('tools/misc/print_config.py', QUICKSTART, '--cfg-options',
                                'optim_wrapper.optimizer.lr=1', 'randomness.seed=None'))
    assert 'lr=1,' in output


#: (--cfg-options key, misspelled type, the name it should have been, as listed).
MISSPELLINGS = [
    ('optim_wrapper.optimizer.type', 'AdamX', 'Adam'),
    ('optim_wrapper.type', 'OptimWraper', 'OptimWrapper'),
    ('param_scheduler.1.type', 'CosineAnealingLR', 'CosineAnnealingLR'),
    ('default_hooks.checkpoint.type', 'CheckpointHok', 'CheckpointHook'),
    ('visualizer.type', 'DetLocalVisualiser', 'DetLocalVisualizer'),
    ('visualizer.vis_backends.1.type', 'TensorBoardVisBackend', 'TensorboardVisBackend'),
    ('train_cfg.type', 'IterBasedTrainLop', 'IterBasedTrainLoop'),
    ('runner_type', 'Runer', 'Runner'),
    ('val_evaluator.type', 'CocoMetrc', 'CocoMetric'),
    ('train_dataloader.dataset.type', 'ShapeDataset', 'ShapesDataset'),
    ('train_dataloader.dataset.pipeline.2.type', 'Resise', 'Resize'),
    ('model.neck.type', 'FNP', 'FPN'),
]


def test_misspelled_types_name_key_and_closest_names():
    """One run with a misspelling in every part a runner builds: each is named, with
    its config key and the closest known names, before anything is built."""
    stderr = failure(run_tool('tools/train.py', QUICKSTART, '--work-dir', 'none',
                              '--cfg-options',
                              *(f'{key}={wrong}' for key, wrong, _ in MISSPELLINGS)))
    for key, wrong, closest in MISSPELLINGS:
        shown = key.replace('.1.', '[1].').replace('.2.', '[2].')
        problem = stderr.split(f"{shown}: '{wrong}' is not in the detlab::")[1].split(' | ')[0]
        assert closest in problem.split('Closest known names: ')[1].rstrip('."\n').split(', ')


def test_every_tool_parses_cfg_options_with_detlabs_action():
    """mmengine's DictAction ends in a traceback on an item without '='."""
    for tool in CONFIG_TOOLS:
        source = (REPO_ROOT / tool).read_text()
        assert re.search(r"'--cfg-options', nargs='\+', action=CfgOptionsAction", source), tool
        assert 'DictAction' not in source, tool


def test_syntax_error_in_a_base_file_names_it_and_its_line(tmp_path):
    (tmp_path / 'base.py').write_text("model = dict(\n    type='RetinaNet',\n    depth=(50,\n")
    config = tmp_path / 'config.py'
    config.write_text("_base_ = ['./base.py']\nx = 1\n")
    for tool in ('tools/train.py', 'tools/misc/print_config.py'):
        stderr = failure(run_tool(tool, config))
        assert (f'SyntaxError: Syntax error in the config {config}: File "{tmp_path}/base.py", '
                "line 3: '(' was never closed") in stderr
        assert '<unknown>' not in stderr


def test_syntax_error_in_the_config_itself(tmp_path):
    config = tmp_path / 'config.py'
    config.write_text(f"_base_ = '{REPO_ROOT / QUICKSTART}'\nmodel = dict(type='RetinaNet'\n"
                      'x = 1\n')
    stderr = failure(run_tool('tools/misc/print_config.py', config))
    assert f'File "{config}", line 2' in stderr and '<unknown>' not in stderr
