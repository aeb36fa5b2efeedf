"""BaseDetector: the ``forward(inputs, data_samples, mode)`` contract of every detector."""
from abc import ABCMeta, abstractmethod
from typing import List, Union

from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.structures import OptSampleList, SampleList

#: What ``forward`` can be asked for.
FORWARD_MODES = ('loss', 'predict', 'tensor')


class BaseDetector(BaseModel, metaclass=ABCMeta):
    """A detector with mmengine's three forward modes.

    ``'loss'`` -> dict of scalar losses; ``'predict'`` -> list of
    :class:`DetDataSample` with ``pred_instances`` in the original image's
    pixels; ``'tensor'`` -> the head's raw outputs.
    """

    def forward(self, inputs: Tensor, data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[dict, SampleList, tuple]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid forward mode "{mode}"; valid modes are {FORWARD_MODES}.')

    @abstractmethod
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Losses of a batch (B, 3, H, W) with its annotated samples."""

    @abstractmethod
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """The samples, with ``pred_instances`` added."""

    @abstractmethod
    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None) -> tuple:
        """The head's raw outputs."""

    @abstractmethod
    def extract_feat(self, batch_inputs: Tensor) -> tuple:
        """Backbone (and neck) features of a batch."""

    @staticmethod
    def add_pred_to_datasample(data_samples: SampleList,
                               results_list: List[InstanceData]) -> SampleList:
        for data_sample, results in zip(data_samples, results_list):
            data_sample.pred_instances = results
        return data_samples
