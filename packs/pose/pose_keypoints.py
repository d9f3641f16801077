#!/opt/pose/venv/bin/python
"""pose-keypoints: OpenPose BODY_25 JSON per frame from MediaPipe Pose.

    pose-keypoints VIDEO_OR_IMAGES... -o DIR [--min-confidence 0] [--model-complexity 1]

Inputs: video files (decoded with OpenCV's bundled FFmpeg), image files, or folders of images.
Writes, like OpenPose's --write_json: DIR/NAME_000000000000_keypoints.json per video frame and
DIR/NAME_keypoints.json per image, each {"version": 1.3, "people": [{"pose_keypoints_2d": [x, y,
confidence] * 25, ...}]}. MediaPipe Pose finds at most one person per frame. The mapping from
MediaPipe's 33 landmarks (Neck and MidHip derived, small toes written as zeros) is in body25.py.
Runs in the pack's own virtualenv (/opt/pose/venv: numpy<2, protobuf<5), not the notebook's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir, "lib"))

from body25 import frame_json, to_body25

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def frames(path: Path):
    """(name, frame index or None, BGR image) for a video, an image or a folder of images."""
    import cv2

    if path.is_dir():
        for item in sorted(path.iterdir()):
            if item.suffix.lower() in IMAGES:
                yield from frames(item)
        return
    if path.suffix.lower() in IMAGES:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"pose-keypoints: cannot read image {path}")
        yield path.stem, None, image
        return
    video = cv2.VideoCapture(str(path))
    if not video.isOpened():
        raise SystemExit(f"pose-keypoints: cannot open video {path}")
    index = 0
    try:
        while True:
            ok, image = video.read()
            if not ok:
                break
            yield path.stem, index, image
            index += 1
    finally:
        video.release()
    if index == 0:
        raise SystemExit(f"pose-keypoints: no frame could be decoded from {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pose-keypoints", description="OpenPose BODY_25 JSON per frame from MediaPipe Pose.")
    parser.add_argument("inputs", nargs="+", type=Path, help="videos, images or folders of images")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON files")
    parser.add_argument("--min-confidence", type=float, default=0.0, help="joints below this visibility are written as zeros")
    parser.add_argument("--model-complexity", type=int, choices=(0, 1, 2), default=1,
                        help="MediaPipe's pose model: 0 lite, 1 full (default); 2 heavy is not in the wheel and needs a download")
    args = parser.parse_args(argv)

    import cv2
    import mediapipe as mp

    args.output.mkdir(parents=True, exist_ok=True)
    written = 0
    for source in args.inputs:
        is_video = source.is_file() and source.suffix.lower() not in IMAGES
        with mp.solutions.pose.Pose(static_image_mode=not is_video, model_complexity=args.model_complexity) as pose:
            for name, index, image in frames(source):
                height, width = image.shape[:2]
                result = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                people = []
                if result.pose_landmarks is not None:
                    marks = [(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark]
                    people.append(to_body25(marks, width, height, min_confidence=args.min_confidence))
                stem = name if index is None else f"{name}_{index:012d}"
                (args.output / f"{stem}_keypoints.json").write_text(json.dumps(frame_json(people)))
                written += 1
    print(f"pose-keypoints: {written} frame(s) -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
