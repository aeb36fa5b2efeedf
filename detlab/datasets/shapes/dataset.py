"""ShapesDataset: the built-in shapes data, generated on first use."""
import os.path as osp
from typing import Optional

from detlab.registry import DATASETS
from ..coco import CocoDataset
from ..metainfo import distinct_palette
from .generator import SHAPE_CLASSES
from .writer import default_split_args, generate_shapes, shapes_ann_file


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """Circles, rectangles and triangles on cluttered backgrounds, in COCO format.

    On first use (construction, or the first access when ``lazy_init``) the
    split is generated into ``data_root`` unless it is already there with the
    same parameters; see :func:`generate_shapes`. Everything else is
    :class:`CocoDataset`.

    Args:
        split (str): ``'train'`` (2000 images, seed 0 by default), ``'val'``
            (200 images, seed 1) or another name with explicit size and seed.
        num_images (int, optional): Overrides the split's default size.
        seed (int, optional): Overrides the split's default seed.
        generator_cfg (dict, optional): More :func:`generate_shapes` arguments
            (``img_format`` and :class:`ShapesParams` fields).
        data_root (str): Where the data lives. Defaults to ``'data/shapes/'``.
        ann_file (str): Defaults to ``'annotations/instances_{split}.json'``;
            if given, must name that file.
        data_prefix (dict, optional): Defaults to ``dict(img='{split}/')``; if
            given, must name that folder.
        **kwargs: :class:`CocoDataset` arguments.
    """

    METAINFO = {'classes': SHAPE_CLASSES, 'palette': distinct_palette(len(SHAPE_CLASSES))}

    def __init__(self,
                 split: str = 'train',
                 num_images: Optional[int] = None,
                 seed: Optional[int] = None,
                 generator_cfg: Optional[dict] = None,
                 data_root: str = 'data/shapes/',
                 ann_file: str = '',
                 data_prefix: Optional[dict] = None,
                 **kwargs) -> None:
        self.split = split
        self.generator_args = dict(default_split_args(split, num_images, seed),
                                   **(generator_cfg or {}))
        expected_ann = osp.relpath(shapes_ann_file('.', split))
        ann_file = ann_file or expected_ann
        data_prefix = dict(img=f'{split}/') if data_prefix is None else dict(data_prefix)
        self._check_layout(data_root, ann_file, expected_ann, data_prefix)
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _check_layout(self, data_root: str, ann_file: str, expected_ann: str,
                      data_prefix: dict) -> None:
        """The generator writes to fixed places; refuse paths that point elsewhere."""
        def same(path: str, expected: str) -> bool:
            return osp.normpath(osp.join(data_root, path)) == osp.normpath(
                osp.join(data_root, expected))

        if not same(ann_file, expected_ann):
            raise ValueError(f"ShapesDataset(split='{self.split}'): ann_file='{ann_file}' is not "
                             f"where the generator writes; use '{expected_ann}' (relative to "
                             f"data_root='{data_root}') or leave ann_file out.")
        if not same(data_prefix.get('img', ''), self.split):
            raise ValueError(f"ShapesDataset(split='{self.split}'): data_prefix={data_prefix} "
                             f"is not where the generator writes; use dict(img='{self.split}/') "
                             f'or leave data_prefix out.')

    def full_init(self) -> None:
        """Generate the split if needed, then load it like any COCO data set."""
        if self._fully_initialized:
            return
        generate_shapes(self.data_root, self.split, **self.generator_args)
        super().full_init()
