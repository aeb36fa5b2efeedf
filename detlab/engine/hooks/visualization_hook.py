"""DetVisualizationHook: draws predictions during validation and testing."""
import os.path as osp
import warnings
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist
from mmengine.visualization import Visualizer

from detlab.registry import HOOKS
from detlab.structures import DetDataSample


@HOOKS.register_module()
class DetVisualizationHook(Hook):
    """Draw predictions on the original images, as mmdet's hook of this name.

    Validation draws the first sample of every ``interval``-th batch and adds
    it to the visualizer's backends (so it reaches TensorBoard). Testing draws
    every sample; with ``test_out_dir`` each lands in
    ``{work_dir}/{timestamp}/{test_out_dir}/{basename of img_path}``.

    Args:
        draw (bool): Draw at all. Defaults to False.
        interval (int): Validation iterations between drawings. Defaults to 50.
        score_thr (float): Draw predictions scoring above this. Defaults to 0.3.
        show (bool): Show each image in a window (disables the backends).
        wait_time (float): Seconds a shown window stays. Defaults to 0.
        test_out_dir (str, optional): Folder under ``{work_dir}/{timestamp}``
            for the test images.
        backend_args (dict, optional): mmengine file backend to read images.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 score_thr: float = 0.3,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'DetVisualizationHook interval must be a positive int, '
                             f'got {interval!r}.')
        self._visualizer: Visualizer = Visualizer.get_current_instance()
        self.interval = interval
        self.score_thr = score_thr
        self.show = show
        if self.show:
            # a window per image is for looking, not logging: keep backends quiet
            self._visualizer._vis_backends = {}
            warnings.warn('DetVisualizationHook show=True: the vis backends will not '
                          'store images.')
        self.wait_time = wait_time
        self.backend_args = backend_args
        self.draw = draw
        self.test_out_dir = test_out_dir
        self._test_index = 0

    def _read_rgb(self, img_path: str) -> np.ndarray:
        """(H, W, 3) RGB uint8 image from ``img_path``."""
        img = mmcv.imread(img_path, channel_order='rgb', backend_args=self.backend_args)
        if img is None:
            raise FileNotFoundError(f'DetVisualizationHook could not read image {img_path!r}.')
        return img

    def _name(self, img_path: str, default: str) -> str:
        return osp.basename(img_path) if self.show else default

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        """Draw the first sample of every ``interval``-th validation batch (rank 0)."""
        if not self.draw or not outputs or not is_main_process():
            return
        total_curr_iter = runner.iter + batch_idx
        if total_curr_iter % self.interval != 0:
            return
        img_path = outputs[0].img_path
        self._visualizer.add_datasample(
            self._name(img_path, 'val_img'), self._read_rgb(img_path), data_sample=outputs[0],
            show=self.show, wait_time=self.wait_time, pred_score_thr=self.score_thr,
            step=total_curr_iter)

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        """Draw every test sample, into ``test_out_dir`` when given.

        mmengine's visualizer draws on rank 0 only, so a multi-process test
        draws the images of rank 0's shard.
        """
        if not self.draw or not is_main_process():
            return
        out_dir = None
        if self.test_out_dir is not None:
            out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(out_dir)
        for data_sample in outputs:
            self._test_index += 1
            img_path = data_sample.img_path
            out_file = None if out_dir is None else osp.join(out_dir, osp.basename(img_path))
            self._visualizer.add_datasample(
                self._name(img_path, 'test_img'), self._read_rgb(img_path),
                data_sample=data_sample, show=self.show, wait_time=self.wait_time,
                pred_score_thr=self.score_thr, out_file=out_file, step=self._test_index)
