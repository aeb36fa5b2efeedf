"""LoadImageFromFile's pixel limit, read from the header before decoding, and URL paths."""
import cv2
import numpy as np
import pytest

from detlab.datasets import CocoDataset
from detlab.datasets.transforms import DEFAULT_MAX_PIXELS, ImageTooLargeError, LoadImageFromFile
from detlab.datasets.transforms.image_size import declared_size

from helpers import write_png_bomb


@pytest.mark.parametrize('ext', ['.jpg', '.png', '.bmp', '.tif', '.webp', '.ppm'])
def test_declared_size_reads_every_common_format(ext):
    ok, encoded = cv2.imencode(ext, np.zeros((30, 40, 3), np.uint8))
    assert ok and declared_size(encoded.tobytes()) == (40, 30)


def test_declared_size_of_unknown_bytes_is_none():
    assert declared_size(b'not an image at all') is None


def test_default_limit_refuses_a_bomb_naming_file_and_size(tmp_path):
    bomb = tmp_path / 'bomb.png'
    write_png_bomb(bomb, 12000, 12000)  # 144 M pixels, 2**27 is 134 M
    assert DEFAULT_MAX_PIXELS == 2**27
    with pytest.raises(ImageTooLargeError) as error:
        LoadImageFromFile()(dict(img_path=str(bomb)))
    assert f"image '{bomb}' declares 12000 x 12000 = 144,000,000 pixels" in str(error.value)


def test_max_pixels_is_a_config_key(tmp_path):
    image = tmp_path / 'x.png'
    write_png_bomb(image, 300, 200)
    with pytest.raises(ImageTooLargeError, match='declares 300 x 200'):
        LoadImageFromFile(max_pixels=59999)(dict(img_path=str(image)))
    assert LoadImageFromFile(max_pixels=60000)(dict(img_path=str(image)))['img'].shape == \
        (200, 300, 3)
    assert LoadImageFromFile(max_pixels=None)(dict(img_path=str(image)))['ori_shape'] == (200, 300)
    with pytest.raises(ValueError, match='max_pixels must be a positive int or None'):
        LoadImageFromFile(max_pixels=0)


def test_opencv_failure_names_the_file(tmp_path):
    """With the limit lifted, OpenCV's own limit (2**30) still refuses 70000 x 70000; the
    error names the file instead of being a bare cv2.error."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data) & 0xffffffff)

    huge = tmp_path / 'huge.png'
    huge.write_bytes(b'\x89PNG\r\n\x1a\n' +
                     chunk(b'IHDR', struct.pack('>IIBBBBB', 70000, 70000, 8, 0, 0, 0, 0)) +
                     chunk(b'IDAT', zlib.compress(b'\x00' * 70001)) + chunk(b'IEND', b''))
    with pytest.raises(FileNotFoundError) as error:
        LoadImageFromFile(max_pixels=None)(dict(img_path=str(huge)))
    assert f"cannot read image '{huge}': backend 'cv2' failed" in str(error.value)
    assert 'CV_IO_MAX_IMAGE_PIXELS' in str(error.value)
    with pytest.raises(ImageTooLargeError, match='declares 70000 x 70000 = 4,900,000,000'):
        LoadImageFromFile()(dict(img_path=str(huge)))


def test_urls_are_refused():
    with pytest.raises(ValueError, match="'http://127.0.0.1:9/x.jpg' is a URL"):
        LoadImageFromFile()(dict(img_path='http://127.0.0.1:9/x.jpg'))


def test_a_bomb_in_a_training_set_is_skipped_under_skip_bad_samples(tmp_path):
    import json
    (tmp_path / 'images').mkdir()
    write_png_bomb(tmp_path / 'images' / 'bomb.png', 12000, 12000)
    cv2.imwrite(str(tmp_path / 'images' / 'ok.png'), np.zeros((30, 40, 3), np.uint8))
    images = [dict(id=1, file_name='bomb.png', width=12000, height=12000),
              dict(id=2, file_name='ok.png', width=40, height=30)]
    anns = [dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 9, 9], area=81, iscrowd=0)
            for i in (1, 2)]
    (tmp_path / 'ann.json').write_text(json.dumps(dict(
        images=images, annotations=anns, categories=[dict(id=1, name='square')])))
    dataset = CocoDataset(data_root=str(tmp_path), ann_file='ann.json',
                          data_prefix=dict(img='images/'), metainfo=dict(classes=('square',)),
                          pipeline=[dict(type='LoadImageFromFile')], skip_bad_samples=True)
    assert dataset.prepare_data(0) is None  # skipped, recorded
    record = dataset._pending_skips[0]
    assert 'declares 12000 x 12000' in str(record) and 'bomb.png' in str(record)
    assert dataset[0]['img_path'].endswith('ok.png')  # another sample drawn in its place
