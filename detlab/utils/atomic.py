"""Write files so that readers see either the old file or the whole new one."""
import os
import os.path as osp
import tempfile
from typing import Callable

import cv2
import mmcv
import numpy as np


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it.

    A crash or an exception mid-write leaves ``path`` as it was and no
    temporary file behind.
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(prefix='.tmp_', suffix=osp.splitext(path)[1],
                                        dir=directory)
    os.close(handle)
    try:
        write(tmp_path)
        os.chmod(tmp_path, default_file_mode())  # mkstemp makes 0600 files
        os.replace(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


def imwrite_atomic(img: np.ndarray, path: str) -> None:
    """Encode ``img`` (BGR, or grey) in the format ``path``'s extension names, atomically.

    Raises:
        ValueError: Naming ``path`` when cv2 has no encoder for its extension.
        OSError: Naming ``path`` when cv2 cannot encode the image in that format.
    """
    if not cv2.haveImageWriter(path):
        raise ValueError(f"cannot write the image '{path}': OpenCV has no encoder for "
                         f"'{osp.splitext(path)[1]}'; use an extension such as .png or .jpg.")

    def write(tmp_path: str) -> None:
        if not mmcv.imwrite(img, tmp_path):
            raise OSError(f"could not encode a {img.shape} {img.dtype} image as "
                          f"'{osp.splitext(path)[1]}' for '{path}'")

    atomic_write(path, write)
