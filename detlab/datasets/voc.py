"""VOCDataset: Pascal VOC 2007 / 2012 detection."""
from detlab.registry import DATASETS
from .metainfo import VOC_CLASSES, VOC_PALETTE
from .xml_style import XMLDataset


@DATASETS.register_module()
class VOCDataset(XMLDataset):
    """Pascal VOC, read from its XML annotations (see :class:`XMLDataset`).

    ``metainfo['dataset_type']`` is ``'VOC2007'`` or ``'VOC2012'`` when the
    ``sub_data_root`` names one (the VOC metric picks its AP mode from it),
    else None. VOC2007 + 2012 train together through ``ConcatDataset`` with
    ``ignore_keys=['dataset_type']``, as ``configs/_base_/datasets/voc0712.py``
    does.
    """

    METAINFO = {'classes': VOC_CLASSES, 'palette': VOC_PALETTE}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for year in ('VOC2007', 'VOC2012'):
            if year in self.sub_data_root:
                self._metainfo['dataset_type'] = year
                break
        else:
            self._metainfo['dataset_type'] = None
