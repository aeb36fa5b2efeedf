"""LoadImageFromFile on grey, 16-bit, alpha and EXIF-rotated images, and on truncated files."""
import cv2
import numpy as np
import pytest
from PIL import Image

from detlab.datasets.transforms import LoadImageFromFile
from detlab.datasets.transforms.loading import find_truncation


def load(path, **kwargs):
    return LoadImageFromFile(**kwargs)(dict(img_path=str(path)))


def gradient(height=12, width=20):
    return np.arange(height * width, dtype=np.uint8).reshape(height, width)


def test_grey_png_becomes_three_equal_channels(tmp_path):
    cv2.imwrite(str(tmp_path / 'grey.png'), gradient())
    img = load(tmp_path / 'grey.png')['img']
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    assert all(np.array_equal(img[..., c], gradient()) for c in range(3))


def test_16_bit_png_is_scaled_to_8_bits_or_kept_unchanged(tmp_path):
    deep = (gradient().astype(np.uint16) * 256 + 255)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    img = load(tmp_path / 'deep.png')['img']
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], gradient())  # the high byte survives
    raw = load(tmp_path / 'deep.png', color_type='unchanged')['img']
    assert raw.dtype == np.uint16 and np.array_equal(raw, deep)


def test_alpha_png_drops_alpha(tmp_path):
    bgra = np.zeros((6, 8, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 0  # fully transparent
    cv2.imwrite(str(tmp_path / 'alpha.png'), bgra)
    img = load(tmp_path / 'alpha.png')['img']
    assert img.shape == (6, 8, 3)
    assert img[0, 0].tolist() == [10, 0, 200]


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((10, 30, 3), np.uint8)
    rgb[:, :5] = 255  # a white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: show it turned 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / 'turned.jpg', exif=exif, quality=95)
    results = load(tmp_path / 'turned.jpg')
    img = results['img']
    assert img.shape == (30, 10, 3) and results['ori_shape'] == (30, 10)
    # Turned clockwise, the left band ends up along the top.
    assert img[:4].mean() > 200 and img[8:].mean() < 50


@pytest.mark.parametrize('suffix', ['.jpg', '.png'])
def test_truncated_image_fails_naming_the_file(tmp_path, suffix):
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    path = tmp_path / f'whole{suffix}'
    cv2.imwrite(str(path), img)
    data = path.read_bytes()
    assert find_truncation(data) is None
    assert load(path)['img'].shape == (64, 64, 3)
    cut = tmp_path / f'cut{suffix}'
    cut.write_bytes(data[:len(data) // 2])
    assert find_truncation(cut.read_bytes()) is not None
    with pytest.raises(FileNotFoundError, match=f'cut{suffix}.*truncated'):
        load(cut)


def test_truncation_check_sees_scans_after_an_embedded_end_marker(tmp_path):
    """A JPEG cut inside a later scan, after some end-of-image marker, is still truncated."""
    img = np.random.default_rng(1).integers(0, 255, (96, 96, 3), np.uint8)
    # Progressive: many scans; the cut below falls between two of them.
    Image.fromarray(img).save(tmp_path / 'progressive.jpg', progressive=True, quality=90)
    data = (tmp_path / 'progressive.jpg').read_bytes()
    assert find_truncation(data) is None
    second_scan = data.find(b'\xff\xda', data.find(b'\xff\xda') + 2)
    assert find_truncation(data[:second_scan + 200]) is not None
    # An embedded JPEG (as an EXIF thumbnail is) closes with its own end
    # marker before the main image's scan: cut, the file has no end after it.
    thumbnail = cv2.imencode('.jpg', img[:16, :16])[1].tobytes()
    main = cv2.imencode('.jpg', img)[1].tobytes()
    segment = b'\xff\xe1' + (len(thumbnail) + 2).to_bytes(2, 'big') + thumbnail
    with_thumbnail = main[:2] + segment + main[2:]
    assert find_truncation(with_thumbnail) is None
    assert find_truncation(with_thumbnail[:len(with_thumbnail) - 300]) is not None
