"""tools/analysis_tools: get_flops, analyze_logs, benchmark, receptive_field."""
import importlib.util
import json
import math
import re

import matplotlib.image
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers import REPO_ROOT, assert_ok, run_tool
from detlab.apis import init_detector
from detlab.models.backbones import ResNet


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(
        name, REPO_ROOT / 'tools' / 'analysis_tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_flops_counts_parameters_exactly_and_flops_like_torch():
    get_flops = load_tool('get_flops')
    model = init_detector('retinanet_r18_fpn_shapes', None, device='cpu')
    info = get_flops.complexity(model, (192, 160))
    assert info['params'] == sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 192, 160))
    multiply_adds = counter.get_total_flops() / 2  # torch counts a multiply-add as 2
    assert info['flops'] == pytest.approx(multiply_adds, rel=0.05)
    assert 'backbone' in info['out_table'] and 'bbox_head' in info['out_table']


@pytest.mark.slow
def test_get_flops_command_line():
    output = assert_ok(run_tool('tools/analysis_tools/get_flops.py', 'retinanet_r18_fpn_shapes',
                                '--shape', '128'))
    assert 'Input shape: (1, 3, 128, 128)' in output
    assert re.search(r'Params: 3\.12\dM \(3122847\)', output)
    with pytest.raises(ValueError, match='--shape'):
        load_tool('get_flops').input_shape([1, 2, 3])


@pytest.mark.slow
def test_plot_curve_and_cal_train_time_on_a_training_log(quickstart_model, tmp_path):
    log = next((quickstart_model['root'] / 'work').glob('*/vis_data/*.json'))
    figure = tmp_path / 'curves.png'
    output = assert_ok(run_tool('tools/analysis_tools/analyze_logs.py', 'plot_curve', log,
                                '--keys', 'loss_cls', 'loss_bbox', 'bbox_mAP', '--title', 'tiny',
                                '--out', figure))
    assert 'metric is bbox_mAP' in output
    pixels = matplotlib.image.imread(str(figure))
    assert pixels.shape[0] > 300 and pixels.std() > 0.01  # drawn, not blank
    output = assert_ok(run_tool('tools/analysis_tools/analyze_logs.py', 'cal_train_time', log))
    assert re.search(r'average iter time: \d+\.\d{4} s/iter', output)


def test_analyze_logs_on_a_hand_made_log(tmp_path):
    analyze_logs = load_tool('analyze_logs')
    log = tmp_path / 'run.json'
    lines = [dict(epoch=1, iter=i, step=i, time=t, loss=1.0 / i)
             for i, t in zip(range(1, 5), [9.0, 1.0, 2.0, 3.0])]
    lines += [dict(epoch=2, iter=i, step=4 + i, time=t, loss=0.1)
              for i, t in zip(range(1, 4), [9.0, 4.0, 6.0])]
    lines.append({'coco/bbox_mAP': 0.5, 'step': 2})
    log.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    parsed = analyze_logs.TrainingLog(str(log))
    assert parsed.series('bbox_mAP') == ([2], [0.5], 'epoch')
    assert parsed.series('loss')[0] == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(KeyError, match="no key 'nope'"):
        parsed.series('nope')

    class Args:
        include_outliers = False
    summary = analyze_logs.cal_train_time([parsed], Args)
    assert summary == pytest.approx(dict(slowest=5.0, fastest=2.0, std=1.5, average=3.5))
    Args.include_outliers = True
    assert analyze_logs.cal_train_time([parsed], Args)['slowest'] == pytest.approx(19 / 3)


@pytest.mark.slow
def test_benchmark_prints_images_per_second(quickstart_model):
    output = assert_ok(run_tool('tools/analysis_tools/benchmark.py', quickstart_model['config'],
                                quickstart_model['checkpoint'], '--max-iter', '6',
                                '--num-warmup', '2', '--log-interval', '2', '--device', 'cpu',
                                '--cfg-options', *quickstart_model['options']))
    assert re.search(r'Done image \[4\s*/6\], fps: \d+\.\d\d img / s', output)
    assert re.search(r'Overall fps \(fp32, run 1\): \d+\.\d\d img / s', output)


def test_theoretical_receptive_fields_of_resnet50_stages():
    receptive_field = load_tool('receptive_field')
    # By hand, with r += (k - 1) * jump and jump *= stride along the main path:
    # conv1 7x7/2 -> 7 (jump 2); max-pool 3x3/2 -> 11 (jump 4); layer1: 3 blocks
    # of one 3x3 -> 11 + 3*2*4 = 35; layer2: 3x3/2, then 3 more 3x3 at jump 8 ->
    # 35 + 8 + 3*16 = 91; layer3: 91 + 16 + 5*32 = 267; layer4: 267 + 32 + 2*64 = 427.
    backbone = ResNet(depth=50, base_channels=4, out_indices=(0, 1, 2, 3))
    fields = receptive_field.theoretical_fields(receptive_field.linearised(backbone),
                                                start_size=512)
    assert [(f.stride, f.size, f.clipped) for f in fields] == [
        (4, 35, False), (8, 91, False), (16, 267, False), (32, 427, False)]
    clipped = receptive_field.theoretical_fields(receptive_field.linearised(backbone),
                                                 start_size=128, max_size=128)
    assert clipped[-1].clipped and clipped[-1].size == 128 and not clipped[0].clipped


@pytest.mark.slow
def test_receptive_field_tool_prints_levels_and_writes_heat_maps(tmp_path):
    output = assert_ok(run_tool('tools/analysis_tools/receptive_field.py',
                                'retinanet_r18_fpn_shapes', '--num-samples', '1',
                                '--out-dir', tmp_path))
    rows = re.findall(r'^P(\d)\s+(\d+)\s+(\d+)\s+(.+)$', output, flags=re.M)
    assert [(level, stride) for level, stride, _, _ in rows] == [('3', '8'), ('4', '16'),
                                                                 ('5', '32')]
    sizes = [int(size) for _, _, size, _ in rows]
    assert sizes == sorted(sizes) and sizes[0] > 8
    assert '24x24' in rows[0][3]  # octave_base_scale 3 x stride 8, ratio 1
    for level in (3, 4, 5):
        heat_map = matplotlib.image.imread(str(tmp_path / f'erf_P{level}.png'))
        assert heat_map.std() > 0.01


@pytest.mark.slow
def test_benchmark_data_tasks_report_images_per_worker_and_workers_needed(quickstart_model):
    options = ['--cfg-options', *quickstart_model['options'], 'train_dataloader.batch_size=8']
    output = assert_ok(run_tool('tools/analysis_tools/benchmark.py', quickstart_model['config'],
                                '--task', 'dataset', '--dataset-type', 'train', '--max-iter', '12',
                                '--num-warmup', '2', '--log-interval', '5', '--step-time', '0.05',
                                *options))
    rate = float(re.search(r'Overall \(train pipeline, one worker, run 1\): (\d+\.\d\d) img / s',
                           output).group(1))
    workers = int(re.search(r'needs 160\.0 img / s: (\d+) workers at', output).group(1))
    # 160 images a second, each worker busy at most 90% of the time.
    assert workers == max(1, math.ceil(160 / (rate * 0.9)))
    output = assert_ok(run_tool('tools/analysis_tools/benchmark.py', quickstart_model['config'],
                                '--dataset-type', 'train', '--num-workers', '0', '--max-iter', '4',
                                '--num-warmup', '1', '--log-interval', '1', *options))
    assert re.search(r'Overall \(train dataloader, 0 workers, run 1\): \d+\.\d\d img / s, '
                     r'\d+\.\d\d img / s per worker', output)
    output = assert_ok(run_tool('tools/analysis_tools/benchmark.py', quickstart_model['config'],
                                '--dataset-type', 'train', '--num-workers', '2', '--max-iter', '6',
                                '--num-warmup', '2', '--log-interval', '2', '--step-time', '0.05',
                                *options))
    rate, per_worker = map(float, re.search(
        r'Overall \(train dataloader, 2 workers, run 1\): (\d+\.\d\d) img / s, (\d+\.\d\d) '
        r'img / s per worker', output).groups())
    assert per_worker == pytest.approx(rate / 2, abs=0.01)
    workers = int(re.search(r'needs 160\.0 img / s: (\d+) workers at', output).group(1))
    assert workers == max(1, math.ceil(160 / (per_worker * 0.9)))
    assert re.search(r'This loader \(2 workers\) (keeps up|does not keep up; add workers)',
                     output)
    # Without a checkpoint an inference benchmark is refused, naming what it needs.
    result = run_tool('tools/analysis_tools/benchmark.py', quickstart_model['config'], '--task',
                      'inference')
    assert result.returncode == 2 and '--task inference needs a checkpoint' in result.stderr
