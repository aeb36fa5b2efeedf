"""DetTTAModel: detections of several augmented views of each image merged into one, as
MMDetection's (``tools/test.py --tta``, ``tta_model`` and ``tta_pipeline`` in a config)."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.models.layers.bbox_nms import batched_nms
from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.bbox.transforms import bbox_flip


@MODELS.register_module()
class DetTTAModel(BaseTTAModel):
    """Merge the detections of a detector on the views that ``TestTimeAug``
    makes of each image (resized and flipped ones).

    Each view's boxes, already in the original image's pixels, are flipped back
    where the view was flipped; the views' boxes, scores and labels are pooled
    and NMS within classes (``tta_cfg.nms``) keeps at most
    ``tta_cfg.max_per_img``.

    Args:
        module (dict | nn.Module): The detector.
        tta_cfg (dict): ``nms`` (as a head's ``test_cfg.nms``) and ``max_per_img``.
        data_preprocessor (dict, optional): Unused by the merge; passed to mmengine.
    """

    def __init__(self, tta_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if tta_cfg is None or 'nms' not in tta_cfg or 'max_per_img' not in tta_cfg:
            raise ValueError('DetTTAModel: tta_cfg needs nms and max_per_img, e.g. '
                             "dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100); "
                             f'got {tta_cfg!r}')
        self.tta_cfg = tta_cfg

    def merge_aug_bboxes(self, aug_bboxes: Sequence[Tensor], aug_scores: Optional[Sequence[Tensor]],
                         img_metas: Sequence[dict]):
        """Pool the views' boxes, flipped back to the original image.

        Args:
            aug_bboxes (list[Tensor]): (n_i, 4) boxes of each view, in the
                original image's pixels.
            aug_scores (list[Tensor], optional): (n_i,) scores of each view.
            img_metas (list[dict]): ``ori_shape``, ``flip``, ``flip_direction``
                of each view.

        Returns:
            Tensor | tuple[Tensor, Tensor]: (N, 4) boxes, and with scores (N,) scores.
        """
        recovered = []
        for bboxes, meta in zip(aug_bboxes, img_metas):
            if meta.get('flip', False):
                bboxes = bbox_flip(bboxes, meta['ori_shape'], meta['flip_direction'])
            recovered.append(bboxes)
        bboxes = torch.cat(recovered, dim=0)
        if aug_scores is None:
            return bboxes
        return bboxes, torch.cat(list(aug_scores), dim=0)

    def merge_preds(self, data_samples_list: List[List[DetDataSample]]) -> List[DetDataSample]:
        """One merged sample per image from its views' samples (outer list: images)."""
        return [self._merge_single_sample(samples) for samples in data_samples_list]

    def _merge_single_sample(self, data_samples: List[DetDataSample]) -> DetDataSample:
        if any(sample.pred_instances.get('masks', None) is not None for sample in data_samples):
            raise NotImplementedError('DetTTAModel merges boxes only; instance masks are not '
                                      'supported by test-time augmentation.')
        preds = [sample.pred_instances for sample in data_samples]
        bboxes, scores = self.merge_aug_bboxes([p.bboxes for p in preds],
                                               [p.scores for p in preds],
                                               [sample.metainfo for sample in data_samples])
        labels = torch.cat([p.labels for p in preds], dim=0)
        merged = data_samples[0]
        if bboxes.numel() == 0:
            return merged
        dets, keep = self._nms(bboxes, scores, labels)
        merged.pred_instances = InstanceData(bboxes=dets[:, :-1], scores=dets[:, -1],
                                             labels=labels[keep])
        return merged

    def _nms(self, bboxes: Tensor, scores: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        dets, keep = batched_nms(bboxes, scores, labels, self.tta_cfg['nms'])
        max_per_img = self.tta_cfg['max_per_img']
        return dets[:max_per_img], keep[:max_per_img]
