"""An image's size as its header declares it, read before anything is decoded.

A few hundred kilobytes of PNG or JPEG can declare 30000 x 30000 pixels
(a decompression bomb): decoded, that is 2.5 GiB of BGR pixels and several
times that in the copies a pipeline makes. :func:`check_pixel_limit` reads the
width and height from the header (JPEG and PNG headers directly, other
formats through Pillow's format drivers, which parse the header only; nothing
is decompressed) and refuses an image over the limit with an error naming the
file and its declared size.
"""
import io
import struct
from typing import Optional, Tuple

from PIL import Image

#: detlab's default limit on an image's pixels (width x height): 2**27 =
#: 134,217,728, e.g. 16384 x 8192, 384 MiB as 8-bit BGR. Above every camera
#: photo (a 100-megapixel frame fits) and far below what runs a worker out of
#: memory; OpenCV's own limit (2**30) is reached only after gigabytes are
#: allocated. ``LoadImageFromFile(max_pixels=...)`` raises or lowers it.
DEFAULT_MAX_PIXELS = 2**27
#: Bytes Pillow's drivers look at to recognise a format.
PREFIX_BYTES = 16
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
#: JPEG start-of-frame markers (SOF0-SOF15 less DHT, JPG and DAC), where the size is.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers that stand alone, without a length: TEM, RST0-RST7.
_JPEG_BARE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than the limit allows."""


def _jpeg_size(img_bytes: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) of the first start-of-frame segment of a JPEG, walking
    the marker segments before it; None for anything unusual (Pillow decides)."""
    pos, end = 2, len(img_bytes)
    while pos + 4 <= end:
        if img_bytes[pos] != 0xFF:
            return None
        marker = img_bytes[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_BARE_MARKERS:
            pos += 2
            continue
        length = (img_bytes[pos + 2] << 8) | img_bytes[pos + 3]
        if marker in _JPEG_SOF_MARKERS:
            if length < 8 or pos + 9 > end:
                return None
            height, width = struct.unpack_from('>HH', img_bytes, pos + 5)
            return (width, height) if width and height else None
        if marker in (0xD8, 0xD9, 0xDA) or length < 2:  # no frame before the scan
            return None
        pos += 2 + length
    return None


def _png_size(img_bytes: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG's IHDR chunk, which must come first."""
    if len(img_bytes) < 24 or img_bytes[12:16] != b'IHDR':
        return None
    return struct.unpack_from('>II', img_bytes, 16)


def declared_size(img_bytes: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of an encoded image; None for a format
    Pillow does not know or a header it cannot parse.

    JPEG and PNG, the formats of nearly every dataset, are read directly
    (a few microseconds; Pillow's JPEG driver also parses every APP segment,
    EXIF included, and tries other drivers first: up to 0.7 ms a sample on a
    loaded machine); their sizes equal Pillow's. Anything else, or a JPEG or
    PNG header these readers find unusual, goes to :func:`pillow_declared_size`.
    """
    size = None
    if img_bytes.startswith(b'\xff\xd8\xff'):
        size = _jpeg_size(img_bytes)
    elif img_bytes.startswith(_PNG_SIGNATURE):
        size = _png_size(img_bytes)
    return size if size is not None else pillow_declared_size(img_bytes)


def pillow_declared_size(img_bytes: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) as Pillow's format drivers read it; None for a format
    Pillow does not know or a header it cannot parse.

    Each format driver is asked directly, as ``PIL.Image.open`` does, but
    without Pillow's own decompression-bomb check, so the size of any image
    can be read and judged against detlab's limit.
    """
    prefix = img_bytes[:PREFIX_BYTES]
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept is not None and accept(prefix) is not True:
                continue
            with factory(io.BytesIO(img_bytes), '') as image:
                return image.size
        except (SyntaxError, IndexError, TypeError, ValueError, struct.error, OSError,
                EOFError):
            continue
    return None


def check_pixel_limit(img_bytes: bytes, path: str, max_pixels: Optional[int]) -> None:
    """Raise :class:`ImageTooLargeError` when the image at ``path`` declares more
    than ``max_pixels`` pixels (None: no limit)."""
    if max_pixels is None:
        return
    size = declared_size(img_bytes)
    if size is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image '{path}' declares {width} x {height} = {width * height:,} pixels, more "
            f'than the limit of {max_pixels:,} ({len(img_bytes):,} bytes on disk; a '
            'decompression bomb, or a real image too large to decode safely). Raise the limit '
            "with LoadImageFromFile(max_pixels=...) in the pipeline (DetInferencer(max_pixels="
            '...), demo/image_demo.py --max-pixels) if the image is genuine.')
