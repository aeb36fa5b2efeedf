"""The built-in shapes data: generator, writer, ShapesDataset and CLI."""
import json
import threading

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

from detlab.datasets.shapes import (SHAPE_CLASSES, ShapesParams, generate_shapes,
                                    render_shapes_image, shapes_ann_file)
from detlab.datasets.shapes import generator as shapes_generator
from detlab.datasets.shapes.__main__ import main as shapes_cli
from detlab.registry import DATASETS

NUM_RANGE_IMAGES = 60


def load_json(path):
    with open(path) as f:
        return json.load(f)


def test_same_seed_same_pixels_and_boxes(tmp_path):
    ann_a = generate_shapes(str(tmp_path / 'a'), 'train', 6, seed=3)
    ann_b = generate_shapes(str(tmp_path / 'b'), 'train', 6, seed=3)
    assert load_json(ann_a) == load_json(ann_b)
    for name in ('000000.jpg', '000005.jpg'):
        pixels_a = (tmp_path / 'a/train' / name).read_bytes()
        assert pixels_a == (tmp_path / 'b/train' / name).read_bytes()
    img_1, objects_1 = render_shapes_image(np.random.default_rng([3, 4]), ShapesParams())
    img_2, objects_2 = render_shapes_image(np.random.default_rng([3, 4]), ShapesParams())
    assert np.array_equal(img_1, img_2) and objects_1 == objects_2


def test_train_and_val_differ(tmp_path):
    train = load_json(generate_shapes(str(tmp_path), 'train', 4, seed=0))
    val = load_json(generate_shapes(str(tmp_path), 'val', 4, seed=1))
    assert [a['bbox'] for a in train['annotations']] != [a['bbox'] for a in val['annotations']]
    for ann in train['annotations']:  # each outline polygon lies on its box
        xs, ys = ann['segmentation'][0][0::2], ann['segmentation'][0][1::2]
        x, y, w, h = ann['bbox']
        assert len(ann['segmentation']) == 1 and len(xs) >= 3
        assert x - 1 <= min(xs) and max(xs) <= x + w + 1
        assert y - 1 <= min(ys) and max(ys) <= y + h + 1
    assert not np.array_equal(cv2.imread(str(tmp_path / 'train/000000.jpg')),
                              cv2.imread(str(tmp_path / 'val/000000.jpg')))


def test_sizes_counts_and_classes_in_range():
    params = ShapesParams()
    labels, sizes = set(), set()
    for index in range(NUM_RANGE_IMAGES):
        img, objects = render_shapes_image(np.random.default_rng([0, index]), params)
        height, width = img.shape[:2]
        assert img.dtype == np.uint8 and img.shape[2] == 3
        assert 96 <= height <= 192 and 96 <= width <= 192
        sizes.add((height, width))
        assert 1 <= len(objects) <= 8
        max_side = min(height, width) / 3
        for obj in objects:
            x, y, w, h = obj.bbox_xywh
            assert 12 <= min(w, h) and max(w, h) <= max_side
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert 0 < obj.area <= w * h
            # no later object hides more than 40 % of an earlier one
            assert obj.visible_area >= 0.6 * obj.area
            labels.add(obj.label)
    assert labels == {0, 1, 2}
    assert len(sizes) > NUM_RANGE_IMAGES // 2  # sizes and aspect ratios vary


@pytest.mark.parametrize('label', range(len(SHAPE_CLASSES)))
def test_shape_masks_are_tight(label):
    rng = np.random.default_rng(label)
    for _ in range(20):
        mask, outline = shapes_generator._shape_mask(rng, label, 12, 40)
        # every border row and column holds a drawn pixel: the box is tight
        assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
        if label == shapes_generator.RECTANGLE:
            assert mask.all() and 0.5 <= mask.shape[0] / mask.shape[1] <= 2
        else:
            assert not mask.all()
        # The outline, rasterised as COCO does, covers the drawn pixels: exactly for
        # rectangles; for the others cv2 also fills the pixels its edges pass through.
        height, width = mask.shape
        coco = mask_util.decode(mask_util.merge(mask_util.frPyObjects(
            [outline.reshape(-1).tolist()], height, width))).astype(bool)
        iou = (coco & mask.astype(bool)).sum() / (coco | mask.astype(bool)).sum()
        assert iou == 1.0 if label == shapes_generator.RECTANGLE else iou > 0.7


@pytest.mark.parametrize('under', [
    np.full((100, 3), 128.0, np.float32),
    np.full((100, 3), 255.0, np.float32),
    np.concatenate([np.zeros((50, 3)), np.full((50, 3), 255.0)]).astype(np.float32),
])
def test_colour_contrasts_with_what_is_under_it(under):
    for seed in range(10):
        colour = shapes_generator._contrasting_colour(np.random.default_rng(seed), under)
        distance = np.linalg.norm(under - colour, axis=1)
        assert np.percentile(distance, shapes_generator.CONTRAST_PERCENTILE) >= \
            shapes_generator.MIN_CONTRAST * 0.99


def test_annotation_file_is_coco_and_records_parameters(tmp_path):
    ann_file = generate_shapes(str(tmp_path), 'val', 5, seed=1, img_format='png')
    assert ann_file == shapes_ann_file(str(tmp_path), 'val')
    content = load_json(ann_file)
    assert [c['name'] for c in content['categories']] == list(SHAPE_CLASSES)
    assert [img['id'] for img in content['images']] == [1, 2, 3, 4, 5]
    assert [ann['id'] for ann in content['annotations']] == list(
        range(1, len(content['annotations']) + 1))
    record = content['info']['generator']
    assert record['seed'] == 1 and record['num_images'] == 5 and record['img_format'] == 'png'
    for img in content['images']:
        pixels = cv2.imread(str(tmp_path / 'val' / img['file_name']))
        assert pixels.shape[:2] == (img['height'], img['width'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.val.lock', 'annotations', 'val']


def test_regenerates_only_on_parameter_change(tmp_path):
    ann_file = generate_shapes(str(tmp_path), 'train', 5, seed=0)
    stamp = (tmp_path / 'annotations/instances_train.json').stat().st_mtime_ns
    generate_shapes(str(tmp_path), 'train', 5, seed=0)
    assert (tmp_path / 'annotations/instances_train.json').stat().st_mtime_ns == stamp

    generate_shapes(str(tmp_path), 'train', 4, seed=0, max_objects=2)
    content = load_json(ann_file)
    assert content['info']['generator']['max_objects'] == 2
    assert len(content['images']) == 4 and len(list((tmp_path / 'train').glob('*.jpg'))) == 4
    per_image = np.bincount([a['image_id'] for a in content['annotations']])
    assert per_image.max() <= 2

    (tmp_path / 'train/000000.jpg').unlink()  # incomplete split -> regenerated
    generate_shapes(str(tmp_path), 'train', 4, seed=0, max_objects=2)
    assert (tmp_path / 'train/000000.jpg').is_file()


def test_two_writers_at_once_leave_one_complete_split(tmp_path):
    reference = load_json(generate_shapes(str(tmp_path / 'ref'), 'train', 8, seed=0))
    errors = []

    def write():
        try:
            generate_shapes(str(tmp_path / 'shared'), 'train', 8, seed=0)
        except Exception as error:  # noqa: BLE001  (surfaced by the assert below)
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert load_json(tmp_path / 'shared/annotations/instances_train.json') == reference
    assert sorted(p.name for p in (tmp_path / 'shared').iterdir()) == [
        '.train.lock', 'annotations', 'train']


@pytest.mark.parametrize('kwargs, error', [
    (dict(img_format='bmp'), 'img_format'),
    (dict(max_objcts=3), 'max_objcts'),
    (dict(min_object_size=40), 'min_object_size'),
    (dict(num_images=0), 'num_images'),
    (dict(split='../x'), 'split'),
])
def test_bad_generator_arguments(tmp_path, kwargs, error):
    args = dict(split='train', num_images=2, seed=0)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=error):
        generate_shapes(str(tmp_path), **args)


def test_shapes_dataset_generates_and_loads(tmp_path):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackDetInputs')]
    dataset = DATASETS.build(dict(type='ShapesDataset', data_root=str(tmp_path), split='val',
                                  num_images=20, test_mode=True, pipeline=pipeline))
    assert len(dataset) == 20
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    assert dataset.cat_ids == [1, 2, 3]
    labels = {label for i in range(len(dataset)) for label in dataset.get_cat_ids(i)}
    assert labels == {0, 1, 2}
    packed = dataset[0]
    info = dataset.get_data_info(0)
    assert tuple(packed['inputs'].shape) == (3, info['height'], info['width'])
    assert len(packed['data_samples'].gt_instances.bboxes) == len(info['instances'])


def test_shapes_dataset_lazy_init_and_layout_errors(tmp_path):
    dataset = DATASETS.build(dict(type='ShapesDataset', data_root=str(tmp_path), split='train',
                                  num_images=3, lazy_init=True))
    assert not (tmp_path / 'annotations').exists()
    assert len(dataset) == 3  # first use generates
    assert (tmp_path / 'annotations/instances_train.json').is_file()
    with pytest.raises(ValueError, match='ann_file'):
        DATASETS.build(dict(type='ShapesDataset', data_root=str(tmp_path), split='val',
                            num_images=3, ann_file='annotations/instances_train.json'))
    with pytest.raises(ValueError, match='num_images and seed'):
        DATASETS.build(dict(type='ShapesDataset', data_root=str(tmp_path), split='extra'))


def test_cli_writes_both_splits(tmp_path, capsys):
    shapes_cli([str(tmp_path), '--num-train', '3', '--num-val', '2'])
    assert len(load_json(tmp_path / 'annotations/instances_train.json')['images']) == 3
    assert len(load_json(tmp_path / 'annotations/instances_val.json')['images']) == 2
    assert 'val: 2 images' in capsys.readouterr().out


def user_coco_data(root):
    """A user's own COCO data where the shapes generator would write."""
    (root / 'train').mkdir(parents=True)
    (root / 'annotations').mkdir()
    (root / 'train' / 'photo.jpg').write_bytes(b'user image bytes')
    ann = dict(images=[dict(id=1, file_name='photo.jpg', width=4, height=4)],
               annotations=[], categories=[dict(id=1, name='dog')])
    (root / 'annotations' / 'instances_train.json').write_text(json.dumps(ann))
    return {path: path.read_bytes() for path in root.rglob('*') if path.is_file()}


def test_shapes_dataset_never_touches_files_it_did_not_write(tmp_path):
    before = user_coco_data(tmp_path)
    with pytest.raises(FileExistsError, match=r"instances_train.json.*not written.*\['dog'\]"):
        DATASETS.build(dict(type='ShapesDataset', data_root=str(tmp_path), split='train',
                            num_images=2))
    after = {path: path.read_bytes() for path in tmp_path.rglob('*') if path.is_file()
             if not path.name.endswith('.lock')}
    assert after == before


def test_generator_refuses_a_foreign_image_folder(tmp_path):
    (tmp_path / 'val').mkdir()
    (tmp_path / 'val' / 'mine.png').write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='did not write'):
        generate_shapes(str(tmp_path), 'val', 2, seed=1)
    assert (tmp_path / 'val' / 'mine.png').read_bytes() == b'keep me'
    assert not (tmp_path / 'annotations' / 'instances_val.json').exists()
    # its own earlier output is regenerated as before
    generate_shapes(str(tmp_path / 'own'), 'val', 2, seed=1)
    generate_shapes(str(tmp_path / 'own'), 'val', 3, seed=1)
    assert len(list((tmp_path / 'own' / 'val').glob('*.jpg'))) == 3


def test_quickstart_streams_with_infinite_sampler_and_aspect_ratio_batches(tmp_path):
    """no end-of-epoch "Reach the end of the dataloader" in iteration-based runs."""
    from pathlib import Path

    from mmengine.config import Config
    from mmengine.runner import Runner
    config = Path(__file__).resolve().parents[2] / 'configs/quickstart/retinanet_r18_fpn_shapes.py'
    loader_cfg = Config.fromfile(str(config)).train_dataloader
    assert loader_cfg.sampler.type == 'InfiniteSampler'
    assert loader_cfg.batch_sampler.type == 'AspectRatioBatchSampler'
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=2)
    loader_cfg.dataset.update(data_root=str(tmp_path), num_images=5)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = iter(loader)
    seen = set()
    for _ in range(6):  # past the end of an epoch of 5 images
        samples = next(batches)['data_samples']
        shapes = [sample.ori_shape for sample in samples]
        assert len(shapes) == 2 and len({h > w for h, w in shapes}) == 1
        seen.update(sample.img_id for sample in samples)
    assert len(seen) >= 4
