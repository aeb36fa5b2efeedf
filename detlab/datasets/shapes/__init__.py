"""The built-in shapes data set: generator, writer and ShapesDataset."""
from .dataset import ShapesDataset
from .generator import SHAPE_CLASSES, ShapesParams, render_shapes_image
from .writer import SPLIT_DEFAULTS, generate_shapes, shapes_ann_file

__all__ = ['ShapesDataset', 'SHAPE_CLASSES', 'ShapesParams', 'render_shapes_image',
           'SPLIT_DEFAULTS', 'generate_shapes', 'shapes_ann_file']
