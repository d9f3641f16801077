#!/opt/face/venv/bin/python
"""face-landmarks: MediaPipe Face Mesh landmarks as one CSV per video, in the spirit of OpenFace.

    face-landmarks VIDEO_OR_IMAGE... -o DIR [--max-faces 1] [--no-refine]

Writes DIR/NAME.csv for each input with the columns
    frame, face_id, timestamp, confidence, success, x_0 .. x_{n-1}, y_0 .. y_{n-1}
(OpenFace's 2D landmark layout): frame counts from 1, timestamp is in seconds (from the video's
frame rate; 0 for an image), x and y are pixels. n is 478 (468 face points + 10 iris points,
the default) or 468 with --no-refine. A frame without a face gets one row with success 0 and
empty landmarks. MediaPipe's face mesh reports no per-face score: confidence is 1.0 when the
landmarks were found (they passed its 0.5 detection / tracking thresholds) and 0 otherwise.
Runs in the pack's own virtualenv (/opt/face/venv: numpy<2, protobuf<5), not the notebook's Python.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def header(points: int) -> list[str]:
    return ["frame", "face_id", "timestamp", "confidence", "success",
            *(f"x_{i}" for i in range(points)), *(f"y_{i}" for i in range(points))]


def frames(path: Path):
    """(timestamp, BGR image) for an image or each frame of a video."""
    import cv2

    if path.suffix.lower() in IMAGES:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"face-landmarks: cannot read image {path}")
        yield 0.0, image
        return
    video = cv2.VideoCapture(str(path))
    if not video.isOpened():
        raise SystemExit(f"face-landmarks: cannot open video {path}")
    fps = video.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    try:
        while True:
            ok, image = video.read()
            if not ok:
                break
            yield (index / fps if fps > 0 else 0.0), image
            index += 1
    finally:
        video.release()
    if index == 0:
        raise SystemExit(f"face-landmarks: no frame could be decoded from {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="face-landmarks", description="MediaPipe Face Mesh landmarks, one CSV per input.")
    parser.add_argument("inputs", nargs="+", type=Path, help="videos or images")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder for the CSV files")
    parser.add_argument("--max-faces", type=int, default=1)
    parser.add_argument("--no-refine", action="store_true", help="468 points, without the 10 iris points")
    args = parser.parse_args(argv)

    import cv2
    import mediapipe as mp

    points = 468 if args.no_refine else 478
    args.output.mkdir(parents=True, exist_ok=True)
    for source in args.inputs:
        still = source.suffix.lower() in IMAGES
        target = args.output / f"{source.stem}.csv"
        found = rows = 0
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=still, max_num_faces=args.max_faces,
                                             refine_landmarks=not args.no_refine) as mesh, \
                target.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(header(points))
            for number, (timestamp, image) in enumerate(frames(source), start=1):
                height, width = image.shape[:2]
                result = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                faces = result.multi_face_landmarks or []
                if not faces:
                    out.writerow([number, 0, f"{timestamp:.3f}", 0.0, 0] + [""] * (2 * points))
                for face_id, face in enumerate(faces):
                    marks = face.landmark
                    if len(marks) != points:
                        raise SystemExit(f"face-landmarks: MediaPipe returned {len(marks)} points, expected {points}")
                    xs = [f"{p.x * width:.2f}" for p in marks]
                    ys = [f"{p.y * height:.2f}" for p in marks]
                    out.writerow([number, face_id, f"{timestamp:.3f}", 1.0, 1, *xs, *ys])
                    found += 1
                rows += 1
        print(f"face-landmarks: {source} -> {target}: {rows} frame(s), {found} face(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
