"""Detect objects in a video and write it with the boxes drawn (OpenCV).

``python demo/video_demo.py VIDEO CONFIG CHECKPOINT --out OUT.mp4 [--score-thr 0.3]
[--device cpu] [--show] [--wait-time 1]``
"""
import argparse
import os.path as osp
from typing import Iterator

import cv2
import numpy as np

from detlab.apis import inference_detector, init_detector
from detlab.apis.det_inferencer import build_visualizer
from detlab.apis.inference import build_test_pipeline
from detlab.utils import atomic_write

#: Codec of the written video (plays in browsers and players for .mp4).
FOURCC = 'mp4v'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detect objects in a video with a detlab model')
    parser.add_argument('video', help='video file')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda:0'")
    parser.add_argument('--score-thr', type=float, default=0.3, help='draw boxes above this score')
    parser.add_argument('--out', type=str, help='output video file (.mp4)')
    parser.add_argument('--show', action='store_true', help='show the video in a window')
    parser.add_argument('--wait-time', type=float, default=1,
                        help='milliseconds each shown frame stays')
    args = parser.parse_args()
    if not (args.out or args.show):
        parser.error('give --out OUT.mp4 and/or --show, or the result goes nowhere')
    return args


def read_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """The frames of an open video, (H, W, 3) BGR uint8."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.video):
        raise FileNotFoundError(f'Video not found: {args.video}')
    model = init_detector(args.config, args.checkpoint, device=args.device)
    pipeline = build_test_pipeline(model.cfg, from_array=True)
    visualizer = build_visualizer(model)

    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        raise RuntimeError(f'OpenCV could not open the video {args.video}.')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def process(out_path: str = '') -> int:
        writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*FOURCC), fps, size) \
            if out_path else None
        count = 0
        for frame in read_frames(capture):
            result = inference_detector(model, frame, test_pipeline=pipeline)
            visualizer.add_datasample('video', frame[..., ::-1], result, draw_gt=False,
                                      show=False, pred_score_thr=args.score_thr)
            drawn = visualizer.get_image()[..., ::-1]
            if args.show:
                cv2.namedWindow('video', 0)
                cv2.imshow('video', drawn)
                cv2.waitKey(max(1, int(args.wait_time)))
            if writer is not None:
                writer.write(np.ascontiguousarray(drawn))
            count += 1
        if writer is not None:
            writer.release()
        return count

    try:
        if args.out:
            atomic_write(args.out, process)
        else:
            process()
    finally:
        capture.release()
        if args.show:
            cv2.destroyAllWindows()
    if args.out:
        print(f'Video with detections saved to {args.out}')


if __name__ == '__main__':
    main()
