"""detlab.testing draws MMDetection 3.3's demo batches (values measured by
tools/dev/mmdet_random_results.py)."""
import pytest
import torch

from detlab.structures.bbox import HorizontalBoxes
from detlab.testing import demo_mm_inputs, demo_mm_proposals, demo_mm_sampling_results


def test_demo_mm_inputs_matches_mmdetection():
    data = demo_mm_inputs(batch_size=1, image_shapes=[(3, 20, 30)], num_items=[2],
                          with_mask=True)
    image, sample = data['inputs'][0], data['data_samples'][0]
    assert image.shape == (3, 20, 30) and image.dtype == torch.uint8
    assert image[:, 0, 0].tolist() == [172, 54, 66]
    assert sample.img_shape == (20, 30) and sample.img_id == 0
    assert torch.allclose(sample.gt_instances.bboxes, torch.tensor(
        [[6.414089202880859, 0.0, 30.0, 11.618711471557617],
         [0.0, 4.009612560272217, 15.391260147094727, 4.522866725921631]]))
    assert sample.gt_instances.labels.tolist() == [4, 8]
    assert sample.gt_instances.masks.masks.sum(axis=(1, 2)).tolist() == [176, 0]
    assert torch.allclose(sample.ignored_instances.bboxes, torch.tensor(
        [[9.58046817779541, 0.9579120874404907, 20.771514892578125, 11.457321166992188],
         [8.655468940734863, 0.0, 30.0, 15.2933349609375]]))


def test_demo_mm_inputs_options():
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 16, 24), use_box_type=True,
                          with_semantic=True, sem_seg_output_strides=4, texts=['a', 'b'])
    assert len(data['inputs']) == 2
    for sample, text in zip(data['data_samples'], 'ab'):
        assert isinstance(sample.gt_instances.bboxes, HorizontalBoxes)
        assert sample.gt_sem_seg.sem_seg.shape == (1, 4, 6) and sample.text == text
    with pytest.raises(AssertionError, match='image_shapes'):
        demo_mm_inputs(batch_size=3, image_shapes=[(3, 8, 8)] * 2)


def test_demo_mm_proposals_matches_mmdetection():
    proposals = demo_mm_proposals([(3, 20, 30)], 2)[0]
    assert torch.allclose(proposals.bboxes, torch.tensor(
        [[4.948636531829834, 13.28243350982666, 17.003904342651367, 29.628929138183594],
         [4.09722375869751, 6.000228404998779, 12.848968505859375, 30.0]]))
    assert torch.allclose(proposals.scores, torch.tensor([0.9636627435684204,
                                                          0.3834415078163147]))
    assert proposals.labels.tolist() == [0, 0]


def test_demo_mm_sampling_results_assigns_and_samples_each_image():
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64), num_items=[3, 0])
    proposals = demo_mm_proposals([(3, 64, 64)] * 2, 20)
    gts = [sample.gt_instances for sample in data['data_samples']]
    results = demo_mm_sampling_results(proposals, gts)
    assert [r.num_gts for r in results] == [3, 0]
    # The gts join the proposals as positives; an image without gts has none.
    assert results[0].pos_inds.numel() >= 3 and results[0].pos_is_gt[:3].tolist() == [1, 1, 1]
    assert results[1].pos_inds.numel() == 0 and results[1].neg_inds.numel() == 20
    assert 'priors' in proposals[0] and 'bboxes' not in proposals[0]


def test_get_detector_and_roi_head_cfg_read_detlabs_configs():
    from detlab.registry import MODELS
    from detlab.testing import get_detector_cfg, get_roi_head_cfg
    model = get_detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert model.type == 'FasterRCNN'
    model.backbone.depth = 18  # a copy: the next call reads the file again
    assert get_detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py').backbone.depth == 50
    roi_head = get_roi_head_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert roi_head.train_cfg.sampler.type == 'RandomSampler'
    assert roi_head.test_cfg.max_per_img == 100
    assert MODELS.build(roi_head).with_bbox
    with pytest.raises(FileNotFoundError, match='no config'):
        get_detector_cfg('no/such_config.py')
