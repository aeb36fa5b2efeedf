"""VOCMetric: PASCAL VOC mAP (and proposal recall), named and configured as in mmdet 3.x."""
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement

from detlab.registry import METRICS
from ..functional import AP_MODES, eval_map, eval_recalls
from .sample_gt import gt_from_sample, to_numpy

#: What ``metric`` may be.
VOC_METRICS = ('mAP', 'recall')
#: The AP mode each VOC edition's devkit uses.
VOC_EDITION_MODES = {'VOC2007': '11points', 'VOC2012': 'area'}


@METRICS.register_module()
class VOCMetric(BaseMetric):
    """PASCAL VOC box mAP (``pascal_voc/mAP``, ``pascal_voc/AP50``, ...).

    Ground-truth boxes flagged ``ignore_flag`` (VOC's ``difficult``) are
    ignored: a detection on one is neither a true nor a false positive. Boxes
    use the VOC devkit's legacy ``x2 - x1 + 1`` widths, as MMDetection does.

    Args:
        iou_thrs (float | list[float]): IoU thresholds; one ``APxx`` per
            threshold and ``mAP`` their mean. Defaults to 0.5.
        scale_ranges (list[tuple], optional): Box-size ranges ``(min, max)``
            (areas are their squares) to restrict the evaluation to.
        metric (str | list[str]): ``'mAP'`` or ``'recall'`` (proposal recall).
        proposal_nums (Sequence[int]): Top-n proposals for ``'recall'``.
        eval_mode (str): ``'11points'`` (VOC 2007) or ``'area'`` (VOC 2012).
        collect_device (str): Device to gather results across ranks.
        prefix (str, optional): Key prefix; ``'pascal_voc'`` when None.
    """
    default_prefix: Optional[str] = 'pascal_voc'

    def __init__(self,
                 iou_thrs: Union[float, List[float]] = 0.5,
                 scale_ranges: Optional[List[tuple]] = None,
                 metric: Union[str, List[str]] = 'mAP',
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 eval_mode: str = '11points',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [iou_thrs] if isinstance(iou_thrs, float) else iou_thrs
        self.scale_ranges = scale_ranges
        if not isinstance(metric, str):
            if len(metric) != 1:
                raise ValueError(f'VOCMetric evaluates one metric, got {metric!r}.')
            metric = metric[0]
        if metric not in VOC_METRICS:
            raise KeyError(f'VOCMetric metric={metric!r} is not supported; valid metrics: '
                           f'{list(VOC_METRICS)}.')
        if eval_mode not in AP_MODES:
            raise ValueError(f'VOCMetric eval_mode={eval_mode!r}, expected one of {AP_MODES}.')
        self.metric = metric
        self.proposal_nums = proposal_nums
        self.eval_mode = eval_mode

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each sample's gt (original-image pixels) and per-class detections.

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): ``DetDataSample.to_dict()``s with
                ``pred_instances`` in original-image pixels and
                ``gt_instances``/``ignored_instances`` (or raw ``instances``).
        """
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            gt = gt_from_sample(sample, 'VOCMetric')
            ignored = gt['ignore_flags'].astype(bool)
            ann = dict(bboxes=gt['bboxes'][~ignored], labels=gt['labels'][~ignored],
                       bboxes_ignore=gt['bboxes'][ignored], labels_ignore=gt['labels'][ignored])
            pred = sample['pred_instances']
            boxes = to_numpy(pred['bboxes']).reshape(-1, 4)
            scores = to_numpy(pred['scores']).reshape(-1, 1)
            labels = to_numpy(pred['labels']).reshape(-1)
            dets = np.hstack([boxes, scores])
            self.results.append((ann, [dets[labels == label] for label in range(num_classes)]))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mAP`` and ``APxx`` per IoU threshold, or ``recall@n@iou`` / ``AR@n``.

        Args:
            results (list): ``(annotation, per-class detections)`` pairs.

        Returns:
            dict[str, float]: The metrics (the evaluator adds the prefix).
        """
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results) if results else ((), ())
        eval_results: Dict[str, float] = OrderedDict()
        if self.metric == 'recall':
            recalls = eval_recalls([gt['bboxes'] for gt in gts],
                                   [np.vstack(pred) for pred in preds], self.proposal_nums,
                                   self.iou_thrs, logger=logger, use_legacy_coordinate=True)
            for i, num in enumerate(self.proposal_nums):
                for j, iou_thr in enumerate(self.iou_thrs):
                    eval_results[f'recall@{num}@{iou_thr}'] = float(recalls[i, j])
            if recalls.shape[1] > 1:
                for i, num in enumerate(self.proposal_nums):
                    eval_results[f'AR@{num}'] = float(recalls[i].mean())
            return eval_results
        dataset_type = (self.dataset_meta or {}).get('dataset_type')
        expected_mode = VOC_EDITION_MODES.get(dataset_type)
        if expected_mode is not None and expected_mode != self.eval_mode:
            warnings.warn(f'Pascal {dataset_type} uses eval_mode={expected_mode!r}, but '
                          f'VOCMetric has {self.eval_mode!r}.')
        names = 'voc' if expected_mode is not None else list(self.dataset_meta['classes'])
        mean_aps = []
        for iou_thr in self.iou_thrs:
            logger.info(f'\n{"-" * 15}iou_thr: {iou_thr}{"-" * 15}')
            mean_ap, _ = eval_map(preds, gts, scale_ranges=self.scale_ranges, iou_thr=iou_thr,
                                  dataset=names, logger=logger, eval_mode=self.eval_mode,
                                  use_legacy_coordinate=True)
            mean_aps.append(mean_ap)
            eval_results[f'AP{int(iou_thr * 100):02d}'] = round(float(np.mean(mean_ap)), 3)
        eval_results['mAP'] = float(np.mean(mean_aps))
        eval_results.move_to_end('mAP', last=False)
        return eval_results
