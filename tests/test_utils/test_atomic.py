"""Files are replaced whole or not at all: atomic_write and imwrite_atomic."""
import os

import cv2
import numpy as np
import pytest

from detlab.utils.atomic import atomic_write, imwrite_atomic


def test_image_is_written_in_the_format_of_its_extension(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
    imwrite_atomic(img, str(tmp_path / 'sub' / 'out.png'))
    assert np.array_equal(cv2.imread(str(tmp_path / 'sub' / 'out.png')), img)  # lossless
    assert os.listdir(tmp_path / 'sub') == ['out.png']


def test_failed_writes_keep_the_old_file_and_leave_no_temporary(tmp_path):
    target = tmp_path / 'out.png'
    target.write_bytes(b'old')

    def half_then_fail(tmp_path_):
        with open(tmp_path_, 'wb') as file:
            file.write(b'half')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        atomic_write(str(target), half_then_fail)
    with pytest.raises(ValueError, match=r"out.xyz': OpenCV has no encoder for '.xyz'"):
        imwrite_atomic(np.zeros((4, 4, 3), np.uint8), str(tmp_path / 'out.xyz'))
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['out.png']
