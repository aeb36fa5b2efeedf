"""DetLocalVisualizer: draws ground-truth and predicted boxes with class names, and masks."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.structures import InstanceData
from mmengine.visualization import Visualizer

from detlab.registry import VISUALIZERS
from detlab.structures import DetDataSample
from detlab.structures.mask import BaseInstanceMasks, bitmap_to_polygon
from detlab.utils.atomic import imwrite_atomic
from .palette import PaletteSpec, adaptive_text_scales, get_palette, jitter_color

#: Font size of a label on a large box; smaller boxes scale it down.
BASE_FONT_SIZE = 13
#: Dark box behind label text so it reads on any background.
LABEL_BACKGROUND = dict(facecolor='black', alpha=0.8, pad=0.7, edgecolor='none')
SCORE_PERCENT = 100


@VISUALIZERS.register_module()
class DetLocalVisualizer(Visualizer):
    """Draws detections on RGB images, as mmdet's DetLocalVisualizer.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        image (np.ndarray, optional): (H, W, 3) RGB image to start with.
        vis_backends (list[dict], optional): Backends the images go to, e.g.
            ``[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]``.
        save_dir (str, optional): Where the backends save.
        bbox_color (palette spec, optional): Box colours; the dataset palette
            (``dataset_meta['palette']``) or a generated one when None.
        text_color (palette spec): Label text colours. Defaults to
            (200, 200, 200).
        mask_color (palette spec, optional): Mask colours (each instance's
            jittered a little); the box palette when None.
        line_width (int | float): Box edge width in pixels. Defaults to 3.
        alpha (float): Opacity of box edges, mask fills and their white
            outlines. Defaults to 0.8.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[Dict]] = None,
                 save_dir: Optional[str] = None,
                 bbox_color: PaletteSpec = None,
                 text_color: PaletteSpec = (200, 200, 200),
                 mask_color: PaletteSpec = None,
                 line_width: Union[int, float] = 3,
                 alpha: float = 0.8) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir)
        self.bbox_color = bbox_color
        self.text_color = text_color
        self.mask_color = mask_color
        self.line_width = line_width
        self.alpha = alpha
        self.dataset_meta = {}

    # mmengine answers ``dataset_meta`` on rank 0 only (None elsewhere); class
    # names are needed wherever an image is drawn, so every rank keeps them.
    @property
    def dataset_meta(self) -> dict:
        """dict: The dataset's metainfo (``classes``, ``palette``)."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dict(dataset_meta or {})

    def _label_texts(self, instances: InstanceData, classes: Optional[Sequence[str]]) -> List[str]:
        labels = instances.labels.tolist()
        if classes is not None and labels and max(labels) >= len(classes):
            raise ValueError(f'Label {max(labels)} has no class name: dataset_meta["classes"] '
                             f'has {len(classes)} names (labels 0..{len(classes) - 1}).')
        texts = [classes[label] if classes is not None else f'class {label}' for label in labels]
        if 'scores' in instances:
            scores = (instances.scores.float() * SCORE_PERCENT).tolist()
            texts = [f'{text}: {round(score, 1)}' for text, score in zip(texts, scores)]
        return texts

    def _draw_instances(self, image: np.ndarray, instances: InstanceData,
                        classes: Optional[Sequence[str]],
                        palette: PaletteSpec) -> np.ndarray:
        """Draw boxes with their labels, and masks, on a copy of ``image``.

        Args:
            image (np.ndarray): (H, W, 3) RGB uint8.
            instances (InstanceData): ``labels`` (N,); ``bboxes`` (N, 4)
                x1, y1, x2, y2 in ``image``'s pixels, optional ``scores``
                (N,); optional ``masks`` (N, H, W) (a tensor, array,
                ``BitmapMasks`` or ``PolygonMasks`` of ``image``'s size).
            classes (Sequence[str], optional): Class names by label.
            palette: The dataset palette, used when ``bbox_color`` is None.

        Returns:
            np.ndarray: (H, W, 3) RGB uint8 with the boxes and masks drawn.
        """
        self.set_image(image)
        if len(instances) == 0:
            return self.get_image()
        label_list = instances.labels.long().tolist()
        num_colors = max(label_list) + 1
        if 'bboxes' in instances:
            self._draw_boxes(instances, label_list, num_colors, classes, palette)
        if 'masks' in instances:
            self._draw_masks(instances.masks, label_list, num_colors, palette)
        return self.get_image()

    def _draw_boxes(self, instances: InstanceData, label_list: List[int], num_colors: int,
                    classes: Optional[Sequence[str]], palette: PaletteSpec) -> None:
        bboxes = instances.bboxes.float()
        box_palette = get_palette(palette if self.bbox_color is None else self.bbox_color,
                                  num_colors)
        text_palette = get_palette(self.text_color, num_colors)
        self.draw_bboxes(bboxes, edge_colors=[box_palette[i] for i in label_list],
                         alpha=self.alpha, line_widths=self.line_width)

        positions = bboxes[:, :2] + self.line_width
        areas = ((bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])).numpy()
        font_sizes = (BASE_FONT_SIZE * adaptive_text_scales(areas)).astype(int).tolist()
        self.draw_texts(self._label_texts(instances, classes), positions,
                        colors=[text_palette[i] for i in label_list], font_sizes=font_sizes,
                        bboxes=[LABEL_BACKGROUND] * len(label_list))

    def _draw_masks(self, masks, label_list: List[int], num_colors: int,
                    palette: PaletteSpec) -> None:
        """Fill each mask in its class colour, jittered per instance, outlined in white."""
        if isinstance(masks, BaseInstanceMasks):
            masks = masks.to_ndarray()
        elif isinstance(masks, torch.Tensor):
            masks = masks.numpy()
        masks = np.asarray(masks).astype(bool)
        height, width = self.get_image().shape[:2]
        if masks.shape[1:] != (height, width):
            raise ValueError(f'Masks of shape {masks.shape[1:]} do not fit the {height}x{width} '
                             'image they are drawn on; masks must be in the pixels of the '
                             'drawn image (predictions in the original image).')
        mask_palette = get_palette(palette if self.mask_color is None else self.mask_color,
                                   num_colors)
        colors = [jitter_color(mask_palette[label], seed=i) for i, label in enumerate(label_list)]
        outlines = [contour for mask in masks for contour in bitmap_to_polygon(mask)[0]]
        if outlines:
            self.draw_polygons(outlines, edge_colors='w', alpha=self.alpha)
        self.draw_binary_masks(masks, colors=colors, alphas=self.alpha)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0) -> None:
        """Draw a sample's gt and/or predictions, then show, save or log the image.

        With both gt and predictions the gt image is on the left and the
        prediction image on the right; a sample with neither gives the plain
        image. With ``out_file`` the image is written
        there (BGR on disk), otherwise it is added to the vis backends.
        In a multi-process run only rank 0 draws (mmengine's drawing calls
        work on rank 0 only); the other ranks return at once.

        Args:
            name (str): Image name for the backends / window.
            image (np.ndarray): (H, W, 3) RGB uint8, in the pixels of the
                boxes (the original image for predictions).
            data_sample (DetDataSample, optional): With ``gt_instances``
                and/or ``pred_instances``.
            draw_gt (bool): Draw ``gt_instances``. Defaults to True.
            draw_pred (bool): Draw ``pred_instances``. Defaults to True.
            show (bool): Show in a window. Defaults to False.
            wait_time (float): Seconds the window stays. Defaults to 0.
            out_file (str, optional): Write the drawn image here.
            pred_score_thr (float): Draw predictions scoring above this.
            step (int): Global step for the backends.
        """
        if not is_main_process():
            return
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'add_datasample expects an (H, W, 3) RGB image, '
                             f'got shape {image.shape}.')
        image = image.clip(0, 255).astype(np.uint8)
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')

        # A sample without gt (or predictions) gets no blank panel for them.
        panels = []
        if data_sample is not None:
            data_sample = data_sample.cpu()
            if draw_gt and 'gt_instances' in data_sample:
                panels.append(self._draw_instances(image, data_sample.gt_instances, classes,
                                                   palette))
            if draw_pred and 'pred_instances' in data_sample:
                pred = data_sample.pred_instances
                if 'scores' in pred:
                    pred = pred[pred.scores > pred_score_thr]
                panels.append(self._draw_instances(image, pred, classes, palette))
        drawn = np.concatenate(panels, axis=1) if panels else image
        self.set_image(drawn)

        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            imwrite_atomic(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)
