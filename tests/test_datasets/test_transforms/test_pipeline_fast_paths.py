"""The train pipeline's cheaper paths give exactly what the paths they replace gave.

Header sizes equal Pillow's, flip directions equal mmcv's ``np.random.choice``
draw from the same seed, numpy box arithmetic equals torch's, immutable
metainfo set without ``deepcopy`` equals mmengine's ``set_metainfo``, and the
whole COCO train pipeline on coco128 photos gives the same pixels, boxes and
metainfo as with the torch box path, and mmcv's own pixels and boxes.
"""
import types

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmcv.transforms import RandomFlip as MMCV_RandomFlip
from mmengine.config import Config

from detlab.datasets import CocoDataset
from detlab.datasets.transforms import RandomFlip, formatting, image_size
from detlab.datasets.transforms.formatting import set_metainfo
from detlab.datasets.transforms.image_size import declared_size, pillow_declared_size
from detlab.structures import DetDataSample
from detlab.structures.bbox import HorizontalBoxes, bbox_flip
from detlab.structures.bbox import horizontal_boxes
from detlab.utils import register_all_modules
from helpers import REPO_ROOT

BASE_CONFIG = str(REPO_ROOT / 'configs/_base_/datasets/coco_detection.py')


def encoded(ext, img, params=()):
    ok, data = cv2.imencode(ext, img, list(params))
    assert ok
    return data.tobytes()


def test_header_sizes_equal_pillows_on_coco128(coco128):
    paths = sorted((coco128 / 'images' / 'train2017').glob('*.jpg'))
    assert len(paths) == 128
    for path in paths:
        data = path.read_bytes()
        assert declared_size(data) == pillow_declared_size(data) is not None, path


@pytest.mark.parametrize('ext, shape, params', [
    ('.jpg', (31, 47, 3), ()),
    ('.jpg', (31, 47), ()),  # grey
    ('.jpg', (64, 33, 3), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    ('.jpg', (17, 90, 3), (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)),
    ('.png', (31, 47, 4), ()),
    ('.png', (5, 300), ()),
    ('.bmp', (12, 8, 3), ()),  # not JPEG or PNG: Pillow reads it
])
def test_header_sizes_equal_pillows_on_encoded_images(ext, shape, params):
    data = encoded(ext, np.full(shape, 90, np.uint8), params)
    assert declared_size(data) == pillow_declared_size(data) == (shape[1], shape[0])


def test_jpeg_with_app_segments_and_fill_bytes_before_the_frame():
    data = encoded('.jpg', np.zeros((21, 13, 3), np.uint8))
    comment = b'\xff\xfe' + (2 + 500).to_bytes(2, 'big') + b'x' * 500  # COM segment
    padded = data[:2] + comment + b'\xff\xff\xff' + data[2:]
    assert declared_size(padded) == pillow_declared_size(padded) == (13, 21)


def test_odd_headers_go_to_pillow():
    data = encoded('.jpg', np.zeros((21, 13, 3), np.uint8))
    cut = data[:20]  # ends before the frame header
    assert declared_size(cut) == pillow_declared_size(cut)
    png = encoded('.png', np.zeros((4, 6), np.uint8))
    assert declared_size(png[:20]) == pillow_declared_size(png[:20])
    assert declared_size(b'\xff\xd8\xff' + b'\x00' * 40) is None


FLIP_CASES = [
    (0.5, 'horizontal'), (1.0, 'vertical'), (0.0, 'horizontal'),
    (0.3, ['horizontal', 'vertical', 'diagonal']),
    ([0.2, 0.3, 0.1], ['horizontal', 'vertical', 'diagonal']),
    ([0.25, 0.25], ['vertical', 'horizontal']),
]


@pytest.mark.parametrize('prob, direction', FLIP_CASES)
def test_flip_directions_equal_mmcvs_draws_and_leave_the_same_generator(prob, direction):
    reference, ours = MMCV_RandomFlip(prob=prob, direction=direction), RandomFlip(
        prob=prob, direction=direction)
    states, draws = [], []
    for flip in (reference, ours):
        np.random.seed(11)
        draws.append([flip._choose_direction() for _ in range(2000)])
        states.append(np.random.get_state())
    assert draws[0] == draws[1]
    assert [type(d) for d in draws[0]] == [type(d) for d in draws[1]]
    assert np.array_equal(states[0][1], states[1][1]) and states[0][2] == states[1][2]


def test_flip_follows_a_changed_prob_and_refuses_negative_probabilities():
    flip = RandomFlip(prob=0.0)
    assert {flip._choose_direction() for _ in range(50)} == {None}
    flip.prob = 1.0
    assert {flip._choose_direction() for _ in range(50)} == {'horizontal'}
    with pytest.raises(ValueError, match='each probability at least 0'):
        RandomFlip(prob=[-0.1, 0.5], direction=['horizontal', 'vertical'])


def random_boxes(count=50, dtype=torch.float32):
    rng = np.random.default_rng(5)
    xy = rng.uniform(-80, 900, (count, 2))
    wh = rng.uniform(0, 400, (count, 2))
    boxes = torch.from_numpy(np.concatenate([xy, xy + wh], axis=1)).to(dtype)
    boxes[3, 1] = float('nan')
    return boxes


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('count', [0, 1, 50])
def test_numpy_box_ops_equal_torchs(dtype, count):
    tensor = random_boxes(dtype=dtype)[:count]
    scale_factor, img_shape = (1.6661, 0.7498), (600, 803)
    boxes = HorizontalBoxes(tensor.clone())
    boxes.rescale_(scale_factor)
    expected = tensor * tensor.new_tensor(scale_factor).repeat(2)
    assert boxes.tensor.dtype == dtype
    torch.testing.assert_close(boxes.tensor, expected, rtol=0, atol=0, equal_nan=True)
    boxes.clip_(img_shape)
    expected[:, 0::2] = expected[:, 0::2].clamp(0, img_shape[1])
    expected[:, 1::2] = expected[:, 1::2].clamp(0, img_shape[0])
    torch.testing.assert_close(boxes.tensor, expected, rtol=0, atol=0, equal_nan=True)
    for direction in ('horizontal', 'vertical', 'diagonal'):
        storage = boxes.tensor
        boxes.flip_(img_shape, direction)
        expected = bbox_flip(expected, img_shape, direction)
        assert boxes.tensor is storage  # flipped in place, as before
        torch.testing.assert_close(boxes.tensor, expected, rtol=0, atol=0, equal_nan=True)


def test_numpy_box_ops_keep_autograds_inplace_check_and_torch_for_grad():
    gt = random_boxes(4)
    pred = torch.rand(4, 4, requires_grad=True)
    loss = (pred * gt).sum()  # saves gt for backward
    HorizontalBoxes(gt, clone=False).clip_((100, 100))
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        loss.backward()
    assert horizontal_boxes.host_array(pred) is None
    with torch.inference_mode():
        frozen = HorizontalBoxes(random_boxes(5))
        frozen.clip_((100, 100))  # inside inference mode torch allows it
    with pytest.raises(RuntimeError, match='Inplace update to inference tensor'):
        frozen.flip_((100, 100))  # outside it torch refuses, as before
    moving = HorizontalBoxes(pred * 1.0)
    moving.rescale_((2.0, 3.0))
    assert moving.tensor.requires_grad


def test_immutable_metainfo_is_set_as_mmengine_sets_it():
    meta = dict(img_id=3, img_path='a.jpg', ori_shape=(480, 640), scale_factor=(1.5, 1.5),
                flip=False, flip_direction=None, nested=((1, 2), 'x'),
                matrix=np.eye(3), records=[dict(index=1)])
    ours, reference = DetDataSample(), DetDataSample()
    set_metainfo(ours, meta)
    reference.set_metainfo(meta)
    assert ours.metainfo_keys() == reference.metainfo_keys()
    for key in meta:
        assert np.array_equal(ours.metainfo[key], reference.metainfo[key]) if key == 'matrix' \
            else ours.metainfo[key] == reference.metainfo[key]
    assert ours.matrix is not meta['matrix'] and ours.records is not meta['records']
    meta['records'][0]['index'] = 2
    assert ours.records == [dict(index=1)]
    with pytest.raises(AttributeError, match='already a data field'):
        sample = DetDataSample()
        sample.set_field(1, 'img_id')
        set_metainfo(sample, dict(img_id=2))


def run_pipeline(dataset, indices, seed=0):
    np.random.seed(seed)
    return [dataset[index] for index in indices]


def test_coco_train_pipeline_equals_the_replaced_paths_and_mmcvs_pixels(coco128, monkeypatch):
    """Same seed, same samples: with Pillow's header sizes, mmcv's direction draw, torch's
    box arithmetic and mmengine's deep-copying set_metainfo, nothing differs."""
    register_all_modules()
    pipeline = Config.fromfile(BASE_CONFIG).train_pipeline
    dataset = CocoDataset(data_root=str(coco128), ann_file='annotations/instances_train2017.json',
                          data_prefix=dict(img='images/train2017/'),
                          filter_cfg=dict(filter_empty_gt=True), pipeline=pipeline)
    indices = list(range(8))
    fast = run_pipeline(dataset, indices)
    with monkeypatch.context() as patch:
        patch.setattr(horizontal_boxes, 'host_array', lambda tensor: None)
        patch.setattr(image_size, 'declared_size', pillow_declared_size)
        flip = dataset.pipeline.transforms[3]
        assert isinstance(flip, RandomFlip)
        patch.setattr(flip, '_choose_direction', types.MethodType(
            MMCV_RandomFlip.__dict__['_choose_direction'].func, flip))
        patch.setattr(formatting, 'set_metainfo', lambda element, meta:
                      element.set_metainfo(meta))
        torch_path = run_pipeline(dataset, indices)
    assert {sample['data_samples'].flip for sample in fast} == {True, False}
    for index, ours, before in zip(indices, fast, torch_path):
        assert torch.equal(ours['inputs'], before['inputs'])
        sample, reference = ours['data_samples'], before['data_samples']
        assert sample.metainfo == reference.metainfo
        assert torch.equal(sample.gt_instances.bboxes, reference.gt_instances.bboxes)
        assert torch.equal(sample.gt_instances.labels, reference.gt_instances.labels)
        # mmcv's own steps: imrescale, imflip, boxes scaled in float64 and clipped
        info = dataset.get_data_info(index)
        img, scale = mmcv.imrescale(mmcv.imread(info['img_path']), (1333, 800),
                                    return_scale=True)
        height, width = img.shape[:2]
        boxes = np.array([inst['bbox'] for inst in info['instances']], np.float32)
        boxes = (boxes * np.tile(sample.scale_factor, 2)).clip(0, [width, height] * 2)
        if sample.flip:
            img = mmcv.imflip(img, sample.flip_direction)
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        assert np.array_equal(ours['inputs'].permute(1, 2, 0).numpy(), img)
        np.testing.assert_allclose(sample.gt_instances.bboxes.numpy(), boxes, atol=1e-3)
        assert sample.img_shape == (height, width)
        assert sample.ori_shape == (info['height'], info['width'])


class PackedImages(torch.utils.data.Dataset):
    """Packed (C, H, W) views of fixed random images, as a loader worker makes them."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return formatting.PackDetInputs()(dict(img=self.images[index].copy()))


@pytest.mark.slow
def test_views_from_worker_processes_batch_and_draw_as_contiguous_copies():
    """Through pseudo_collate in a worker process (shared memory keeps the strides), the
    preprocessor's batch and the (H, W, C) image browse_dataset draws are those of
    contiguous (C, H, W) copies."""
    from mmengine.dataset import pseudo_collate

    from detlab.registry import MODELS
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, shape, np.uint8) for shape in ((37, 50, 3), (40, 29, 3))]
    loader = torch.utils.data.DataLoader(PackedImages(images), batch_size=2, num_workers=1,
                                         collate_fn=pseudo_collate)
    batch = next(iter(loader))
    copies = [torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))) for img in images]
    assert not batch['inputs'][0].is_contiguous()
    for view, copy, img in zip(batch['inputs'], copies, images):
        assert torch.equal(view, copy)
        assert np.array_equal(view.permute(1, 2, 0).float().clamp(0, 255).byte().numpy(), img)
    preprocessor = MODELS.build(dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=32))
    samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2])) for img in images]
    ours = preprocessor(dict(inputs=batch['inputs'], data_samples=samples), True)['inputs']
    reference = preprocessor(dict(inputs=copies, data_samples=[s.clone() for s in samples]),
                             True)['inputs']
    assert ours.shape == (2, 3, 64, 64) and torch.equal(ours, reference)


def test_local_files_are_read_as_mmengines_local_backend_reads_them(tmp_path):
    from mmengine import fileio

    from detlab.datasets.transforms.loading import read_bytes
    path = tmp_path / 'x.jpg'
    path.write_bytes(encoded('.jpg', np.full((9, 7, 3), 30, np.uint8)))
    assert read_bytes(path, None) == read_bytes(str(path), dict(backend='local')) == \
        fileio.get(str(path))
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / 'missing.jpg', None)
    with pytest.raises(FileNotFoundError):
        read_bytes(str(tmp_path / 'missing.jpg'), dict(backend='local'))


@pytest.mark.parametrize('direction', [None, 'horizontal', 'vertical', 'diagonal'])
def test_flip_homography_maps_corners_as_the_flip_moves_them(direction):
    from detlab.datasets.transforms.transforms import flip_homography
    height, width = 600, 801
    matrix = flip_homography(direction, height, width)
    assert matrix.dtype == np.float32
    corner = matrix @ np.array([10.0, 20.0, 1.0])
    x = width - 10.0 if direction in ('horizontal', 'diagonal') else 10.0
    y = height - 20.0 if direction in ('vertical', 'diagonal') else 20.0
    assert np.array_equal(corner, [x, y, 1.0])
