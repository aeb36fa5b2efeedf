"""XMLDataset: Pascal VOC style annotations, one XML file per image."""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Optional

import mmcv
import numpy as np
from mmengine.fileio import exists, get, get_local_path, list_from_file

from detlab.registry import DATASETS
from .base_det_dataset import BaseDetDataset


class _BadXML(ValueError):
    """What is wrong with one XML file; the loader names the file."""


def _text(node: ET.Element, path: str) -> str:
    """Text of the child at ``path``, or a :class:`_BadXML` naming the missing tag."""
    child = node.find(path)
    if child is None or child.text is None or not child.text.strip():
        raise _BadXML(f'has no <{path}>')
    return child.text.strip()


def _number(node: ET.Element, path: str) -> float:
    text = _text(node, path)
    try:
        value = float(text)
    except ValueError:
        raise _BadXML(f'<{path}> is {text!r}, not a number') from None
    if not np.isfinite(value):
        raise _BadXML(f'<{path}> is {text!r}, not a finite number')
    return value


@DATASETS.register_module()
class XMLDataset(BaseDetDataset):
    """Detection data in Pascal VOC's XML layout.

    ``ann_file`` lists image ids, one per line; image ``ID`` is
    ``{sub_data_root}/{img_subdir}/ID.jpg`` and its annotation
    ``{sub_data_root}/{ann_subdir}/ID.xml``, where ``sub_data_root`` is
    ``data_prefix['sub_data_root']`` (joined with ``data_root``). Labels are
    the indices of the object names in ``metainfo['classes']``; objects of
    other names are left out. Coordinates are 1-based in VOC, so 1 is
    subtracted (``int(float(text)) - 1``, as MMDetection does), and boxes
    reaching past the image are clipped to it.

    ``difficult`` objects, and with ``filter_cfg=dict(bbox_min_size=N)``
    boxes under ``N`` pixels wide or high, get ``ignore_flag=1``. A missing or
    malformed XML, a box of zero or negative size or wholly outside its image
    is bad input (see :class:`BaseDetDataset`'s ``skip_bad_samples``; a bad
    XML drops its image, a bad box only that object).

    Args:
        img_subdir (str): Folder of the images. Defaults to ``'JPEGImages'``.
        ann_subdir (str): Folder of the XML files. Defaults to ``'Annotations'``.
        **kwargs: :class:`BaseDetDataset` arguments.
    """

    def __init__(self, img_subdir: str = 'JPEGImages', ann_subdir: str = 'Annotations',
                 **kwargs) -> None:
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        super().__init__(**kwargs)

    @property
    def sub_data_root(self) -> str:
        """The folder holding ``img_subdir`` and ``ann_subdir``."""
        return self.data_prefix.get('sub_data_root', '')

    @property
    def bbox_min_size(self) -> Optional[int]:
        """Boxes smaller than this (either side) are ignored; from ``filter_cfg``."""
        return None if self.filter_cfg is None else self.filter_cfg.get('bbox_min_size')

    def load_data_list(self) -> List[dict]:
        """Read the id list and every image's XML.

        Returns:
            list[dict]: ``dict(img_path, img_id, xml_path, height, width,
            instances)`` per usable image.
        """
        classes = self._metainfo.get('classes')
        if not classes:
            raise ValueError(f'{self.name}: metainfo has no classes; give '
                             'metainfo=dict(classes=(...)).')
        self.cat2label = {name: label for label, name in enumerate(classes)}
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f"{type(self).__name__}: image id list '{osp.abspath(self.ann_file)}' does not "
                f"exist (ann_file joined with data_root='{self.data_root}').")
        img_ids = [line.strip() for line in
                   list_from_file(self.ann_file, backend_args=self.backend_args)]
        data_list = []
        for img_id in filter(None, img_ids):
            xml_path = osp.join(self.sub_data_root, self.ann_subdir, f'{img_id}.xml')
            img_info = dict(img_id=img_id, xml_path=xml_path,
                            file_name=osp.join(self.img_subdir, f'{img_id}.jpg'))
            try:
                data_list.append(self.parse_data_info(img_info))
            except _BadXML as error:
                self.bad_samples.bad(str(error), [f"XML '{xml_path}'"])
        return data_list

    def parse_data_info(self, img_info: dict) -> dict:
        """Parse one image's XML.

        Args:
            img_info (dict): ``img_id``, ``file_name`` (relative to
                ``sub_data_root``) and ``xml_path``.

        Returns:
            dict: The image's data info.
        """
        img_path = osp.join(self.sub_data_root, img_info['file_name'])
        xml_path = img_info['xml_path']
        if not exists(xml_path, backend_args=self.backend_args):
            raise _BadXML('does not exist')
        with get_local_path(xml_path, backend_args=self.backend_args) as local_path:
            try:
                root = ET.parse(local_path).getroot()
            except ET.ParseError as error:
                raise _BadXML(f'is not well-formed XML ({error})') from None
        width, height = self._image_size(root, img_path)
        return dict(img_path=img_path, img_id=img_info['img_id'], xml_path=xml_path,
                    height=height, width=width,
                    instances=self._parse_instance_info(root, xml_path, width, height))

    def _image_size(self, root: ET.Element, img_path: str) -> tuple:
        """(width, height) from <size>, or from the image where <size> is absent or zero."""
        size = root.find('size')
        if size is not None:
            width, height = int(_number(size, 'width')), int(_number(size, 'height'))
            if width > 0 and height > 0:
                return width, height
        try:
            img = mmcv.imfrombytes(get(img_path, backend_args=self.backend_args))
        except (OSError, ValueError):
            img = None
        if img is None:
            raise _BadXML(f"has no usable <size>, and its image '{img_path}' cannot be read")
        return img.shape[1], img.shape[0]

    def _parse_instance_info(self, root: ET.Element, xml_path: str, width: int,
                             height: int) -> List[dict]:
        """The objects of known classes; bad boxes go to ``bad_samples``."""
        instances = []
        for index, obj in enumerate(root.findall('object')):
            name = obj.find('name')
            name = None if name is None or name.text is None else name.text.strip()
            if name not in self.cat2label:
                continue
            where = f"XML '{xml_path}' object {index} ({name})"
            try:
                corners = [int(_number(obj, f'bndbox/{tag}')) - 1
                           for tag in ('xmin', 'ymin', 'xmax', 'ymax')]
            except _BadXML as error:
                self.bad_samples.bad(str(error), [where])
                continue
            x1, y1, x2, y2 = corners
            if x2 <= x1 or y2 <= y1:
                self.bad_samples.bad('has a box of zero or negative width or height '
                                     f'(xmin..xmax {x1 + 1}..{x2 + 1}, ymin..ymax '
                                     f'{y1 + 1}..{y2 + 1})', [where])
                continue
            clipped = [min(max(x1, 0), width), min(max(y1, 0), height),
                       min(max(x2, 0), width), min(max(y2, 0), height)]
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                self.bad_samples.bad(f'has a box wholly outside its {width}x{height} image',
                                     [where])
                continue
            if clipped != corners:
                self.bad_samples.dropped('boxes reaching outside their image, clipped to it',
                                         [where])
            difficult = obj.find('difficult')
            ignore = difficult is not None and difficult.text is not None and \
                difficult.text.strip() not in ('', '0')
            if self.bbox_min_size is not None:
                if self.test_mode:
                    raise ValueError(f'{self.name}: filter_cfg bbox_min_size is for training; '
                                     'remove it from the test_mode dataset.')
                box_w, box_h = x2 - x1, y2 - y1
                ignore = ignore or box_w < self.bbox_min_size or box_h < self.bbox_min_size
            instances.append(dict(ignore_flag=int(ignore), bbox=clipped,
                                  bbox_label=self.cat2label[name]))
        return instances
