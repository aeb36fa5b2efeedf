"""Drawing one image of the built-in shapes data set.

Three classes told apart by shape only: every object's colour is random and
independent of its class, and chosen to contrast with what lies under it.
Backgrounds are colour gradients mixed with smooth colour blobs, with thin
lines, open arcs and specks as clutter, and gaussian noise over everything.
Each image is a pure function of the numpy Generator it is given.
"""
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import List, Tuple

import cv2
import numpy as np

#: Class names, in label order; COCO category id = label + 1.
SHAPE_CLASSES = ('circle', 'rectangle', 'triangle')
CIRCLE, RECTANGLE, TRIANGLE = range(len(SHAPE_CLASSES))

#: Circles may be slight ellipses: minor/major axis ratio at least this.
MIN_CIRCLE_AXIS_RATIO = 0.85
#: Rectangles: shorter/longer side ratio at least this (aspect 0.5..2).
MIN_RECT_SIDE_RATIO = 0.5
#: Triangles: height / base width range, and how far the apex may leave the middle.
TRIANGLE_HEIGHT_RATIO = (0.7, 1.3)
TRIANGLE_APEX_SHIFT = 0.25

#: An object's colour must differ from (most of) the pixels under it by this
#: much (Euclidean distance in 0..255 RGB), well above the added noise.
MIN_CONTRAST = 80.0
#: Colour candidates tried per object, and pixels sampled to judge contrast.
NUM_COLOUR_CANDIDATES = 16
MAX_CONTRAST_SAMPLES = 64
#: Judge contrast at this percentile of distances: a clutter line under the
#: object should not veto an otherwise well-contrasted colour.
CONTRAST_PERCENTILE = 10
#: Vertices of a circle's outline: one per this many degrees (cv2's own polygon for
#: ``cv2.ellipse``), then merged where within ``OUTLINE_TOLERANCE`` px of a line.
OUTLINE_DEGREES_PER_VERTEX = 1
OUTLINE_TOLERANCE = 0.25
#: cv2 draws integer vertices at pixel centres; COCO polygons put pixel i on
#: [i, i + 1], so its centre is at i + 0.5.
PIXEL_CENTRE = 0.5
#: Placement attempts per wanted object before settling for fewer objects.
PLACEMENT_TRIES_PER_OBJECT = 20

#: Background: mixing weight of the blob field, its grid size, noise level.
BLOB_WEIGHT_RANGE = (0.2, 0.6)
BLOB_GRID_RANGE = (2, 5)
NOISE_SIGMA_RANGE = (3.0, 12.0)
#: Clutter counts (inclusive ranges) and sizes; all far from a full object.
NUM_LINES_RANGE = (2, 8)
NUM_SPECKS_RANGE = (5, 30)
MAX_SPECK_RADIUS = 2
NUM_ARCS_RANGE = (0, 3)
ARC_SPAN_DEGREES = (60, 200)
MAX_PIXEL = 255.0
#: Standard-normal quantiles at the centres of 256 equal-probability bins.
#: Looking them up with uniform random bytes samples a finely discretised
#: gaussian several times faster than ``Generator.standard_normal``.
_GAUSSIAN_LEVELS = np.array([NormalDist().inv_cdf((level + 0.5) / 256) for level in range(256)],
                            dtype=np.float32)


@dataclass(frozen=True)
class ShapesParams:
    """What the generator draws; recorded in the annotation file.

    Attributes:
        min_img_side, max_img_side (int): Each image side is drawn from this
            inclusive range independently, so aspect ratios vary.
        min_object_size (int): Smallest side of an object's box, in pixels.
        max_object_fraction (float): Largest side of an object's box as a
            fraction of the image's shorter side.
        min_objects, max_objects (int): Objects per image (inclusive).
        max_hidden_fraction (float): A new object may not cover more than this
            fraction of an earlier object's pixels.
    """

    min_img_side: int = 96
    max_img_side: int = 192
    min_object_size: int = 12
    max_object_fraction: float = 1 / 3
    min_objects: int = 1
    max_objects: int = 8
    max_hidden_fraction: float = 0.4

    def __post_init__(self) -> None:
        if not 0 < self.min_img_side <= self.max_img_side:
            raise ValueError(f'ShapesParams: need 0 < min_img_side <= max_img_side, got '
                             f'{self.min_img_side}, {self.max_img_side}.')
        if self.min_object_size > self.min_img_side * self.max_object_fraction:
            raise ValueError(
                f'ShapesParams: min_object_size={self.min_object_size} does not fit: the '
                f'largest object on the smallest image is min_img_side * max_object_fraction = '
                f'{self.min_img_side * self.max_object_fraction:.1f} px.')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f'ShapesParams: need 1 <= min_objects <= max_objects, got '
                             f'{self.min_objects}, {self.max_objects}.')
        if not 0 <= self.max_hidden_fraction < 1:
            raise ValueError(f'ShapesParams: max_hidden_fraction must be in [0, 1), got '
                             f'{self.max_hidden_fraction}.')

    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        return tuple(field.name for field in fields(cls))


@dataclass
class ShapeObject:
    """One drawn object: class label, tight box (x, y, w, h) of its drawn
    pixels, their count (``area``), how many stay visible in the end, and the
    outline it was drawn from as a flat COCO polygon ``[x0, y0, x1, y1, ...]``
    in image pixels (pixel i spans [i, i + 1]; the whole shape, also where a
    later object covers it)."""

    label: int
    bbox_xywh: Tuple[int, int, int, int]
    area: int
    visible_area: int = 0
    polygon: Tuple[float, ...] = ()


def _randint(rng: np.random.Generator, low: int, high: int) -> int:
    """Integer in the inclusive range [low, high]."""
    return int(rng.integers(low, high + 1))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Colour gradient mixed with smooth colour blobs, (H, W, 3) float32.

    Both fields are drawn on a coarse grid and upsampled by cv2, which is far
    faster than evaluating them per pixel.
    """
    corners = rng.uniform(0, MAX_PIXEL, size=(2, 2, 3)).astype(np.float32)
    gradient = cv2.resize(corners, (width, height), interpolation=cv2.INTER_LINEAR)
    grid_h, grid_w = (_randint(rng, *BLOB_GRID_RANGE) for _ in range(2))
    grid = rng.uniform(0, MAX_PIXEL, size=(grid_h, grid_w, 3)).astype(np.float32)
    blobs = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    weight = rng.uniform(*BLOB_WEIGHT_RANGE)
    mixed = cv2.addWeighted(gradient, 1 - weight, blobs, weight, 0)
    return np.clip(mixed, 0, MAX_PIXEL, out=mixed)


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray, max_extent: int) -> None:
    """Thin lines, open arcs and specks: texture that is never a whole shape.

    All random numbers are drawn in a few vectorised calls; only the cv2
    drawing runs per item.
    """
    height, width = canvas.shape[:2]
    size = np.array([width, height])
    num_lines, num_arcs, num_specks = (
        _randint(rng, *count) for count in (NUM_LINES_RANGE, NUM_ARCS_RANGE, NUM_SPECKS_RANGE))
    colours = rng.uniform(0, MAX_PIXEL, size=(num_lines + num_arcs + num_specks, 3)).tolist()
    ends = (rng.random((num_lines, 2, 2)) * size).astype(int).tolist()
    for (start, end), colour in zip(ends, colours):
        cv2.line(canvas, start, end, colour, 1, cv2.LINE_AA)
    arc_centres = (rng.random((num_arcs, 2)) * size).astype(int).tolist()
    arc_axes = rng.integers(4, max(max_extent // 2, 4) + 1, size=(num_arcs, 2)).tolist()
    arc_angles = rng.uniform((0, 0, ARC_SPAN_DEGREES[0]), (180, 360, ARC_SPAN_DEGREES[1]),
                             size=(num_arcs, 3)).tolist()
    for centre, axes, (angle, start, span), colour in zip(
            arc_centres, arc_axes, arc_angles, colours[num_lines:]):
        cv2.ellipse(canvas, centre, axes, angle, start, start + span, colour, 1, cv2.LINE_AA)
    speck_centres = (rng.random((num_specks, 2)) * size).astype(int).tolist()
    speck_radii = rng.integers(1, MAX_SPECK_RADIUS + 1, size=num_specks).tolist()
    for centre, radius, colour in zip(speck_centres, speck_radii, colours[num_lines + num_arcs:]):
        cv2.circle(canvas, centre, radius, colour, -1)


def _tight(mask: np.ndarray, outline: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The mask cropped to its drawn pixels, and its (k, 2) outline moved with it."""
    x, y, w, h = cv2.boundingRect(mask)
    return mask[y:y + h, x:x + w], outline - (x, y)


def _shape_mask(rng: np.random.Generator, label: int, min_size: int,
                max_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One shape, cropped to its drawn pixels.

    Returns:
        tuple: the filled (h, w) uint8 mask in {0, 1}, and the (k, 2) float
        outline it was drawn from, in the mask's pixels (pixel i spans
        [i, i + 1]).
    """
    if label == CIRCLE:
        major = _randint(rng, min_size, max_size)
        minor = max(min_size, int(round(major * rng.uniform(MIN_CIRCLE_AXIS_RATIO, 1.0))))
        patch = np.zeros((major + 2, major + 2), np.uint8)
        centre = (major + 1) // 2
        angle = rng.uniform(0, 180)
        cv2.ellipse(patch, (centre, centre), (major // 2, minor // 2), angle, 0, 360, 1, -1)
        # cv2.ellipse fills this polygon (it rounds the angle to whole degrees).
        vertices = cv2.ellipse2Poly((centre, centre), (major // 2, minor // 2),
                                    int(round(angle)), 0, 360, OUTLINE_DEGREES_PER_VERTEX)
        vertices = cv2.approxPolyDP(vertices, OUTLINE_TOLERANCE, True).reshape(-1, 2)
        return _tight(patch, vertices + PIXEL_CENTRE)
    if label == RECTANGLE:
        longer = _randint(rng, min_size, max_size)
        shorter = max(min_size, int(round(longer * rng.uniform(MIN_RECT_SIDE_RATIO, 1.0))))
        shape = (longer, shorter) if rng.random() < 0.5 else (shorter, longer)
        height, width = shape
        return np.ones(shape, np.uint8), np.array([[0., 0.], [width, 0.], [width, height],
                                                   [0., height]])
    base = _randint(rng, min_size, max_size)
    low, high = TRIANGLE_HEIGHT_RATIO
    height = _randint(rng, max(min_size, int(base * low)), min(max_size, int(base * high)))
    apex_x = (base - 1) * (0.5 + rng.uniform(-TRIANGLE_APEX_SHIFT, TRIANGLE_APEX_SHIFT))
    points = np.array([[0, height - 1], [base - 1, height - 1], [apex_x, 0]])
    if rng.random() < 0.5:  # point down instead of up
        points[:, 1] = height - 1 - points[:, 1]
    patch = np.zeros((height, base), np.uint8)
    vertices = np.round(points).astype(np.int32)
    cv2.fillPoly(patch, [vertices], 1)
    return _tight(patch, vertices + PIXEL_CENTRE)


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random colour that stands out from ``under``, (P, 3) pixels it will cover."""
    stride = max(1, len(under) // MAX_CONTRAST_SAMPLES)
    sample = under[::stride]
    candidates = rng.uniform(0, MAX_PIXEL, size=(NUM_COLOUR_CANDIDATES, 3)).astype(np.float32)
    distance = np.linalg.norm(candidates[:, None, :] - sample[None], axis=-1)  # (K, P)
    kth = distance.shape[1] * CONTRAST_PERCENTILE // 100
    score = np.partition(distance, kth, axis=1)[:, kth]
    good = np.flatnonzero(score >= MIN_CONTRAST)
    if good.size:
        return candidates[good[0]]
    # Unlucky draw: the channel-wise opposite extreme of the mean is far from it.
    return np.where(sample.mean(axis=0) < MAX_PIXEL / 2, MAX_PIXEL, 0.0).astype(np.float32)


def _place_objects(rng: np.random.Generator, canvas: np.ndarray,
                   params: ShapesParams) -> List[ShapeObject]:
    """Draw 1..max_objects shapes in place; returns them in drawing order."""
    height, width = canvas.shape[:2]
    max_size = int(min(height, width) * params.max_object_fraction)
    wanted = _randint(rng, params.min_objects, params.max_objects)
    owner = np.full((height, width), -1, np.int32)  # index of the object seen at each pixel
    objects: List[ShapeObject] = []
    visible = np.zeros(0, np.int64)  # pixels still visible, per object
    min_visible = 1.0 - params.max_hidden_fraction
    for _ in range(wanted * PLACEMENT_TRIES_PER_OBJECT):
        if len(objects) == wanted:
            break
        label = _randint(rng, 0, len(SHAPE_CLASSES) - 1)
        mask, outline = _shape_mask(rng, label, params.min_object_size, max_size)
        mask = mask.astype(bool)
        box_h, box_w = mask.shape
        if min(box_h, box_w) < params.min_object_size or max(box_h, box_w) > max_size:
            continue  # rasterisation rounded the shape out of the size range
        y0 = _randint(rng, 0, height - box_h)
        x0 = _randint(rng, 0, width - box_w)
        window = np.s_[y0:y0 + box_h, x0:x0 + box_w]
        covered = owner[window][mask]
        hidden = np.bincount(covered[covered >= 0], minlength=len(objects))
        areas = np.array([obj.area for obj in objects], np.int64)
        if np.any(visible - hidden < min_visible * areas):
            continue
        canvas[window][mask] = _contrasting_colour(rng, canvas[window][mask])
        owner[window][mask] = len(objects)
        visible = np.append(visible - hidden, mask.sum())
        polygon = tuple((outline + (x0, y0)).reshape(-1).astype(float).tolist())
        objects.append(ShapeObject(label, (x0, y0, box_w, box_h), int(mask.sum()),
                                   polygon=polygon))
    for obj, visible_area in zip(objects, visible.tolist()):
        obj.visible_area = visible_area
    return objects


def render_shapes_image(rng: np.random.Generator,
                        params: ShapesParams) -> Tuple[np.ndarray, List[ShapeObject]]:
    """Draw one image of the shapes data set.

    Args:
        rng (np.random.Generator): The image's own generator; the output is a
            pure function of its state.
        params (ShapesParams): What to draw.

    Returns:
        tuple: ``(img, objects)``: ``img`` (H, W, 3) uint8; ``objects`` a list of
        :class:`ShapeObject` whose boxes are the tight boxes of the drawn pixels.
    """
    height, width = (_randint(rng, params.min_img_side, params.max_img_side) for _ in range(2))
    canvas = _background(rng, height, width)
    _draw_clutter(rng, canvas, max_extent=int(min(height, width) * params.max_object_fraction))
    objects = _place_objects(rng, canvas, params)
    sigma = rng.uniform(*NOISE_SIGMA_RANGE)
    noise = cv2.LUT(rng.integers(0, 256, size=canvas.shape, dtype=np.uint8),
                    _GAUSSIAN_LEVELS * np.float32(sigma))
    img = cv2.add(canvas, noise)
    # cv2's saturating conversion rounds to nearest and clips to 0..255 in one pass.
    return cv2.convertScaleAbs(np.maximum(img, 0, out=img)), objects
