"""DetInferencer: a detector run on images, folders or arrays, with drawn images
and JSON predictions written under ``out_dir`` (MMDetection 3.x's interface)."""
import math
import os.path as osp
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmengine.visualization import Visualizer
from rich.progress import track
from torch import nn

from detlab.evaluation.functional.coco_format import dump_atomic, rle_with_str_counts
from detlab.registry import VISUALIZERS
from detlab.structures import DetDataSample
from detlab.structures.mask import encode_mask_results
from detlab.utils import imwrite_atomic
from .inference import (ConfigLike, ImageLike, build_test_pipeline, image_inputs, init_detector,
                        list_models, run_on_batch)
from .model_zoo import model_zoo_weights

#: Files in an input folder that are read as images (lower-case suffixes).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
#: Sub-folders of ``out_dir``.
VIS_DIR, PREDS_DIR = 'vis', 'preds'
#: An input that names a URL (``http://``, ``s3://``, ...) rather than a local file.
URL_PATTERN = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')
InputsType = Union[ImageLike, Sequence[ImageLike]]


def refuse_urls(images: Sequence[ImageLike]) -> None:
    """Refuse inputs that are URLs: detlab reads local files and downloads nothing
    at run time (a server that never answers would otherwise hang the run)."""
    urls = [str(image) for image in images
            if isinstance(image, (str, Path)) and URL_PATTERN.match(str(image))]
    if urls:
        raise ValueError(f'{urls[0]!r} is a URL: detlab reads images from local files only '
                         'and downloads nothing at run time. Download it first (e.g. '
                         f'curl -O {urls[0]}) and give the file or its folder.')


def output_names(images: Sequence[ImageLike]) -> List[Optional[Tuple[str, str]]]:
    """(drawn image file name, prediction file name) for each input path; None for arrays.

    A drawn image keeps its input's file name and its prediction goes to
    ``<stem>.json``, as in MMDetection. Inputs whose stems collide (``x.jpg``
    and ``x.png``) keep the extension in their prediction's name
    (``x.jpg.json``, ``x.png.json``); inputs with the same file name in
    different folders get ``_1``, ``_2``, ... after the stem in the order given,
    so no output of one call overwrites another.
    """
    paths = [None if isinstance(image, np.ndarray) else osp.basename(str(image))
             for image in images]
    stems = Counter(osp.splitext(name)[0] for name in paths if name is not None)
    used: set = set()
    names: List[Optional[Tuple[str, str]]] = []
    for name in paths:
        if name is None:
            names.append(None)
            continue
        stem, ext = osp.splitext(name)
        pred_stem = name if stems[stem] > 1 else stem
        vis_name, pred_name, count = name, f'{pred_stem}.json', 0
        while vis_name in used or pred_name in used:
            count += 1
            vis_name, pred_name = f'{stem}_{count}{ext}', f'{pred_stem}_{count}.json'
        used.update((vis_name, pred_name))
        names.append((vis_name, pred_name))
    return names


def build_visualizer(model: nn.Module) -> Visualizer:
    """The model config's visualizer without its backends (drawn images are
    written by the caller), knowing the model's classes and palette."""
    vis_cfg = dict(model.cfg.get('visualizer', dict(type='DetLocalVisualizer')))
    vis_cfg.pop('vis_backends', None)
    vis_cfg.pop('save_dir', None)
    vis_cfg['name'] = f"inference-{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}"
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = model.dataset_meta
    return visualizer


class DetInferencer:
    """Run a detector on images and draw or save what it finds.

    Args:
        model: A config file or a config name (:meth:`list_models`), or a
            Config. A checkpoint alone is refused: detlab does not run the
            config text stored inside a checkpoint.
        weights (str, optional): Checkpoint, read with ``weights_only=True``.
            Defaults, for a config name, to the name's trained weights in the
            torch hub cache (:mod:`detlab.apis.model_zoo`).
        device (str, optional): Defaults to the first GPU, else the CPU.
        scope (str): Registry scope; only ``'detlab'`` (or MMDetection's
            ``'mmdet'``, which detlab serves) is accepted.
        palette (str): ``'none'``, ``'random'``, ``'coco'``, ``'voc'`` or a colour name.
        show_progress (bool): A progress bar over the batches. Defaults to True.
        max_pixels (int, optional): The most pixels an input image may declare
            (``LoadImageFromFile(max_pixels=...)``); None lifts the limit.
            Defaults to the config's test pipeline (2**27 unless it says).

    Example:
        >>> inferencer = DetInferencer('retinanet_r18_fpn_shapes', 'iter_1600.pth')
        >>> inferencer('images/', out_dir='outputs', no_save_pred=False)
    """

    list_models = staticmethod(list_models)

    def __init__(self,
                 model: Optional[ConfigLike] = None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'detlab',
                 palette: str = 'none',
                 show_progress: bool = True,
                 max_pixels: Union[int, None, str] = 'config') -> None:
        if model is None:
            raise ValueError('DetInferencer needs model= (a config file or name, see '
                             'DetInferencer.list_models()); detlab does not run the config text '
                             'stored in a checkpoint.')
        if scope not in (None, 'detlab', 'mmdet'):
            raise ValueError(f"scope={scope!r}: DetInferencer builds detlab models; use 'detlab'.")
        if weights is None:
            weights = model_zoo_weights(model)
        self.model = init_detector(model, weights, palette=palette, device=device)
        self.cfg = self.model.cfg
        self.pipelines = {from_array: build_test_pipeline(self.cfg, from_array, max_pixels)
                          for from_array in (False, True)}
        self.visualizer = build_visualizer(self.model)
        self.show_progress = show_progress
        self.num_visualized_imgs = 0
        self.num_predicted_imgs = 0

    def __call__(self,
                 inputs: InputsType,
                 batch_size: int = 1,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0,
                 no_save_vis: bool = False,
                 draw_pred: bool = True,
                 pred_score_thr: float = 0.3,
                 return_datasamples: bool = False,
                 print_result: bool = False,
                 no_save_pred: bool = True,
                 out_dir: str = '') -> dict:
        """Detect objects in ``inputs``.

        Args:
            inputs: An image path, a folder (its images, sorted by name), an
                (H, W, 3) BGR array, or a list of paths and arrays.
            batch_size (int): Images per forward pass.
            return_vis (bool): Return the drawn images (RGB arrays).
            show (bool): Show each drawn image in a window.
            wait_time (float): Seconds a shown image stays.
            no_save_vis (bool): Do not write drawn images.
            draw_pred (bool): Draw the predictions.
            pred_score_thr (float): Draw only boxes scoring above this.
            return_datasamples (bool): Return DetDataSamples, not dicts.
            print_result (bool): Print the predictions.
            no_save_pred (bool): Do not write the JSON predictions. Defaults
                to True, as in MMDetection.
            out_dir (str): Drawn images go to ``out_dir/vis/<image name>``,
                predictions to ``out_dir/preds/<image stem>.json``; '' writes nothing.
                Names stay unique within a call (see :func:`output_names`).

        Returns:
            dict: ``predictions`` (per image: ``labels``, ``scores``, ``bboxes``
            as lists, boxes x1, y1, x2, y2 in the original image's pixels; or
            DetDataSamples) and ``visualization`` (drawn RGB images when asked
            for, else empty).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}.')
        images = self._inputs_to_list(inputs)
        refuse_urls(images)
        names = output_names(images)
        vis_dir = '' if no_save_vis or not out_dir else osp.join(out_dir, VIS_DIR)
        pred_dir = '' if no_save_pred or not out_dir else osp.join(out_dir, PREDS_DIR)
        results = dict(predictions=[], visualization=[])
        batches = self._batches(images, batch_size)
        if self.show_progress:
            batches = track(batches, description='Inference',
                            total=math.ceil(len(images) / batch_size))
        for start, (batch_images, packed) in zip(range(0, len(images), batch_size), batches):
            preds = run_on_batch(self.model, packed)
            batch_names = names[start:start + batch_size]
            if show or return_vis or vis_dir:
                drawn = self.visualize(batch_images, preds, show=show, wait_time=wait_time,
                                       draw_pred=draw_pred, pred_score_thr=pred_score_thr,
                                       vis_dir=vis_dir, names=[n and n[0] for n in batch_names])
                if return_vis:
                    results['visualization'].extend(drawn)
            for pred, name in zip(preds, batch_names):
                record = self.pred2dict(pred, pred_dir, name and name[1])
                results['predictions'].append(pred if return_datasamples else record)
        if print_result:
            print(results['predictions'])
        return results

    @staticmethod
    def _inputs_to_list(inputs: InputsType) -> List[ImageLike]:
        """A folder becomes its images (sorted); one image becomes a list of one."""
        if isinstance(inputs, (str, Path)) and osp.isdir(inputs):
            folder = str(inputs)
            names = sorted(name for name in Path(folder).iterdir()
                           if name.is_file() and name.suffix.lower() in IMG_EXTENSIONS)
            if not names:
                raise ValueError(f'No images in {folder} (looked for files ending in '
                                 f'{", ".join(IMG_EXTENSIONS)}).')
            return [str(name) for name in names]
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    def _batches(self, images: List[ImageLike],
                 batch_size: int) -> Iterator[Tuple[List[ImageLike], List[dict]]]:
        """(images, pipeline outputs) for each batch of ``batch_size`` images."""
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            packed = [self.pipelines[isinstance(image, np.ndarray)](image_inputs(image, start + i))
                      for i, image in enumerate(chunk)]
            yield chunk, packed

    def visualize(self, images: List[ImageLike], preds: List[DetDataSample], show: bool = False,
                  wait_time: float = 0, draw_pred: bool = True, pred_score_thr: float = 0.3,
                  vis_dir: str = '', names: Optional[List[Optional[str]]] = None
                  ) -> List[np.ndarray]:
        """Draw each image's predictions; write them under ``vis_dir`` when given,
        as ``names`` (per image; None or absent: the input's file name, or a
        running number for arrays).

        Returns:
            list[np.ndarray]: (H, W, 3) RGB uint8 drawn images.
        """
        drawn = []
        names = names or [None] * len(images)
        for image, pred, out_name in zip(images, preds, names):
            if isinstance(image, np.ndarray):
                rgb = image[..., ::-1] if image.ndim == 3 else np.stack([image] * 3, axis=-1)
                name = f'{self.num_visualized_imgs:08d}.jpg'
            else:
                rgb = mmcv.imread(str(image), channel_order='rgb')
                name = out_name or osp.basename(str(image))
            self.visualizer.add_datasample(name, rgb, pred, draw_gt=False, draw_pred=draw_pred,
                                           show=show, wait_time=wait_time,
                                           pred_score_thr=pred_score_thr)
            image_out = self.visualizer.get_image()
            if vis_dir:
                imwrite_atomic(image_out[..., ::-1], osp.join(vis_dir, name))
            drawn.append(image_out)
            self.num_visualized_imgs += 1
        return drawn

    def pred2dict(self, data_sample: DetDataSample, pred_dir: str = '',
                  name: Optional[str] = None) -> dict:
        """``labels``, ``scores`` and ``bboxes`` as lists, and ``masks`` as COCO
        RLE dicts (str ``counts``) for instance segmentation; written to
        ``pred_dir/<name>`` when given (by default ``<image stem>.json``, or
        ``<n>.json`` for arrays)."""
        pred = data_sample.pred_instances.cpu().numpy()
        record = dict(labels=pred.labels.tolist(), scores=pred.scores.tolist(),
                      bboxes=pred.bboxes.tolist())
        if 'masks' in pred:
            record['masks'] = [rle_with_str_counts(rle)
                               for rle in encode_mask_results(pred.masks)]
        if pred_dir:
            img_path = data_sample.metainfo.get('img_path')
            if name is None and img_path:
                name = f'{osp.splitext(osp.basename(img_path))[0]}.json'
            elif name is None:
                name = f'{self.num_predicted_imgs}.json'
                self.num_predicted_imgs += 1
            dump_atomic(record, osp.join(pred_dir, name))
        return record
