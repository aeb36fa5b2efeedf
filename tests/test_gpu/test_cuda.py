"""Every detector family on a CUDA GPU: train steps, mixed precision, channels_last, the tools,
DetInferencer, a 1-process NCCL run with SyncBatchNorm, and CPU-vs-GPU agreement.

Skipped, with the reason, on machines without CUDA. CPU and GPU results are compared with
TF32 off and with tolerances made for that comparison (the same arithmetic in another order):
losses within a relative 1e-3, boxes within 0.05 px, scores within 1e-3.
"""
import copy
import math

import pytest
import torch
from mmengine.config import Config

from detlab.registry import MODELS
from detlab.utils import register_all_modules
from helpers import QUICKSTART, REPO_ROOT, assert_ok, free_port, logged_losses, run_tool, \
    tiny_run_options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU; this machine has none')

FAMILIES = {
    'retinanet': 'configs/quickstart/retinanet_r18_fpn_shapes.py',
    'fcos': 'configs/quickstart/fcos_r18_fpn_shapes.py',
    'atss': 'configs/quickstart/atss_r18_fpn_shapes.py',
    'faster-rcnn': 'configs/quickstart/faster-rcnn_r18_fpn_shapes.py',
}
LOSS_RTOL, BOX_ATOL, SCORE_ATOL = 1e-3, 0.05, 1e-3


def build(config: str):
    register_all_modules()
    cfg = Config.fromfile(str(REPO_ROOT / config))
    cfg.model.backbone.init_cfg = None
    # Keep every box: a model at its initial weights scores near the prior, below the cut.
    test_cfg = cfg.model.test_cfg.get('rcnn', cfg.model.test_cfg)
    test_cfg.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(device: str):
    """Two 128x160 images with boxes of the three shape classes, as the loader gives them."""
    from mmengine.structures import InstanceData

    from detlab.structures import DetDataSample
    generator = torch.Generator().manual_seed(0)
    images = [(torch.rand(3, 128, 160, generator=generator) * 255) for _ in range(2)]
    boxes = [[[10., 12., 60., 70.], [80., 30., 150., 110.]], [[20., 20., 100., 90.]]]
    labels = [[0, 2], [1]]
    samples = []
    for b, l in zip(boxes, labels):
        sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                             scale_factor=(1.0, 1.0), flip=False))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(b), labels=torch.tensor(l))
        samples.append(sample)
    return dict(inputs=images, data_samples=samples)


def losses_and_detections(model, device: str, channels_last: bool = False):
    model = copy.deepcopy(model).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    data = model.data_preprocessor(batch(device), training=True)
    torch.manual_seed(1)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(g.device.type == torch.device(device).type for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch(device), training=False), mode='predict')
    values = {key: float(sum(v) if isinstance(v, list) else v) for key, v in losses.items()
              if 'loss' in key}
    return values, [r.pred_instances.cpu() for r in results]


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_train_step_and_detections_on_cuda_agree_with_the_cpu(family):
    model = build(FAMILIES[family])
    cpu_losses, cpu_dets = losses_and_detections(model, 'cpu')
    gpu_losses, gpu_dets = losses_and_detections(model, 'cuda')
    assert set(cpu_losses) == set(gpu_losses)
    for key, value in cpu_losses.items():
        assert math.isfinite(gpu_losses[key])
        assert gpu_losses[key] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-6), key
    for cpu, gpu in zip(cpu_dets, gpu_dets):
        assert_same_detections(gpu, cpu)


def assert_same_detections(gpu, cpu) -> None:
    """Every GPU detection has a CPU one of its label within the tolerances, and the other way
    round (near-equal scores may come out in another order on the two devices)."""
    assert len(gpu) == len(cpu)
    for a, b in ((gpu, cpu), (cpu, gpu)):
        close = ((a.bboxes[:, None] - b.bboxes[None]).abs().amax(-1) <= BOX_ATOL) & \
            ((a.scores[:, None] - b.scores[None]).abs() <= SCORE_ATOL) & \
            (a.labels[:, None] == b.labels[None])
        assert close.any(1).all(), f'{int((~close.any(1)).sum())} of {len(a)} detections unmatched'


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_channels_last_gives_the_same_losses_on_cuda(family):
    model = build(FAMILIES[family])
    plain, _ = losses_and_detections(model, 'cuda')
    nhwc, _ = losses_and_detections(model, 'cuda', channels_last=True)
    for key, value in plain.items():
        assert nhwc[key] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-6), key


@pytest.mark.slow
@pytest.mark.parametrize('amp', [None, 'fp16', 'bf16'])
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_train_tool_on_cuda(family, amp, tmp_path):
    work_dir = tmp_path / 'work'
    args = [FAMILIES[family], '--work-dir', work_dir]
    if amp:
        args += ['--amp', amp]
    output = assert_ok(run_tool('tools/train.py', *args, '--cfg-options',
                                *tiny_run_options(tmp_path / 'shapes', max_iters=4)))
    assert 'coco/bbox_mAP' in output
    records = logged_losses(work_dir)
    assert [r['iter'] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(r['loss']) for r in records)
    from detlab.utils.checkpoint import load_checkpoint_file
    checkpoint = load_checkpoint_file(str(work_dir / 'iter_4.pth'))
    assert ('loss_scaler' in checkpoint) == (amp == 'fp16')


@pytest.mark.slow
def test_det_inferencer_on_cuda_equals_the_cpu(tmp_path):
    from detlab.apis import DetInferencer
    data_root = tmp_path / 'shapes'
    work_dir = tmp_path / 'work'
    assert_ok(run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir, '--cfg-options',
                       *tiny_run_options(data_root, max_iters=2)))
    images = sorted(str(p) for p in (data_root / 'val').iterdir())[:3]
    results = {}
    for device in ('cpu', 'cuda:0'):
        inferencer = DetInferencer(QUICKSTART, str(work_dir / 'iter_2.pth'), device=device)
        assert next(inferencer.model.parameters()).device.type == device.split(':')[0]
        results[device] = inferencer(images, return_datasamples=True)['predictions']
    for cpu, gpu in zip(results['cpu'], results['cuda:0']):
        assert_same_detections(gpu.pred_instances.cpu(), cpu.pred_instances)


@pytest.mark.slow
def test_one_process_nccl_run_with_sync_bn(tmp_path):
    work_dir = tmp_path / 'work'
    output = assert_ok(run_tool(
        '-m', 'torch.distributed.run', '--nproc_per_node', '1', '--master_port', free_port(),
        'tools/train.py', QUICKSTART, '--launcher', 'pytorch', '--work-dir', work_dir,
        '--cfg-options', *tiny_run_options(tmp_path / 'shapes', max_iters=2),
        "sync_bn='torch'", 'model.backbone.norm_cfg.type=BN'))
    assert 'nccl' in output.lower() or (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'iter_2.pth').is_file()
