"""Per-class colours and label font scales for drawing detections."""
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np

Color = Tuple[int, int, int]
#: A palette spec: a list of RGB tuples, one RGB tuple for all classes, a
#: colour name ('red', ...) or 'random' / None for a generated palette.
PaletteSpec = Optional[Union[Sequence[Sequence[int]], Sequence[int], str]]

#: Seed of the generated palette, so a class keeps its colour across runs.
RANDOM_PALETTE_SEED = 42
NUM_CHANNELS = 3
MAX_COLOR_VALUE = 255

#: Label text grows with the box area between these bounds (in pixels^2).
MIN_TEXT_AREA, MAX_TEXT_AREA = 800, 30000
MIN_TEXT_SCALE, MAX_TEXT_SCALE = 0.5, 1.0


def _is_color(value) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == NUM_CHANNELS
            and all(isinstance(c, (int, np.integer)) for c in value))


def get_palette(palette: PaletteSpec, num_classes: int) -> List[Color]:
    """Expand a palette spec into one RGB colour per class.

    Args:
        palette: A list of RGB tuples (one per class), one RGB tuple for every
            class, a colour name understood by ``mmcv.color_val``, or
            ``'random'`` / None for a fixed pseudo-random palette.
        num_classes (int): How many colours are needed.

    Returns:
        list[tuple[int, int, int]]: ``num_classes`` RGB colours (or more, when
        a longer list was given).

    Raises:
        ValueError: if a list palette is shorter than ``num_classes`` or the
            spec is not one of the forms above.
    """
    if palette is None or palette == 'random':
        rng = np.random.RandomState(RANDOM_PALETTE_SEED)
        colors = rng.randint(0, MAX_COLOR_VALUE + 1, size=(num_classes, NUM_CHANNELS))
        return [tuple(int(c) for c in color) for color in colors]
    if isinstance(palette, str):
        try:
            bgr = mmcv.color_val(palette)
        except (AssertionError, KeyError, TypeError) as err:
            raise ValueError(f'Unknown colour name {palette!r}; use an mmcv colour name '
                             f"(e.g. 'red', 'green'), an RGB tuple, a list of RGB tuples "
                             f"or 'random'.") from err
        return [tuple(int(c) for c in bgr[::-1])] * num_classes
    if _is_color(palette):
        return [tuple(int(c) for c in palette)] * num_classes
    if isinstance(palette, (list, tuple)) and all(_is_color(c) for c in palette):
        if len(palette) < num_classes:
            raise ValueError(f'The palette has {len(palette)} colours but labels go up to '
                             f'{num_classes - 1}; give at least {num_classes} colours.')
        return [tuple(int(c) for c in color) for color in palette]
    raise ValueError(f'Invalid palette {palette!r}: expected a list of RGB tuples, an RGB '
                     f"tuple, a colour name or 'random'.")


def adaptive_text_scales(areas: np.ndarray) -> np.ndarray:
    """Scale label text with box area, so small boxes get small labels.

    Args:
        areas (np.ndarray): (N,) box areas in pixels^2.

    Returns:
        np.ndarray: (N,) scales in [0.5, 1.0], linear in area between
        ``MIN_TEXT_AREA`` and ``MAX_TEXT_AREA``.
    """
    span = (MAX_TEXT_SCALE - MIN_TEXT_SCALE) / (MAX_TEXT_AREA - MIN_TEXT_AREA)
    scales = MIN_TEXT_SCALE + (np.asarray(areas, dtype=np.float64) - MIN_TEXT_AREA) * span
    return np.clip(scales, MIN_TEXT_SCALE, MAX_TEXT_SCALE)


#: How far ``jitter_color`` moves a colour, as a fraction of the channel range.
JITTER_SCALE = 0.5


def jitter_color(color: Sequence[int], seed: int = 0) -> Color:
    """A colour near ``color``, so instances of one class can be told apart.

    As MMDetection's ``jitter_color`` (a random unit vector, centred and
    scaled by half the channel range, added and clipped), but drawn from a
    generator seeded with ``seed`` (e.g. the instance index), so the same
    image is drawn the same way every time.
    """
    jitter = np.random.default_rng(seed).random(NUM_CHANNELS)
    jitter = (jitter / np.linalg.norm(jitter) - 0.5) * JITTER_SCALE * MAX_COLOR_VALUE
    jittered = np.clip(jitter + np.asarray(color), 0, MAX_COLOR_VALUE).astype(np.uint8)
    return tuple(int(c) for c in jittered)
