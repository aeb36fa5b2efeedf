"""DumpDetResults: save raw predictions to a file (``tools/test.py --out``)."""
from typing import Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from detlab.registry import METRICS
from ..functional.coco_format import dump_atomic


@METRICS.register_module()
class DumpDetResults(BaseMetric):
    """Collect each image's ``pred_instances`` and write them, atomically, at the end.

    Each record: ``img_id``, ``img_path`` and ``pred_instances`` with ``bboxes``
    (N, 4) x1, y1, x2, y2 in original-image pixels, ``scores`` (N,), ``labels`` (N,).

    Args:
        out_file_path (str): A ``.pkl``/``.pickle`` or ``.json`` file.
        collect_device (str): 'cpu' or 'gpu', for gathering across processes.
    """

    def __init__(self, out_file_path: str, collect_device: str = 'cpu') -> None:
        super().__init__(collect_device=collect_device)
        if not out_file_path.endswith(('.pkl', '.pickle', '.json')):
            raise ValueError(f'out_file_path must end with .pkl, .pickle or .json, '
                             f'got {out_file_path}')
        self.out_file_path = out_file_path

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            arrays = {key: pred[key].cpu().numpy() for key in ('bboxes', 'scores', 'labels')}
            if self._json:
                arrays = {key: value.tolist() for key, value in arrays.items()}
            self.results.append(dict(img_id=sample.get('img_id'),
                                     img_path=sample.get('img_path'), pred_instances=arrays))

    @property
    def _json(self) -> bool:
        return self.out_file_path.endswith('.json')

    def compute_metrics(self, results: list) -> dict:
        dump_atomic(results, self.out_file_path)
        print_log(f'Predictions of {len(results)} images saved to {self.out_file_path}',
                  logger='current')
        return {}
