from .local_visualizer import DetLocalVisualizer
from .palette import adaptive_text_scales, get_palette, jitter_color

__all__ = ['DetLocalVisualizer', 'get_palette', 'adaptive_text_scales', 'jitter_color']
