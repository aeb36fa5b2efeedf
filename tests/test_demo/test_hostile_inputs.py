"""demo/image_demo.py and tools/test.py given hostile or careless images, as a user runs
them: names that collide, decompression bombs, URLs."""
import json
import shutil
import socket
import threading
import time

import pytest

from helpers import (QUICKSTART, REPO_ROOT, assert_ok, run_tool, run_tool_peak_rss,
                     write_png_bomb)

pytestmark = pytest.mark.slow

#: Peak memory of image_demo.py or tools/test.py refusing a bomb: the tool's own
#: (torch, the model) with room to spare. Decoding the 30000 x 30000 bomb alone
#: would take 2.5 GiB (grey decoded to BGR), its pipeline copies far more.
PEAK_RSS_BOUND_MIB = 1500


@pytest.fixture(scope='module')
def bomb(tmp_path_factory):
    """A 0.9 MB PNG declaring 30000 x 30000 pixels (900 million, the README's example)."""
    path = tmp_path_factory.mktemp('bomb') / 'bomb.png'
    write_png_bomb(path, 30000, 30000)
    return path


def test_image_demo_keeps_both_predictions_when_stems_collide(quickstart_model, tmp_path):
    source = quickstart_model['val_images'][0]
    images = tmp_path / 'in'
    images.mkdir()
    shutil.copy(source, images / 'x.jpg')
    shutil.copy(source, images / 'x.png')
    shutil.copy(quickstart_model['val_images'][1], images / 'y.jpg')
    out = tmp_path / 'out'
    assert_ok(run_tool('demo/image_demo.py', images, quickstart_model['config'], '--weights',
                       quickstart_model['checkpoint'], '--out-dir', out, '--device', 'cpu',
                       '--pred-score-thr', '0.0'))
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['x.jpg', 'x.png', 'y.jpg']
    # Colliding stems keep the extension; a unique stem keeps MMDetection's <stem>.json.
    preds = sorted(p.name for p in (out / 'preds').iterdir())
    assert preds == ['x.jpg.json', 'x.png.json', 'y.json']
    for name in ('x.jpg.json', 'x.png.json'):
        assert json.loads((out / 'preds' / name).read_text())['bboxes']


def test_image_demo_refuses_a_decompression_bomb_before_decoding_it(bomb, tmp_path):
    result, peak_mib = run_tool_peak_rss(
        'demo/image_demo.py', bomb, 'retinanet_r18_fpn_shapes', '--out-dir', tmp_path,
        '--device', 'cpu', timeout=120)
    assert result.returncode != 0
    assert (f"ImageTooLargeError: image '{bomb}' declares 30000 x 30000 = 900,000,000 pixels, "
            'more than the limit of 134,217,728') in result.stderr
    assert 'max_pixels' in result.stderr and '--max-pixels' in result.stderr
    assert peak_mib < PEAK_RSS_BOUND_MIB


def test_image_demo_max_pixels_lets_a_large_genuine_image_through(tmp_path):
    image = tmp_path / 'wide.png'
    write_png_bomb(image, 3000, 1000)
    result = run_tool('demo/image_demo.py', image, 'retinanet_r18_fpn_shapes', '--out-dir',
                      tmp_path / 'out', '--device', 'cpu', '--max-pixels', '2000000')
    assert result.returncode != 0 and 'declares 3000 x 1000 = 3,000,000 pixels' in result.stderr
    assert_ok(run_tool('demo/image_demo.py', image, 'retinanet_r18_fpn_shapes', '--out-dir',
                       tmp_path / 'out', '--device', 'cpu', '--max-pixels', '3000000'))
    assert (tmp_path / 'out' / 'vis' / 'wide.png').is_file()


def test_tools_test_names_the_bomb_in_its_test_set(quickstart_model, bomb, tmp_path,
                                                   monkeypatch):
    """A COCO test set holding the bomb: tools/test.py stops, naming the file and size,
    without decoding it (test sets never skip images). The tool runs on the CPU, as the
    demo above, so its peak memory holds no CUDA runtime (about a GiB of host memory)."""
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    shutil.copy(bomb, root / 'images' / 'bomb.png')
    (root / 'ann.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='bomb.png', width=30000, height=30000)], annotations=[],
        categories=[dict(id=1, name='circle')])))
    config = tmp_path / 'bomb_test.py'
    config.write_text(
        f"_base_ = '{REPO_ROOT / QUICKSTART}'\n"
        'test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n'
        f"    _delete_=True, type='CocoDataset', data_root='{root}', ann_file='ann.json',\n"
        "    data_prefix=dict(img='images/'), test_mode=True, metainfo=dict(classes=(\n"
        "        'circle', 'rectangle', 'triangle')), pipeline={{_base_.test_pipeline}}))\n"
        f"test_evaluator = dict(ann_file='{root}/ann.json')\n")
    result, peak_mib = run_tool_peak_rss(
        'tools/test.py', config, quickstart_model['checkpoint'], '--work-dir',
        tmp_path / 'work', timeout=180)
    assert result.returncode != 0
    assert f"image '{root}/images/bomb.png' declares 30000 x 30000" in result.stderr
    assert peak_mib < PEAK_RSS_BOUND_MIB


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; it
    stops by itself after ``lifetime`` seconds. ``connections`` counts accepts."""

    def __init__(self, lifetime: float = 60) -> None:
        self.socket = socket.socket()
        self.socket.bind(('127.0.0.1', 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = []
        self.deadline = time.monotonic() + lifetime
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                self.connections.append(self.socket.accept()[0])
            except (socket.timeout, OSError):
                continue
        self.close()

    def close(self) -> None:
        self.deadline = 0
        for connection in self.connections:
            connection.close()
        self.socket.close()


def test_image_demo_refuses_urls_without_connecting(tmp_path):
    server = SilentServer()
    url = f'http://127.0.0.1:{server.port}/img.jpg'
    try:
        started = time.monotonic()
        result = run_tool('demo/image_demo.py', url, 'retinanet_r18_fpn_shapes', '--out-dir',
                          tmp_path, '--device', 'cpu', timeout=120)
        took = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode != 0
    assert (f"'{url}' is a URL: detlab reads images from local files only and downloads "
            'nothing at run time') in result.stderr
    assert not server.connections and took < 100
