"""An image's size as its header declares it, read before anything is decoded.

A few hundred kilobytes of PNG or JPEG can declare 30000 x 30000 pixels
(a decompression bomb): decoded, that is 2.5 GiB of BGR pixels and several
times that in the copies a pipeline makes. :func:`check_pixel_limit` reads the
width and height from the header (Pillow's format drivers parse the header
only; nothing is decompressed) and refuses an image over the limit with an
error naming the file and its declared size.
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


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than the limit allows."""


def declared_size(img_bytes: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of an encoded image; None for a format
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
