"""FasterRCNN and RPN detectors: forward modes, MMDetection's numbers and state_dict keys."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from tiny_faster_rcnn import inputs_and_samples, tiny_config

# MMDetection 3.3 on the same model and inputs: the state_dict of
# MODELS.build(tiny_config()) after torch.manual_seed(0) and init_weights(), loaded
# strictly into mmdet's FasterRCNN; torch.manual_seed(1) before loss() (both draw the
# RandomSampler's permutations from the global generator). Measured with
# /work/ref's mmdet harness.
MMDET_LOSSES = {'loss_rpn_cls': 0.691571831703186, 'loss_rpn_bbox': 0.007299082353711128,
                'loss_cls': 1.4117112159729004, 'acc': 2.310654640197754,
                'loss_bbox': 0.13913410902023315}
MMDET_NUM_DETS = (100, 100)
MMDET_TOP3_BOXES = [[11.826276779174805, 14.066986083984375, 27.868852615356445, 29.96326446533203],
                    [16.657028198242188, 16.335636138916016, 39.26628112792969, 27.648635864257812],
                    [20.320558547973633, 8.672823905944824, 31.59883689880371, 31.276958465576172]]
MMDET_TOP3_SCORES = [0.28677448630332947, 0.281125009059906, 0.2804277241230011]
MMDET_TOP3_LABELS = [2, 2, 2]


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    detector = MODELS.build(tiny_config())
    detector.init_weights()
    return detector


def test_losses_and_detections_equal_mmdetections(model):
    inputs, samples = inputs_and_samples()
    model.train()
    torch.manual_seed(1)
    losses = model.loss(inputs, samples)
    assert set(losses) == set(MMDET_LOSSES)
    # The RPN's losses come per level, as MMDetection's; what is logged (and
    # compared here) is their sum, as mmengine's parse_losses makes it.
    assert len(losses['loss_rpn_cls']) == len(losses['loss_rpn_bbox']) == 5
    total, log_vars = model.parse_losses(losses)
    assert set(log_vars) == {'loss', *MMDET_LOSSES}
    for key, value in MMDET_LOSSES.items():
        assert log_vars[key].item() == pytest.approx(value, rel=1e-5, abs=1e-7), key
    expected_total = sum(value for key, value in MMDET_LOSSES.items() if 'loss' in key)
    assert total.item() == pytest.approx(expected_total, rel=1e-5)
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert tuple(len(r.pred_instances) for r in results) == MMDET_NUM_DETS
    pred = results[0].pred_instances
    assert torch.allclose(pred.bboxes[:3], torch.tensor(MMDET_TOP3_BOXES), atol=1e-4)
    assert torch.allclose(pred.scores[:3], torch.tensor(MMDET_TOP3_SCORES), atol=1e-6)
    assert pred.labels[:3].tolist() == MMDET_TOP3_LABELS


def test_loss_leaves_the_samples_unchanged_and_backpropagates(model):
    inputs, samples = inputs_and_samples()
    model.train()
    losses = model.loss(inputs, samples)
    assert samples[0].gt_instances.labels.tolist() == [1, 2]  # RPN saw zeros, on copies
    model.parse_losses(losses)[0].backward()
    assert model.rpn_head.rpn_conv.weight.grad is not None
    assert model.roi_head.bbox_head.shared_fcs[0].weight.grad is not None
    assert model.backbone.conv1.weight.grad is not None
    model.zero_grad()


def test_tensor_mode_and_given_proposals(model):
    inputs, samples = inputs_and_samples()
    model.eval()
    with torch.no_grad():
        (cls_score, bbox_pred), = model(inputs, samples, mode='tensor')
        assert cls_score.shape[1] == 4 and bbox_pred.shape[1] == 12
        for sample in samples:
            sample.proposals = InstanceData(bboxes=torch.tensor([[4., 4., 40., 40.]]))
        results = model(inputs, samples, mode='predict')
    # One proposal per image: at most one detection per class.
    assert all(len(r.pred_instances) <= 3 for r in results)
    no_rpn = MODELS.build(dict(tiny_config(), rpn_head=None))
    with pytest.raises(ValueError, match='proposals'):
        no_rpn.loss(inputs, inputs_and_samples()[1])


def test_rpn_num_classes_is_forced_to_one_with_a_warning():
    cfg = tiny_config()
    cfg['rpn_head']['num_classes'] = 3
    with pytest.warns(UserWarning, match='rpn_head.num_classes should be 1'):
        detector = MODELS.build(cfg)
    assert detector.rpn_head.num_classes == 1
    assert cfg['rpn_head']['num_classes'] == 3  # the config is not modified


def test_rpn_detector_trains_predicts_and_its_weights_load_into_faster_rcnn(model):
    cfg = tiny_config()
    rpn = MODELS.build(dict(type='RPN', backbone=cfg['backbone'], neck=cfg['neck'],
                            rpn_head=cfg['rpn_head'], train_cfg=cfg['train_cfg'],
                            test_cfg=cfg['test_cfg']))
    inputs, samples = inputs_and_samples()
    losses = rpn.loss(inputs, samples)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    rpn.eval()
    with torch.no_grad():
        results = rpn.predict(inputs, samples)
    proposals = results[0].pred_instances
    assert len(proposals) > 0 and (proposals.labels == 0).all()
    assert proposals.bboxes[:, 2].max() <= 48 + 1e-4  # rescaled to the 48x32 original
    # An RPN checkpoint (bbox_head.*) initialises a Faster R-CNN's rpn_head, as in MMDetection.
    two_stage = MODELS.build(tiny_config())
    missing, unexpected = two_stage.load_state_dict(rpn.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('roi_head') for k in missing)
    assert torch.equal(two_stage.rpn_head.rpn_cls.weight, rpn.bbox_head.rpn_cls.weight)


def test_empty_proposals_give_empty_detections(model):
    inputs, samples = inputs_and_samples()
    for sample in samples:
        sample.proposals = InstanceData(bboxes=torch.zeros(0, 4))
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, copy.deepcopy(samples))
    assert all(len(r.pred_instances) == 0 for r in results)
    assert results[0].pred_instances.bboxes.shape == (0, 4)
