"""DetInferencer's output file names: one drawn image and one prediction per input."""
import numpy as np
import pytest

from detlab.apis.det_inferencer import output_names, refuse_urls


def test_unique_stems_keep_mmdetections_names():
    assert output_names(['a/x.jpg', 'a/y.png']) == [('x.jpg', 'x.json'), ('y.png', 'y.json')]


def test_colliding_stems_keep_the_extension():
    assert output_names(['d/x.jpg', 'd/x.png', 'd/y.jpg']) == [
        ('x.jpg', 'x.jpg.json'), ('x.png', 'x.png.json'), ('y.jpg', 'y.json')]


def test_same_name_in_different_folders_gets_a_number():
    names = output_names(['a/x.jpg', 'b/x.jpg', 'x_1.jpg', np.zeros((2, 2, 3), np.uint8)])
    assert names[:2] == [('x.jpg', 'x.jpg.json'), ('x_1.jpg', 'x.jpg_1.json')]
    assert names[2] == ('x_1_1.jpg', 'x_1_1.json')  # its own name was taken by then
    assert names[3] is None  # arrays are numbered as they are drawn
    files = [name for pair in names[:3] for name in pair]
    assert len(set(files)) == len(files)


@pytest.mark.parametrize('url', ['http://127.0.0.1:1/x.jpg', 'https://host/x.jpg',
                                 's3://bucket/x.jpg'])
def test_urls_are_refused_with_the_url_named(url):
    with pytest.raises(ValueError, match=f"'{url}' is a URL: detlab reads images from local"):
        refuse_urls(['local.jpg', url])
