"""CocoMetric: COCO box AP, mask AP and proposal recall as an mmengine metric, as in mmdet 3.x.

The metric math lives in ``detlab.evaluation.functional``; this class only
collects per-image predictions, maps labels to COCO category ids and logs.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from pycocotools.coco import COCO

from detlab.registry import METRICS
from detlab.structures.mask import encode_mask_results
from ..functional import (COCO_EVAL_BACKENDS, COCO_IOU_THRS, COCO_STAT_NAMES, DECIMALS,
                          check_metric_items, coco_from_dict, detections_from_results,
                          dump_atomic, eval_recalls, evaluate_bbox, evaluate_segm,
                          gt_to_coco_dict, load_coco, per_class_ap, per_class_table,
                          segm_results_to_coco_json, stats_to_dict)
from .sample_gt import gt_from_sample, to_numpy

#: The metrics this CocoMetric computes.
SUPPORTED_METRICS = ('bbox', 'segm', 'proposal', 'proposal_fast')
#: What ``metric='proposal'`` reports when ``metric_items`` is not given.
PROPOSAL_ITEMS = COCO_STAT_NAMES[6:]


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO box AP (``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ...), mask AP
    (``coco/segm_mAP``, ...) and proposal AR.

    Args:
        ann_file (str, optional): COCO json with the ground truth. When None
            the ground truth comes from the samples (see ``gt_from_sample``)
            and categories are the dataset classes, ids ``0..K-1``.
        metric (str | list[str]): ``'bbox'``; ``'segm'`` (mask AP of the
            predicted ``masks``, always by pycocotools' COCOeval: the fast
            backend matches boxes only); ``'proposal'`` (COCOeval
            recall over all categories pooled: ``AR@100`` ...);
            ``'proposal_fast'`` (``eval_recalls`` at ``iou_thrs``).
        classwise (bool): Also log a per-class AP table and report
            ``<class>_precision`` keys. Defaults to False.
        proposal_nums (Sequence[int]): The three max-detections settings of
            COCOeval. Defaults to (100, 300, 1000).
        iou_thrs (float | Sequence[float], optional): IoU thresholds;
            0.50:0.05:0.95 when None. Kept on ``self.iou_thrs`` as given, as
            in MMDetection.
        metric_items (Sequence[str], optional): Which COCO stats to report
            (names in ``COCO_STAT_NAMES``); the six APs when None.
        format_only (bool): Only write ``{outfile_prefix}.bbox.json`` (and
            ``.segm.json`` when there are masks), no
            evaluation (e.g. for the COCO test server). Needs ``outfile_prefix``.
        outfile_prefix (str, optional): Where to write the results json
            (``<prefix>.bbox.json``) and, without ``ann_file``, the ground
            truth built from the samples (``<prefix>.gt.json``).
        file_client_args: Deprecated in mmdet 3.x; must be None.
        backend_args (dict, optional): mmengine file backend for ``ann_file``.
        collect_device (str): Device to gather results across ranks.
        prefix (str, optional): Key prefix; ``'coco'`` when None.
        sort_categories (bool): Sort the ann file's categories by id (needed
            for Objects365, whose files list them inconsistently).
        use_mp_eval (bool): MMDetection's switch for its multi-process
            COCOeval; detlab answers it with the fast backend (same numbers).
        eval_backend (str): ``'pycocotools'`` (the reference COCOeval) or
            ``'fast'`` (detlab's vectorised COCOeval: the same 12 numbers,
            several times quicker on large sets). Masks always use pycocotools.
    """
    default_prefix: Optional[str] = 'coco'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 classwise: bool = False,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 metric_items: Optional[Sequence[str]] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 file_client_args: Optional[dict] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 sort_categories: bool = False,
                 use_mp_eval: bool = False,
                 eval_backend: str = 'pycocotools') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        unsupported = [m for m in self.metrics if m not in SUPPORTED_METRICS]
        if unsupported or not self.metrics:
            raise KeyError(f'CocoMetric metric={metric!r} is not supported; valid metrics: '
                           f'{list(SUPPORTED_METRICS)}.')
        if file_client_args is not None:
            raise RuntimeError('CocoMetric: `file_client_args` is deprecated, '
                               'use `backend_args` instead.')
        if format_only and outfile_prefix is None:
            raise ValueError('CocoMetric: format_only=True needs outfile_prefix, otherwise '
                             'the results json would be written nowhere.')
        if eval_backend not in COCO_EVAL_BACKENDS:
            raise ValueError(f'CocoMetric eval_backend={eval_backend!r}; use one of '
                             f'{COCO_EVAL_BACKENDS}.')
        if metric_items is not None:
            check_metric_items(metric_items)
        self.classwise = classwise
        self.proposal_nums = list(proposal_nums)
        self.iou_thrs = COCO_IOU_THRS.copy() if iou_thrs is None else iou_thrs
        _iou_thr_array(self.iou_thrs)  # fail now on a bad value, not after the test run
        self.metric_items = metric_items
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self.backend_args = backend_args
        self.use_mp_eval = use_mp_eval
        self.eval_backend = 'fast' if use_mp_eval else eval_backend
        self.ann_file = ann_file
        self._coco_api: Optional[COCO] = None
        if ann_file is not None:
            self._coco_api = self._load_ann_file(ann_file, sort_categories)
        # Set by each compute_metrics, as MMDetection's attributes of the same names.
        self.cat_ids: Optional[List[int]] = None
        self.img_ids: Optional[List[int]] = None

    def _load_ann_file(self, ann_file: str, sort_categories: bool) -> COCO:
        try:
            with get_local_path(ann_file, backend_args=self.backend_args) as local_path:
                coco = load_coco(local_path)
        except FileNotFoundError as err:
            raise FileNotFoundError(f'CocoMetric ann_file not found: {ann_file!r}') from err
        if sort_categories:
            coco.dataset['categories'] = sorted(coco.dataset['categories'], key=lambda c: c['id'])
            coco.cats = {cat['id']: cat for cat in coco.dataset['categories']}
        return coco

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each sample's predictions (and, without ann_file, its ground truth).

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): ``DetDataSample.to_dict()``s with
                ``img_id``, ``ori_shape`` (h, w) and ``pred_instances``
                (``bboxes`` (N, 4) in original-image pixels, ``scores``,
                ``labels``; optionally ``masks`` (N, H, W), kept as COCO RLE,
                and ``mask_scores`` (N,)).
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred = sample['pred_instances']
            result = dict(img_id=sample['img_id'],
                          bboxes=to_numpy(pred['bboxes']).reshape(-1, 4),
                          scores=to_numpy(pred['scores']).reshape(-1),
                          labels=to_numpy(pred['labels']).reshape(-1))
            if 'masks' in pred:
                masks = pred['masks']
                result['masks'] = (encode_mask_results(to_numpy(masks))
                                   if isinstance(masks, (torch.Tensor, np.ndarray)) else masks)
            if 'mask_scores' in pred:
                result['mask_scores'] = to_numpy(pred['mask_scores']).reshape(-1)
            gt = dict(img_id=sample['img_id'], height=sample['ori_shape'][0],
                      width=sample['ori_shape'][1])
            if self._coco_api is None:
                gt.update(gt_from_sample(sample, 'CocoMetric with ann_file=None',
                                         with_masks='segm' in self.metrics))
            self.results.append((gt, result))

    def _class_names(self) -> Optional[List[str]]:
        meta = self.dataset_meta or {}
        classes = meta.get('classes')
        return None if classes is None else list(classes)

    def _ground_truth(self, gts: Sequence[dict]) -> COCO:
        """The ann file's COCO, or one built from the samples' ground truth.

        The built one is also written to ``<outfile_prefix>.gt.json`` when an
        ``outfile_prefix`` is set, as MMDetection does.
        """
        if self._coco_api is not None:
            return self._coco_api
        classes = self._class_names()
        if classes is None:
            raise ValueError("CocoMetric with ann_file=None needs dataset_meta['classes'] "
                             '(set by the runner from the dataset) to name categories.')
        dataset = gt_to_coco_dict(gts, classes)
        if self.outfile_prefix is not None:
            gt_file = f'{self.outfile_prefix}.gt.json'
            dump_atomic(dict(info=dict(description='COCO json converted by detlab CocoMetric'),
                             licenses=None, **dataset), gt_file)
            print_log(f'CocoMetric: ground truth converted to {gt_file}', logger='current')
        return coco_from_dict(dataset)

    def _category_ids(self, coco: COCO) -> List[int]:
        """The COCO category id of each label, as MMDetection numbers labels.

        Label ``i`` is the ``i``-th category of the file (file order) whose
        name is in ``dataset_meta['classes']``; without classes, every
        category in file order.
        """
        classes = self._class_names()
        if classes is None:
            return coco.getCatIds()
        cat_ids = coco.getCatIds(catNms=classes)
        if not cat_ids:
            source = self.ann_file or 'the ground truth built from the samples'
            raise ValueError(
                f'CocoMetric: none of the dataset classes {classes[:10]} is a category of '
                f'{source!r}; its category names are '
                f'{[c["name"] for c in coco.dataset["categories"]][:20]}.')
        return cat_ids

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """COCO box AP (or proposal recall) over every processed image.

        Args:
            results (list): ``(gt, prediction)`` pairs from ``process``.

        Returns:
            dict[str, float]: ``bbox_mAP``, ``bbox_mAP_50``, ... or ``AR@100``
            ... (the evaluator adds the ``coco/`` prefix); empty when
            format_only.
        """
        gts, preds = zip(*results) if results else ((), ())
        coco_gt = self._ground_truth(gts)
        self.cat_ids = self._category_ids(coco_gt)
        self.img_ids = coco_gt.getImgIds()
        detections = detections_from_results(preds, self.cat_ids)
        segm_results = None
        if preds and all('masks' in pred for pred in preds):
            segm_results = segm_results_to_coco_json(preds, self.cat_ids)
        if self.outfile_prefix is not None:
            out_file = f'{self.outfile_prefix}.bbox.json'
            dump_atomic(detections.to_coco_json(), out_file)
            if segm_results is not None:
                dump_atomic(segm_results, f'{self.outfile_prefix}.segm.json')
            print_log(f'CocoMetric: results are saved to {out_file}', logger='current')
        eval_results: Dict[str, float] = OrderedDict()
        if self.format_only:
            return eval_results
        for metric in self.metrics:
            if metric == 'proposal_fast':
                eval_results.update(self._fast_recall(coco_gt, preds))
                continue
            iou_thrs = _iou_thr_array(self.iou_thrs)
            if metric == 'segm':
                if segm_results is None:
                    raise KeyError('CocoMetric metric segm needs pred_instances.masks in every '
                                   'sample; the model predicted boxes only.')
                result = evaluate_segm(coco_gt, segm_results, self.cat_ids,
                                       img_ids=self.img_ids, iou_thrs=iou_thrs,
                                       max_dets=self.proposal_nums)
            else:
                result = evaluate_bbox(coco_gt, detections, self.cat_ids, img_ids=self.img_ids,
                                       iou_thrs=iou_thrs, max_dets=self.proposal_nums,
                                       use_cats=metric == 'bbox', backend=self.eval_backend)
            print_log(f'Evaluating {metric}...\n' + result.summary.rstrip(), logger='current')
            if metric == 'proposal':
                eval_results.update(stats_to_dict(result.stats,
                                                  self.metric_items or PROPOSAL_ITEMS, prefix=''))
                continue
            if self.classwise:
                eval_results.update(self._classwise(coco_gt, result.eval['precision'], iou_thrs))
            eval_results.update(stats_to_dict(result.stats, self.metric_items,
                                              prefix=f'{metric}_'))
            print_log(f'{metric}_mAP_copypaste: ' +
                      ' '.join(f'{ap:.3f}' for ap in result.stats[:6]), logger='current')
        return eval_results

    def _classwise(self, coco_gt: COCO, precision: np.ndarray,
                   iou_thrs: np.ndarray) -> Dict[str, float]:
        """Log the per-class AP table; return ``<name>_precision`` per class.

        COCOeval orders its category axis by sorted id, whatever the label
        order, so each label's row is looked up by its category id and named
        by that category's own name.
        """
        class_ap = per_class_ap(precision, iou_thrs)
        row_of_cat = {cat_id: row for row, cat_id in enumerate(sorted(set(self.cat_ids)))}
        names = [coco_gt.cats[cat_id]['name'] for cat_id in self.cat_ids]
        rows = class_ap[[row_of_cat[cat_id] for cat_id in self.cat_ids]]
        print_log('\n' + per_class_table(names, rows), logger='current')
        return {f'{name}_precision': round(float(ap), DECIMALS)
                for name, ap in zip(names, rows[:, 0])}

    def _fast_recall(self, coco_gt: COCO, preds: Sequence[dict]) -> Dict[str, float]:
        """``AR@n``: recall of the top-n boxes averaged over ``iou_thrs``
        (crowd and ``ignore`` gt boxes left out), as MMDetection's proposal_fast."""
        gt_boxes = []
        by_image = {pred['img_id']: pred for pred in preds}
        for img_id in self.img_ids:
            anns = [a for a in coco_gt.imgToAnns.get(img_id, [])
                    if not a.get('iscrowd', 0) and not a.get('ignore', False)]
            gt_boxes.append(np.array([[x, y, x + w, y + h] for x, y, w, h in
                                      (a['bbox'] for a in anns)], np.float32).reshape(-1, 4))
        proposals = [np.hstack([by_image[img]['bboxes'], by_image[img]['scores'][:, None]])
                     if img in by_image else np.zeros((0, 5)) for img in self.img_ids]
        recalls = eval_recalls(gt_boxes, proposals, self.proposal_nums,
                               _iou_thr_array(self.iou_thrs), logger='current')
        return {f'AR@{num}': float(ar) for num, ar in zip(self.proposal_nums,
                                                          recalls.mean(axis=1))}


def _iou_thr_array(iou_thrs: Union[float, Sequence[float]]) -> np.ndarray:
    """``iou_thrs`` (a float or a sequence) as a (T,) float64 array in [0, 1].

    Raises:
        ValueError: naming the value when it is empty or outside [0, 1].
    """
    array = np.asarray(iou_thrs, dtype=np.float64).reshape(-1)
    if array.size == 0 or ((array < 0) | (array > 1)).any():
        raise ValueError(f'CocoMetric iou_thrs must be IoU values in [0, 1], got {iou_thrs!r}.')
    return array
