"""Export a dense-head detector to ONNX, box decoding and NMS inside the graph.

``python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx
[--shape H W] [--dynamic] [--opset 17]``

The graph takes ``image``: (1, 3, H, W) float32 pixel values 0-255 in the
channel order images are loaded in (BGR, as ``cv2.imread`` gives), already
resized (and padded) to H x W; it normalises them as the config's
``data_preprocessor`` does. It returns ``boxes`` (N, 4) x1, y1, x2, y2 in the
input's pixels, ``scores`` (N,) and ``labels`` (N,) int64, after the head's
``test_cfg`` (``nms_pre``, ``score_thr``, ``min_bbox_size``, ``nms``,
``max_per_img``). Works for every detector whose ``bbox_head`` is a dense head
with ``prior_generator``, ``bbox_coder`` and sigmoid or softmax classification
that predicts through BaseDenseHead's decode path (RetinaNet, SSD; FCOS/ATSS-style
heads whose third output is a score factor such as centerness); heads with their own
``predict_by_feat`` (YOLOv3) or ``_predict_by_feat_single`` (YOLOX) are refused.
Needs ``pip install -e ".[onnx]"`` to check the result.
"""
import argparse
import os.path as osp
import sys
from typing import List, Sequence, Tuple, Union

import torch
import torchvision
from torch import Tensor, nn

from detlab.apis import init_detector
from detlab.apis.inference import default_input_shape
from detlab.models.dense_heads import BaseDenseHead
from detlab.utils import CfgOptionsAction, atomic_write

#: Names of the graph's input and outputs.
INPUT_NAME = 'image'
OUTPUT_NAMES = ('boxes', 'scores', 'labels')
#: NMS types the graph can hold (ONNX NonMaxSuppression).
EXPORTABLE_NMS = ('nms',)


def topk_count(values: Tensor, k: int) -> Union[int, Tensor]:
    """``min(k, len(values))``, kept symbolic while tracing so a dynamic-shape
    graph stays right for inputs smaller than the traced one."""
    if k <= 0:
        k = sys.maxsize
    if not torch.jit.is_tracing():
        return min(k, values.shape[0])
    length = torch._shape_as_tensor(values)[:1]
    return torch.min(torch.cat([length.new_tensor([min(k, torch.iinfo(torch.int64).max)]),
                                length]))


def dense_head_detections(head: nn.Module, outputs: Sequence[List[Tensor]],
                          img_shape: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Detections of one image from a dense head's raw outputs, in traceable ops.

    The same steps as the head's own prediction (per level: sigmoid scores, or a softmax
    without its background channel,
    top ``nms_pre`` (prior, class) pairs above ``score_thr``, box decoding;
    then score factors, ``min_bbox_size``, class-wise NMS, ``max_per_img``),
    written without data-dependent Python branches.

    Args:
        head (nn.Module): A dense head with ``prior_generator``,
            ``bbox_coder``, ``cls_out_channels`` and ``test_cfg``.
        outputs (sequence of lists): ``head(feats)``: class scores
            (1, A*C, H, W) per level, box predictions (1, A*4, H, W), and
            optionally score factors (1, A, H, W).
        img_shape (Tensor): (2,) height and width to clip boxes to.

    Returns:
        tuple: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,).
    """
    cls_scores, bbox_preds = outputs[0], outputs[1]
    score_factors = outputs[2] if len(outputs) > 2 else [None] * len(cls_scores)
    cfg = head.test_cfg
    nms_cfg = cfg.get('nms')
    if nms_cfg is not None and nms_cfg.get('type', 'nms') not in EXPORTABLE_NMS:
        raise ValueError(f"test_cfg.nms.type={nms_cfg.get('type')!r} cannot go into an ONNX "
                         f'graph; exportable: {EXPORTABLE_NMS}.')
    num_classes = head.cls_out_channels - (0 if head.use_sigmoid_cls else 1)
    box_size = getattr(head.bbox_coder, 'encode_size', 4)
    priors = head.prior_generator.grid_priors([score.shape[-2:] for score in cls_scores],
                                              dtype=cls_scores[0].dtype,
                                              device=cls_scores[0].device)
    all_boxes, all_scores, all_labels = [], [], []
    for cls_score, bbox_pred, factor, level_priors in zip(cls_scores, bbox_preds, score_factors,
                                                          priors):
        logits = cls_score[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        # A softmax classifier's last channel is the background (SSD).
        flat = (logits.sigmoid() if head.use_sigmoid_cls
                else logits.softmax(-1)[:, :num_classes]).reshape(-1)
        deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, box_size)
        scores, pair_index = flat.topk(topk_count(flat, cfg.get('nms_pre', -1)))
        above = scores > cfg.get('score_thr', 0.0)
        scores, pair_index = scores[above], pair_index[above]
        prior_index = torch.div(pair_index, num_classes, rounding_mode='floor')
        if factor is not None:
            scores = scores * factor[0].permute(1, 2, 0).reshape(-1).sigmoid()[prior_index]
        all_boxes.append(head.bbox_coder.decode(level_priors[prior_index], deltas[prior_index]))
        all_scores.append(scores)
        all_labels.append(pair_index % num_classes)
    boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
    if getattr(head.bbox_coder, 'clip_border', True):
        limits = img_shape.flip(0).repeat(2).to(boxes.dtype)  # w, h, w, h
        boxes = torch.max(torch.min(boxes, limits), torch.zeros_like(limits))
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        wide = ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
        boxes, scores, labels = boxes[wide], scores[wide], labels[wide]
    if nms_cfg is not None:
        # Class-wise NMS in one call: boxes of different classes never overlap
        # once shifted apart by the largest coordinate (torchvision's trick);
        # class_agnostic=True suppresses across classes.
        if nms_cfg.get('class_agnostic', False):
            shifted = boxes
        else:
            largest = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
            shifted = boxes + (labels.to(boxes.dtype) * (largest + 1))[:, None]
        keep = torchvision.ops.nms(shifted, scores, nms_cfg.get('iou_threshold', 0.5))
        max_per_img = cfg.get('max_per_img', -1)
        if max_per_img >= 0:  # negative keeps every box, as the head's own prediction
            keep = keep[:max_per_img]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    return boxes, scores, labels


def exports_with_shared_path(head: nn.Module) -> bool:
    """Whether ``head`` is a dense head predicting through BaseDenseHead's decode path
    (class scores, box predictions, optional score factors), which the graph repeats."""
    return (isinstance(head, BaseDenseHead)
            and type(head).predict_by_feat is BaseDenseHead.predict_by_feat
            and type(head)._predict_by_feat_single is BaseDenseHead._predict_by_feat_single)


class DenseDetectorGraph(nn.Module):
    """Normalisation, backbone, neck, dense head and post-processing in one module.

    Args:
        detector (nn.Module): A single-stage detector (``extract_feat``,
            ``bbox_head``, ``data_preprocessor``) in eval mode.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        if not hasattr(detector, 'bbox_head') or hasattr(detector, 'roi_head'):
            raise TypeError(f'{type(detector).__name__} is not a dense-head (single-stage) '
                            'detector; export_onnx.py exports detectors with a bbox_head only.')
        if not isinstance(detector.bbox_head, BaseDenseHead):
            raise TypeError(f'{type(detector.bbox_head).__name__} is not a dense head (the DETR '
                            "family's set-prediction heads decode on their own); export_onnx.py "
                            'exports detectors whose bbox_head is a BaseDenseHead.')
        if not exports_with_shared_path(detector.bbox_head):
            raise TypeError(f'{type(detector.bbox_head).__name__} decodes with its own '
                            'predict_by_feat or _predict_by_feat_single (YOLOv3, YOLOX); '
                            'export_onnx.py exports dense heads that take '
                            "BaseDenseHead's decode path (RetinaNet, FCOS, ATSS, SSD, ...).")
        self.detector = detector
        preprocessor = detector.data_preprocessor
        self.bgr_to_rgb = bool(getattr(preprocessor, '_channel_conversion', False))
        self.normalize = bool(getattr(preprocessor, '_enable_normalize', False))

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(1, 3, H, W) float pixels -> boxes (N, 4), scores (N,), labels (N,)."""
        inputs = image.flip(1) if self.bgr_to_rgb else image
        if self.normalize:
            preprocessor = self.detector.data_preprocessor
            inputs = (inputs - preprocessor.mean) / preprocessor.std
        head = self.detector.bbox_head
        outputs = head(self.detector.extract_feat(inputs))
        return dense_head_detections(head, outputs, torch._shape_as_tensor(image)[2:])


def export(detector: nn.Module, out: str, shape: Tuple[int, int], dynamic: bool = False,
           opset: int = 17) -> None:
    """Trace ``detector`` at ``shape`` (H, W) and write the ONNX graph to ``out`` atomically."""
    graph = DenseDetectorGraph(detector).eval()
    example = torch.zeros(1, 3, *shape)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {INPUT_NAME: {2: 'height', 3: 'width'},
                        **{name: {0: 'num_detections'} for name in OUTPUT_NAMES}}

    def write(tmp_path: str) -> None:
        with torch.no_grad():
            torch.onnx.export(graph, (example,), tmp_path, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_axes=dynamic_axes, do_constant_folding=True)

    atomic_write(out, write)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a dense-head detector to ONNX')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input height and width (default: the test pipeline's Resize)")
    parser.add_argument('--dynamic', action='store_true',
                        help='let height and width vary at run time')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/test.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    detector = init_detector(args.config, args.checkpoint, device='cpu',
                             cfg_options=args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_input_shape(detector.cfg)
    if min(shape) <= 0:
        raise ValueError(f'--shape must be positive, got {shape}.')
    export(detector, args.out, shape, dynamic=args.dynamic, opset=args.opset)
    kind = 'dynamic height/width' if args.dynamic else f'{shape[0]}x{shape[1]}'
    print(f'ONNX model ({kind}, input "{INPUT_NAME}" (1, 3, H, W) BGR 0-255; outputs '
          f'{", ".join(OUTPUT_NAMES)}) saved to {osp.abspath(args.out)}')


if __name__ == '__main__':
    main()
