"""Writing a split of the shapes data set to disk, safely and only when needed.

Layout under ``out_dir``: ``{split}/{index:06d}.{jpg|png}`` and
``annotations/instances_{split}.json`` (COCO instance format: boxes and
each shape's outline polygon). The JSON is
written last, atomically, and records the generator parameters, so a present
JSON with matching parameters means the split is complete and current. A
file lock serialises processes (e.g. DDP ranks) that ask for the same split.
"""
import contextlib
import glob
import json
import os
import os.path as osp
import re
import shutil
import uuid
from dataclasses import asdict
from typing import Iterator, Optional

import cv2
import numpy as np
from mmengine.logging import print_log

from detlab.utils.atomic import atomic_write
from .generator import SHAPE_CLASSES, ShapesParams, render_shapes_image

try:
    import fcntl
except ImportError:  # not POSIX: generation is then not guarded across processes
    fcntl = None

#: Bump when the drawing code changes, so existing data is regenerated.
GENERATOR_VERSION = 2
IMAGE_FORMATS = ('jpg', 'png')
JPEG_QUALITY = 95
#: Default size and seed of the splits ShapesDataset knows by name.
SPLIT_DEFAULTS = {'train': dict(num_images=2000, seed=0), 'val': dict(num_images=200, seed=1)}
#: Written into every image folder the generator makes: only such folders
#: (or those beside a shapes annotation file) are ever replaced.
OWNER_MARKER = '.detlab-shapes'
#: Names of the generator's own temporary folders, ``.{split}.tmp-<32 hex>``.
_TMP_SUFFIX = re.compile(r'\.tmp-[0-9a-f]{32}$')


def shapes_ann_file(out_dir: str, split: str) -> str:
    """Where the annotation file of ``split`` lives."""
    return osp.join(out_dir, 'annotations', f'instances_{split}.json')


def _generator_record(split: str, num_images: int, seed: int, img_format: str,
                      params: ShapesParams) -> dict:
    return dict(version=GENERATOR_VERSION, split=split, num_images=num_images, seed=seed,
                img_format=img_format, **asdict(params))


def _is_current(out_dir: str, split: str, record: dict) -> bool:
    ann_file = shapes_ann_file(out_dir, split)
    try:
        with open(ann_file) as f:
            recorded = json.load(f).get('info', {}).get('generator')
    except (OSError, ValueError):
        return False
    if recorded != record:
        return False
    img_dir = osp.join(out_dir, split)
    if not osp.isdir(img_dir):
        return False
    images = [name for name in os.listdir(img_dir) if name != OWNER_MARKER]
    return len(images) == record['num_images']


def _generator_record_of(ann_file: str) -> Optional[dict]:
    """The generator record of a shapes annotation file, None if it has none."""
    try:
        with open(ann_file) as f:
            content = json.load(f)
    except (OSError, ValueError):
        return None
    info = content.get('info') if isinstance(content, dict) else None
    record = info.get('generator') if isinstance(info, dict) else None
    return record if isinstance(record, dict) else None


def _foreign_categories(ann_file: str) -> str:
    """A note on the categories of a file that is not ours, for error messages."""
    try:
        with open(ann_file) as f:
            names = [cat['name'] for cat in json.load(f)['categories']]
    except (OSError, ValueError, KeyError, TypeError):
        return ''
    return f' Its categories are {names}; the shapes classes are {list(SHAPE_CLASSES)}.'


def _check_ownership(out_dir: str, split: str) -> None:
    """Refuse to touch a split whose files the generator did not write.

    The annotation file is ours when it carries the generator record; the
    image folder is ours when it holds :data:`OWNER_MARKER`, is empty, or sits
    beside our annotation file of the same split (data written before the
    marker existed).

    Raises:
        FileExistsError: Naming the file or folder that is someone else's.
    """
    ann_file = shapes_ann_file(out_dir, split)
    ann_is_ours = False
    if osp.exists(ann_file):
        record = _generator_record_of(ann_file)
        if record is None:
            raise FileExistsError(
                f"Shapes data: '{ann_file}' exists and was not written by detlab's shapes "
                f'generator (it has no info.generator record), so it is left untouched.'
                f'{_foreign_categories(ann_file)} To train on your own COCO-format data use '
                f"type='CocoDataset' with metainfo=dict(classes=...); to generate shapes, "
                f'point data_root at a folder without this file.')
        ann_is_ours = record.get('split') == split
    img_dir = osp.join(out_dir, split)
    if osp.lexists(img_dir):
        if not osp.isdir(img_dir) or osp.islink(img_dir):
            raise FileExistsError(f"Shapes data: '{img_dir}' exists and is not a folder the "
                                  'shapes generator made; it is left untouched.')
        contents = os.listdir(img_dir)
        if contents and OWNER_MARKER not in contents and not ann_is_ours:
            raise FileExistsError(
                f"Shapes data: folder '{img_dir}' holds {len(contents)} files the shapes "
                f'generator did not write (no {OWNER_MARKER} marker); they are left untouched. '
                f"Use type='CocoDataset' for your own images, or point data_root elsewhere.")


@contextlib.contextmanager
def _split_lock(out_dir: str, split: str) -> Iterator[None]:
    with open(osp.join(out_dir, f'.{split}.lock'), 'a') as lock_file:
        if fcntl is not None:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _write_images(img_dir: str, split: str, num_images: int, seed: int, img_format: str,
                  params: ShapesParams) -> dict:
    """Render and write every image; returns the COCO dict for them."""
    images, annotations = [], []
    encode_flags = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if img_format == 'jpg' else []
    for index in range(num_images):
        img, objects = render_shapes_image(np.random.default_rng([seed, index]), params)
        file_name = f'{index:06d}.{img_format}'
        if not cv2.imwrite(osp.join(img_dir, file_name), img, encode_flags):
            raise OSError(f"Could not write shapes image '{osp.join(img_dir, file_name)}'.")
        # COCO ids start at 1: COCOeval treats a matched gt id of 0 as unmatched.
        img_id = index + 1
        images.append(dict(id=img_id, file_name=file_name, height=img.shape[0],
                           width=img.shape[1]))
        for obj in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=obj.label + 1, bbox=list(obj.bbox_xywh),
                                    area=obj.area, iscrowd=0,
                                    segmentation=[list(obj.polygon)]))
    categories = [dict(id=label + 1, name=name) for label, name in enumerate(SHAPE_CLASSES)]
    with open(osp.join(img_dir, OWNER_MARKER), 'w') as marker:
        marker.write('Written by detlab.datasets.shapes; replaced when regenerated.\n')
    return dict(images=images, annotations=annotations, categories=categories)


def _replace_dir(new_dir: str, final_dir: str) -> None:
    """Swap ``new_dir`` in at ``final_dir`` (rename cannot replace a non-empty dir)."""
    if osp.exists(final_dir):
        stale = f'{final_dir}.stale-{uuid.uuid4().hex}'
        os.replace(final_dir, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(new_dir, final_dir)


def generate_shapes(out_dir: str,
                    split: str,
                    num_images: int,
                    seed: int,
                    img_format: str = 'jpg',
                    force: bool = False,
                    **shape_params) -> str:
    """Write one split of the shapes data set, unless it is already there.

    Image ``i`` is a pure function of ``(seed, i)`` and the parameters, so two
    calls with the same arguments write identical files.

    Args:
        out_dir (str): Data root; gets ``{split}/`` and ``annotations/``.
        split (str): Split name, e.g. ``'train'`` or ``'val'``.
        num_images (int): Number of images.
        seed (int): Seed of the split; use different seeds for different splits.
        img_format (str): ``'jpg'`` (default, small files) or ``'png'`` (lossless).
        force (bool): Regenerate even if the split is current.
        **shape_params: Fields of :class:`ShapesParams` (image and object sizes,
            object counts, overlap limit).

    Returns:
        str: Path of the split's annotation file.
    """
    unknown = set(shape_params) - set(ShapesParams.field_names())
    if unknown:
        raise TypeError(f'generate_shapes: unknown parameters {sorted(unknown)}; valid ones are '
                        f'{list(ShapesParams.field_names())}.')
    if img_format not in IMAGE_FORMATS:
        raise ValueError(f'generate_shapes: img_format={img_format!r}, expected one of '
                         f'{IMAGE_FORMATS}.')
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f'generate_shapes: num_images must be a positive int, got {num_images!r}.')
    if not split or osp.basename(split) != split or split.startswith('.'):
        raise ValueError(f'generate_shapes: split must be a plain folder name, got {split!r}.')
    params = ShapesParams(**shape_params)
    record = _generator_record(split, num_images, int(seed), img_format, params)
    ann_file = shapes_ann_file(out_dir, split)
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with _split_lock(out_dir, split):
        if not force and _is_current(out_dir, split, record):
            return ann_file
        _check_ownership(out_dir, split)
        print_log(f"Generating {num_images} '{split}' shapes images in '{out_dir}'.",
                  logger='current')
        # Invalidate first: a crash below must never leave an old JSON over new images.
        with contextlib.suppress(FileNotFoundError):
            os.remove(ann_file)
        for leftover in glob.glob(osp.join(out_dir, f'.{split}.tmp-*')):
            if _TMP_SUFFIX.search(leftover) and osp.isdir(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
        tmp_dir = osp.join(out_dir, f'.{split}.tmp-{uuid.uuid4().hex}')
        os.makedirs(tmp_dir)
        content = _write_images(tmp_dir, split, num_images, int(seed), img_format, params)
        _replace_dir(tmp_dir, osp.join(out_dir, split))
        content['info'] = dict(description='detlab built-in shapes data set', generator=record)

        def write_json(path: str) -> None:
            with open(path, 'w') as f:
                json.dump(content, f)

        atomic_write(ann_file, write_json)
    return ann_file


def default_split_args(split: str, num_images: Optional[int], seed: Optional[int]) -> dict:
    """Fill ``num_images``/``seed`` from :data:`SPLIT_DEFAULTS` where not given."""
    defaults = SPLIT_DEFAULTS.get(split, {})
    num_images = defaults.get('num_images') if num_images is None else num_images
    seed = defaults.get('seed') if seed is None else seed
    if num_images is None or seed is None:
        raise ValueError(f'Shapes split {split!r} has no default size and seed (only '
                         f'{sorted(SPLIT_DEFAULTS)} do): give num_images and seed.')
    return dict(num_images=num_images, seed=seed)
