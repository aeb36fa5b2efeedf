"""DETR, Deformable DETR (plain; box refinement with two-stage), Conditional DETR,
DAB-DETR and DINO give MMDetection 3.3's losses, every auxiliary term included,
and detections.

The reference numbers in tests/data/mmdet_3.3_reference/detr_family.json were
measured by tools/dev/measure_detr.py: detlab's model of MMDetection's own
config (seeded, initialised) loaded strictly into MMDetection's, on two coco128
photos at 320 px with their gt boxes (Conditional and DAB-DETR's weights get
seeded noise, see PERTURBED there); losses after torch.manual_seed(1) in
train mode (dropout and DINO's denoising queries draw from it), detections in
eval mode. The same script's helpers build detlab's side here.
"""
import json

import pytest
import torch

from helpers import REPO_ROOT, load_tool, require_coco128
from detlab.structures import DetDataSample

REFERENCE = json.loads(
    (REPO_ROOT / 'tests/data/mmdet_3.3_reference/detr_family.json').read_text())
LOSS_RTOL = 1e-5
BOX_ATOL = 1e-3  # pixels
SCORE_ATOL = 1e-5


@pytest.fixture(scope='module')
def measure():
    require_coco128()
    return load_tool('tools/dev/measure_detr.py')


# ResNet-50 detectors with 100-900 queries: about a minute each on a shared CPU.
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(REFERENCE))
def test_losses_and_detections_equal_mmdetections(measure, name):
    expected = REFERENCE[name]
    model = measure.build_detlab(name)
    inputs, samples = measure.preprocessed_batch(DetDataSample,
                                                 padded=name not in measure.UNPADDED)
    got = measure.losses_and_detections(model, inputs, samples)
    assert set(got['losses']) == set(expected['losses'])
    for key, value in expected['losses'].items():
        assert got['losses'][key] == pytest.approx(value, rel=LOSS_RTOL), key
    for got_dets, expected_dets in zip(got['detections'], expected['detections']):
        assert got_dets['num'] == expected_dets['num']
        assert got_dets['labels'] == expected_dets['labels']
        assert torch.allclose(torch.tensor(got_dets['bboxes']),
                              torch.tensor(expected_dets['bboxes']), rtol=0, atol=BOX_ATOL)
        assert torch.allclose(torch.tensor(got_dets['scores']),
                              torch.tensor(expected_dets['scores']), rtol=0, atol=SCORE_ATOL)


def test_the_reference_names_every_auxiliary_loss():
    """What MMDetection reports: 6 decoder layers (d0-d4 and the last), the
    two-stage encoder's proposals, DINO's denoising queries per layer."""
    detr = set(REFERENCE['detr']['losses'])
    assert detr == {f'{p}loss_{t}' for p in ['', 'd0.', 'd1.', 'd2.', 'd3.', 'd4.']
                    for t in ('cls', 'bbox', 'iou')}
    assert set(REFERENCE['deformable_detr_refine_twostage']['losses']) == detr | {
        'enc_loss_cls', 'enc_loss_bbox', 'enc_loss_iou'}
    assert set(REFERENCE['conditional_detr']['losses']) == detr
    assert set(REFERENCE['dab_detr']['losses']) == detr
    dn = {k.replace('loss_', 'dn_loss_') for k in detr}
    assert set(REFERENCE['dino']['losses']) == detr | dn | {
        'enc_loss_cls', 'enc_loss_bbox', 'enc_loss_iou'}


def test_dino_quickstart_config_trains_and_predicts():
    """configs/quickstart/dino-4scale_r18_shapes.py: a 128-channel DINO with 3 decoder layers
    builds, its losses cover every layer, the encoder and the denoising queries, and it
    predicts in the original image's pixels."""
    from mmengine.config import Config
    from mmengine.structures import InstanceData

    from detlab.registry import MODELS
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/quickstart/dino-4scale_r18_shapes.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    samples = []
    for boxes, labels in (([[10., 20., 60., 90.], [70., 5., 90., 40.]], [0, 2]),
                          ([[30., 30., 80., 80.]], [1])):
        sample = DetDataSample(metainfo=dict(img_shape=(96, 96), batch_input_shape=(96, 96),
                                             ori_shape=(48, 48), scale_factor=(2., 2.)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes),
                                           labels=torch.tensor(labels))
        samples.append(sample)
    inputs = torch.randn(2, 3, 96, 96)
    model.train()
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'd1.loss_iou', 'enc_loss_bbox', 'dn_loss_cls', 'd0.dn_loss_bbox'} <= \
        set(losses) and 'd2.loss_cls' not in losses
    sum(losses.values()).backward()
    assert model.dn_query_generator.label_embedding.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    pred = results[0].pred_instances
    assert len(pred) == cfg.model.test_cfg.max_per_img and pred.bboxes.max() <= 48 + 1e-4
    assert ((pred.labels >= 0) & (pred.labels < 3)).all()
