"""MMDetection's Pascal VOC recipe end to end on a VOC-layout fixture: VOC2007 + VOC2012
through RepeatDataset and ConcatDataset into training, VOCMetric in the run and in
tools/test.py."""
import pytest
import re

import cv2
import numpy as np

from helpers import assert_ok, run_tool, write_voc

CONFIG = 'configs/pascal_voc/retinanet_r50_fpn_1x_voc0712.py'
VOC2007 = {'000001': ((64, 48), [('dog', 0, 8, 6, 40, 30), ('person', 1, 40, 10, 60, 44)]),
           '000002': ((64, 48), [('car', 0, 4, 20, 30, 46)])}
VOC2012 = {'2012_000001': ((64, 48), [('bird', 0, 20, 4, 56, 36)])}


def write_fixture(root):
    write_voc(root, 'VOC2007', VOC2007)
    write_voc(root, 'VOC2012', VOC2012)
    for year, images in (('VOC2007', VOC2007), ('VOC2012', VOC2012)):
        for img_id, (_, objects) in images.items():  # something to see inside each box
            img = np.zeros((48, 64, 3), np.uint8)
            for _, _, x1, y1, x2, y2 in objects:
                cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), -1)
            cv2.imwrite(str(root / year / 'JPEGImages' / f'{img_id}.jpg'), img)
    main = root / 'VOC2007' / 'ImageSets' / 'Main'
    (main / 'test.txt').write_text((main / 'trainval.txt').read_text())


def options(root):
    """The config's own datasets and pipelines, pointed at the fixture; 1 epoch, 2 steps,
    images resized to at most 160x96 instead of 1000x600 (the recipe's R50 at full size is
    the test's whole cost)."""
    options = ['model.backbone.init_cfg=None',  # no ImageNet weights here
               'train_cfg.max_epochs=1', 'train_dataloader.dataset.times=1',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               'default_hooks.logger.interval=1']
    for index in (0, 1):
        options += [f'train_dataloader.dataset.dataset.datasets.{index}.data_root={root}/',
                    f'train_dataloader.dataset.dataset.datasets.{index}.pipeline.2.scale=(160,96)']
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}/', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False', f'{loader}.dataset.pipeline.1.scale=(160,96)']
    return options


def voc_metrics(output, loop):
    lines = [line for line in output.splitlines() if f'Epoch({loop})' in line
             and 'pascal_voc/mAP' in line]
    assert lines, output[-3000:]
    return dict(re.findall(r'(pascal_voc/\w+): ([0-9.]+)', lines[-1]))


@pytest.mark.slow
def test_voc0712_recipe_trains_and_tests(tmp_path):
    write_fixture(tmp_path / 'VOCdevkit')
    work_dir = tmp_path / 'work'
    output = assert_ok(run_tool('tools/train.py', CONFIG, '--work-dir', work_dir,
                                '--cfg-options', *options(tmp_path / 'VOCdevkit')))
    # 2 VOC2007 images with boxes + 1 VOC2012 image, 2 a batch: 2 steps
    assert 'Epoch(train) [1][2/2]' in output
    in_run = voc_metrics(output, 'val')
    assert set(in_run) >= {'pascal_voc/mAP', 'pascal_voc/AP50'}
    tested = voc_metrics(assert_ok(run_tool(
        'tools/test.py', CONFIG, work_dir / 'epoch_1.pth', '--work-dir', work_dir / 'test',
        '--cfg-options', *options(tmp_path / 'VOCdevkit'))), 'test')
    assert tested == in_run
