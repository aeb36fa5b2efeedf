"""PackDetInputs, and whole pipelines that must keep boxes on the pixels they mark."""
import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose

from detlab.datasets.transforms import PackDetInputs, Resize
from detlab.structures import DetDataSample

BRIGHT = 255
#: A box may differ from the bright region by this much after bilinear resizing.
EDGE_TOLERANCE = 1.0


def test_pack_splits_ignored_boxes_and_copies_meta():
    results = dict(
        img=np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
        gt_bboxes=np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 1, 2, 2]], np.float32),
        gt_bboxes_labels=np.array([0, 1, 2], np.int64),
        gt_ignore_flags=np.array([False, True, False]),
        img_id=7, img_shape=(2, 3), unrelated='dropped')
    packed = PackDetInputs()(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert isinstance(sample, DetDataSample)
    assert inputs.shape == (3, 2, 3) and inputs.dtype == torch.uint8
    assert torch.equal(inputs, torch.from_numpy(results['img']).permute(2, 0, 1))
    # a view of the image's buffer: no copy in the loader workers
    assert inputs.data_ptr() == results['img'].ctypes.data and inputs.stride() == (1, 9, 3)
    assert sample.gt_instances.bboxes.tolist() == [[0, 0, 1, 1], [0, 1, 2, 2]]
    assert sample.gt_instances.labels.dtype == torch.int64
    assert sample.gt_instances.labels.tolist() == [0, 2]
    assert sample.ignored_instances.bboxes.tolist() == [[1, 1, 2, 2]]
    assert sample.ignored_instances.labels.tolist() == [1]
    assert sample.img_id == 7 and sample.img_shape == (2, 3)
    assert 'unrelated' not in sample.metainfo


def test_pack_non_contiguous_image_and_no_annotations():
    img = np.ascontiguousarray(np.random.default_rng(0).integers(0, 255, (3, 5, 4), np.uint8))
    flipped = img[:, ::-1]  # a view with negative strides
    packed = PackDetInputs(meta_keys=())(dict(img=flipped))
    assert packed['inputs'].is_contiguous()
    assert torch.equal(packed['inputs'], torch.from_numpy(flipped.copy()).permute(2, 0, 1))
    assert len(packed['data_samples'].gt_instances) == 0
    assert packed['data_samples'].metainfo == {}


def write_image_with_rectangle(path, height, width, box):
    """Black image with one filled white rectangle; box = (x1, y1, x2, y2) pixel edges."""
    img = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = BRIGHT
    cv2.imwrite(str(path), img)


def bright_region(inputs):
    """Tight (x1, y1, x2, y2) pixel-edge box of clearly bright pixels of a (3, H, W) tensor."""
    ys, xs = torch.nonzero(inputs[0] > BRIGHT // 2, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(100, 60), keep_ratio=True),
    dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    dict(type='PackDetInputs'),
]


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_pipeline_box_still_encloses_the_bright_pixels(tmp_path, direction):
    box = (12, 8, 30, 20)
    write_image_with_rectangle(tmp_path / 'img.png', 40, 50, box)
    pipeline_cfg = [dict(step) for step in PIPELINE]
    pipeline_cfg[3]['direction'] = direction
    pipeline = Compose(pipeline_cfg)
    assert isinstance(pipeline.transforms[2], Resize)  # detlab's, through the default scope
    packed = pipeline(dict(
        img_path=str(tmp_path / 'img.png'), img_id=1,
        instances=[dict(bbox=list(map(float, box)), bbox_label=0, ignore_flag=0)]))
    sample = packed['data_samples']
    assert sample.flip and sample.flip_direction == direction
    assert sample.scale_factor == (1.5, 1.5) and sample.img_shape == (60, 75)
    assert sample.ori_shape == (40, 50)
    packed_box = sample.gt_instances.bboxes[0].tolist()
    assert np.allclose(packed_box, bright_region(packed['inputs']), atol=EDGE_TOLERANCE)


def test_pipeline_with_empty_gt(tmp_path):
    write_image_with_rectangle(tmp_path / 'img.png', 40, 50, (0, 0, 1, 1))
    packed = Compose(PIPELINE)(dict(img_path=str(tmp_path / 'img.png'), img_id=2, instances=[]))
    sample = packed['data_samples']
    assert sample.gt_instances.bboxes.shape == (0, 4)
    assert sample.gt_instances.labels.shape == (0,)
    assert sample.ignored_instances.bboxes.shape == (0, 4)
    assert packed['inputs'].shape == (3, 60, 75)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.float32, np.int64, bool])
@pytest.mark.parametrize('channels', [None, 1, 3, 4, 6])
def test_pack_image_layouts_and_dtypes(dtype, channels):
    shape = (5, 7) if channels is None else (5, 7, channels)
    img = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    packed = PackDetInputs(meta_keys=())(dict(img=img))['inputs']
    expected = img[None] if channels is None else img.transpose(2, 0, 1)
    assert packed.shape == expected.shape and np.array_equal(packed.numpy(), expected)
    read_only = img.copy()
    read_only.flags.writeable = False  # torch cannot share it: copied
    packed = PackDetInputs(meta_keys=())(dict(img=read_only))['inputs']
    assert packed.is_contiguous() and np.array_equal(packed.numpy(), expected)


def test_packed_views_batch_exactly_as_contiguous_images():
    """The data preprocessor turns the (C, H, W) views into the same contiguous batch as
    MMDetection's contiguous copies, so models see identical inputs."""
    from detlab.registry import MODELS
    preprocessor = MODELS.build(dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=32))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (37, 50, 3), np.uint8), rng.integers(0, 255, (40, 29, 3),
                                                                        np.uint8)]
    views = [PackDetInputs()(dict(img=img))['inputs'] for img in images]
    copies = [torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))) for img in images]
    assert not views[0].is_contiguous()
    batches = [preprocessor(dict(inputs=inputs, data_samples=None), True)['inputs']
               for inputs in (views, copies)]
    assert batches[0].is_contiguous() and torch.equal(batches[0], batches[1])
