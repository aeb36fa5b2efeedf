"""DumpDetResults (``tools/test.py --out``) and a safe reader of the files it writes.

The file holds MMDetection 3.x's result format: a list with one dict per
image, the sample's metainfo (``img_id``, ``img_path``, ``ori_shape``,
``scale_factor``, ...) and ``pred_instances`` (``bboxes`` (N, 4) x1, y1, x2, y2
in original-image pixels, ``scores`` (N,), ``labels`` (N,), CPU tensors; and
``masks`` as a list of N COCO RLE dicts for instance segmentation), with the
ground truth removed. MMDetection's offline tools read detlab's files and
:func:`load_det_results` reads MMDetection's, without unpickling anything but
tensors, numpy arrays and plain containers.
"""
import codecs
import io
import os.path as osp
import pickle
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from detlab.utils.checkpoint import CHECKPOINT_SAFE_GLOBALS
from detlab.registry import METRICS
from detlab.structures.mask import encode_mask_results
from detlab.utils.coco_json import read_json
from ..functional.coco_format import dump_atomic

#: Suffixes DumpDetResults writes: MMDetection's pickle, or detlab's json twin.
RESULT_SUFFIXES = ('.pkl', '.pickle', '.json')
#: Ground-truth fields MMDetection drops from each dumped sample.
GT_FIELDS = ('gt_instances', 'ignored_instances', 'gt_panoptic_seg')
#: Prediction fields that hold arrays (tensors in the pickle, lists in json).
PRED_ARRAY_FIELDS = ('bboxes', 'scores', 'labels')


def _to_cpu(value: Any) -> Any:
    """Tensors (in nested dicts, lists and tuples) detached and moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _to_json(value: Any) -> Any:
    """Tensors and numpy arrays/scalars (nested) as plain lists and numbers."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, bytes):  # compressed RLE counts are ASCII
        return value.decode()
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    return value


@METRICS.register_module()
class DumpDetResults(BaseMetric):
    """Collect every sample's predictions and write them, atomically, at the end.

    Args:
        out_file_path (str): A ``.pkl``/``.pickle`` file (MMDetection's format)
            or a ``.json`` file (the same records with lists for tensors).
        collect_device (str): 'cpu' or 'gpu', for gathering across processes.
    """

    def __init__(self, out_file_path: str, collect_device: str = 'cpu') -> None:
        super().__init__(collect_device=collect_device)
        if not out_file_path.endswith(RESULT_SUFFIXES):
            raise ValueError(f'DumpDetResults: out_file_path must end with one of '
                             f'{RESULT_SUFFIXES}, got {out_file_path!r}')
        self.out_file_path = out_file_path

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            record = _to_cpu({key: value for key, value in sample.items()
                              if key not in GT_FIELDS})
            pred = record.get('pred_instances')
            if isinstance(pred, dict) and isinstance(pred.get('masks'), torch.Tensor):
                pred['masks'] = encode_mask_results(pred['masks'].numpy())
            self.results.append(record)

    def compute_metrics(self, results: list) -> dict:
        records = _to_json(results) if self.out_file_path.endswith('.json') else results
        dump_atomic(records, self.out_file_path)
        print_log(f'Predictions of {len(results)} images saved to {self.out_file_path}',
                  logger='current')
        return {}


def _load_storage_from_bytes(data: bytes) -> Any:
    """Stands in for ``torch.storage._load_from_bytes``, which would call
    ``torch.load(weights_only=False)`` on bytes taken from the file."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _qualified_name(entry: Any) -> Tuple[str, Any]:
    if isinstance(entry, tuple):
        obj, name = entry
        return name, obj
    return f'{entry.__module__}.{entry.__qualname__}', entry


#: Every global a result pickle may name, by ``module.name``: numpy's array,
#: scalar and dtype rebuilders and plain containers (the checkpoint allow-list),
#: torch's tensor rebuilders, dtypes and sizes. Anything else is refused.
RESULT_SAFE_GLOBALS: Dict[str, Any] = dict(
    [_qualified_name(entry) for entry in CHECKPOINT_SAFE_GLOBALS],
    **{
        'torch._utils._rebuild_tensor': torch._utils._rebuild_tensor,
        'torch._utils._rebuild_tensor_v2': torch._utils._rebuild_tensor_v2,
        'torch.storage._load_from_bytes': _load_storage_from_bytes,
        'torch.Size': torch.Size,
        'torch.device': torch.device,
        '_codecs.encode': codecs.encode,  # how protocol-2 pickles spell bytes
        'builtins.set': set,
        'builtins.frozenset': frozenset,
        'builtins.slice': slice,
        'builtins.complex': complex,
    },
    **{f'torch.{name}': getattr(torch, name) for name in dir(torch)
       if isinstance(getattr(torch, name, None), torch.dtype)})


class _ResultUnpickler(pickle.Unpickler):
    """An Unpickler that builds only the allow-listed globals."""

    def __init__(self, file: io.BufferedReader, filename: str) -> None:
        super().__init__(file)
        self.filename = filename

    def find_class(self, module: str, name: str) -> Callable:
        found = RESULT_SAFE_GLOBALS.get(f'{module}.{name}')
        if found is None:
            raise pickle.UnpicklingError(
                f'{self.filename} asks for {module}.{name}; a result file may hold only '
                'tensors, numpy arrays/scalars and plain containers, so it is not loaded.')
        return found


def load_det_results(path: str) -> List[dict]:
    """Read a result file of ``tools/test.py --out`` (detlab's or MMDetection's).

    Pickles are read with a restricted Unpickler (``RESULT_SAFE_GLOBALS``);
    nothing else in the file is built, so a crafted file cannot run code.

    Args:
        path (str): A ``.pkl``/``.pickle`` or ``.json`` file.

    Returns:
        list[dict]: One record per image; ``pred_instances`` fields are
        tensors (``bboxes`` float (N, 4), ``scores`` (N,), ``labels`` int64 (N,)).

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the file is not a list of records with
            ``pred_instances`` (the first bad record is named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Result file not found: {path!r}')
    if not path.endswith(RESULT_SUFFIXES):
        raise ValueError(f'Result file {path!r} must end with one of {RESULT_SUFFIXES}.')
    if path.endswith('.json'):
        records = read_json(path, 'Result file')
    else:
        with open(path, 'rb') as file:
            records = _ResultUnpickler(file, path).load()
    if not isinstance(records, list):
        raise ValueError(f'{path!r} holds a {type(records).__name__}, expected a list of '
                         'per-image records as tools/test.py --out writes.')
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get('pred_instances'), dict):
            raise ValueError(f'{path!r}: record {index} has no pred_instances dict '
                             f'(got {type(record).__name__}).')
        pred = record['pred_instances']
        missing = [key for key in PRED_ARRAY_FIELDS if key not in pred]
        if missing:
            raise ValueError(f'{path!r}: record {index} pred_instances lacks {missing}.')
        pred['bboxes'] = torch.as_tensor(pred['bboxes'], dtype=torch.float32).reshape(-1, 4)
        pred['scores'] = torch.as_tensor(pred['scores'], dtype=torch.float32).reshape(-1)
        pred['labels'] = torch.as_tensor(pred['labels'], dtype=torch.int64).reshape(-1)
    return records
