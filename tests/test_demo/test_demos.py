"""demo/image_demo.py and demo/video_demo.py on the briefly trained quickstart model."""
import json

import cv2
import numpy as np
import pytest

from helpers import assert_ok, prediction_tolerance, run_tool, tool_device


@pytest.mark.slow
def test_image_demo_writes_drawn_images_and_the_test_tools_boxes(
        quickstart_model, quickstart_test_predictions, tmp_path):
    output = assert_ok(run_tool(
        'demo/image_demo.py', quickstart_model['val_dir'], quickstart_model['config'],
        '--weights', quickstart_model['checkpoint'], '--out-dir', tmp_path, '--device',
        tool_device(), '--pred-score-thr', '0.01', '--batch-size', '1', '--palette', 'random'))
    assert f'Results have been saved at {tmp_path}' in output
    images = quickstart_model['val_images']
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == [i.name for i in images]
    for image in images:
        record = json.loads((tmp_path / 'preds' / f'{image.stem}.json').read_text())
        expected = quickstart_test_predictions[image.name]
        np.testing.assert_allclose(record['bboxes'], expected['bboxes'],
                                   atol=prediction_tolerance()['box'])
        assert record['labels'] == expected['labels']


@pytest.mark.slow
def test_image_demo_no_save_pred(quickstart_model, tmp_path):
    image = quickstart_model['val_images'][0]
    assert_ok(run_tool('demo/image_demo.py', image, quickstart_model['config'], '--weights',
                       quickstart_model['checkpoint'], '--out-dir', tmp_path, '--device', 'cpu',
                       '--no-save-pred'))
    assert (tmp_path / 'vis' / image.name).is_file() and not (tmp_path / 'preds').exists()


def write_video(path, frames: int, size=(160, 120)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 5, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 60, np.uint8)
        cv2.circle(frame, (40 + 20 * i, 60), 20, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()


def read_video(path) -> list:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.mark.slow
def test_video_demo_draws_every_frame(quickstart_model, tmp_path):
    video, out = tmp_path / 'in.mp4', tmp_path / 'out.mp4'
    write_video(video, frames=4)
    output = assert_ok(run_tool('demo/video_demo.py', video, quickstart_model['config'],
                                quickstart_model['checkpoint'], '--out', out, '--device', 'cpu',
                                '--score-thr', '0.0'))
    assert f'saved to {out}' in output
    frames_in, frames_out = read_video(video), read_video(out)
    assert len(frames_out) == len(frames_in) == 4
    assert frames_out[0].shape == frames_in[0].shape
    # Boxes are drawn: the frames differ from the input by far more than codec noise.
    assert np.abs(frames_out[0].astype(int) - frames_in[0].astype(int)).mean() > 5


@pytest.mark.slow
def test_video_demo_missing_video(quickstart_model, tmp_path):
    result = run_tool('demo/video_demo.py', tmp_path / 'none.mp4', quickstart_model['config'],
                      quickstart_model['checkpoint'], '--out', tmp_path / 'o.mp4')
    assert result.returncode != 0 and 'Video not found' in result.stderr
    with pytest.raises(AssertionError):
        assert_ok(result)
