#!/opt/face/venv/bin/python
"""face-landmarks: MediaPipe face mesh landmarks for every face, one CSV per input, in the spirit of OpenFace.

    face-landmarks VIDEO_OR_IMAGE... -o DIR [--max-faces 0] [--no-refine] [--tiles 1]

Writes DIR/NAME.csv for each input with the columns
    frame, face_id, timestamp, confidence, success, x_0 .. x_{n-1}, y_0 .. y_{n-1}
(OpenFace's 2D landmark layout): one row per face per frame; frame counts from 1, timestamp is in
seconds (from the video's frame rate; 0 for an image), x and y are pixels. n is 478 (468 face points
+ 10 iris points, the default) or 468 with --no-refine. A frame without a face gets one row with
success 0 and empty landmarks.

Faces at conversational distance, not only close-ups: MediaPipe's legacy Face Mesh solution finds
faces with its short-range detector on the whole frame shrunk to 128 x 128, so a face 150 px wide in
a 1280 x 720 frame is about 15 px there and is missed. This command runs the models of the same
wheel (mediapipe 0.10.21) through MediaPipe graphs of its own:
  1. detect: the full-range (192 x 192, faces up to about 5 m) and short-range face detectors on
     the whole frame and on overlapping squares of its short side (`--tiles 2` adds squares of half
     that, for small faces: wide shots, large groups); in a video, each face's region from the
     previous frame as well;
  2. landmark each face: the face landmark model on the face's region of the full-resolution frame,
     turned to level the eyes, as MediaPipe does; kept when the model's own face presence score is
     >= --min-presence; that score is the `confidence` column;
  3. face_id: a face keeps the id of the face it overlaps most in the previous frame (or the nearest
     one); new faces get new ids from left to right; a face lost for up to 30 frames keeps its id.
Runs in the pack's own virtualenv (/opt/face/venv: numpy<2, protobuf<5), not the notebook's Python.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [os.path.join(_HERE, os.pardir, "lib"), _HERE]  # installed: /opt/face/lib; in the repository: beside this file

from regions import Tracker, centre, crop, iou, normalize_radians, normalized, suppress, windows

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def header(points: int) -> list[str]:
    return ["frame", "face_id", "timestamp", "confidence", "success",
            *(f"x_{i}" for i in range(points)), *(f"y_{i}" for i in range(points))]




# ---------------------------------------------------------------- faces only


def box_roi(box, right_eye, left_eye, *, scale: float = 1.5) -> tuple[float, float, float, float]:
    """MediaPipe's face region (FaceDetectionFrontDetectionToRoi, FaceLandmarkLandmarksToRoi): the
    box's centre, its long side times `scale`, turned so that the eyes are level."""
    x0, y0, x1, y1 = box
    rotation = normalize_radians(-math.atan2(-(left_eye[1] - right_eye[1]), left_eye[0] - right_eye[0]))
    return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale, rotation


def duplicate(box, other) -> bool:
    """Whether two face boxes are one face: the centre of one inside the other, or overlapping by a
    quarter of the smaller. Faces hardly overlap; an eye taken for a small face, or a region too
    large that takes in half a face, do."""
    (cx, cy), (ox, oy) = centre(box), centre(other)
    if (other[0] <= cx <= other[2] and other[1] <= cy <= other[3]) or (box[0] <= ox <= box[2] and box[1] <= oy <= box[3]):
        return True
    w = min(box[2], other[2]) - max(box[0], other[0])
    h = min(box[3], other[3]) - max(box[1], other[1])
    smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
    return w > 0 and h > 0 and w * h >= 0.25 * smaller


def points_box(points) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


# The mesh's outer eye corners (MediaPipe face mesh indices), used to level the next frame's region.
RIGHT_EYE_CORNER, LEFT_EYE_CORNER = 33, 263

DETECT_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "FULL:full"
output_stream: "SHORT:short"
node { calculator: "FaceDetectionFullRangeCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:full" }
node { calculator: "FaceDetectionShortRangeCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:short" }
"""
LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""
PRESENCE = "facelandmarkcpu__face_presence_score"
SECOND_LOOK = 0.8   # the presence a face needs when the first region gave less than --min-presence


class Face:
    __slots__ = ("box", "points", "presence", "roi")

    def __init__(self, points, presence: float) -> None:
        self.points, self.presence = points, presence
        self.box = points_box(points)
        self.roi = box_roi(self.box, points[RIGHT_EYE_CORNER], points[LEFT_EYE_CORNER])


class FaceFinder:
    """MediaPipe graphs built from the subgraphs the wheel registers: the two face detectors on
    windows, then the face landmark model on each face's region of the full frame."""

    def __init__(self, *, refine: bool = True, tiles: int = 1, min_detection: float = 0.5, min_presence: float = 0.5) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python.solution_base import SolutionBase

        def graph(text: str, **kwargs):
            return SolutionBase(graph_config=text_format.Parse(text, calculator_pb2.CalculatorGraphConfig()), **kwargs)

        self._rect = rect_pb2.NormalizedRect
        self.detect_graph = graph(DETECT_GRAPH, outputs=["full", "short"], calculator_params={
            "facedetectionfullrangecpu__facedetectionfullrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_detection,
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_detection,
        })
        # the presence threshold is applied here, so the graph lets every face through with its score
        self.landmark_graph = graph(LANDMARK_GRAPH, side_inputs={"with_attention": refine}, outputs=["landmarks", PRESENCE],
                                    calculator_params={"facelandmarkcpu__ThresholdingCalculator.threshold": 0.0})
        self.points = 478 if refine else 468
        self.tiles = tiles
        self.min_presence = min_presence
        self.rejected = 0   # faces detected whose landmarks the model did not take for a face

    def close(self) -> None:
        self.detect_graph.close()
        self.landmark_graph.close()

    def detect(self, rgb) -> list:
        """(score, box, keypoints) per face over the windows, in frame pixels, duplicates suppressed."""

        height, width = rgb.shape[:2]
        found = []
        for x0, y0, x1, y1 in windows(width, height, self.tiles):
            out = self.detect_graph.process({"image": crop(rgb, (x0, y0, x1, y1))})
            w, h = x1 - x0, y1 - y0
            for d in (out.full or []) + (out.short or []):
                b = d.location_data.relative_bounding_box
                box = (x0 + b.xmin * w, y0 + b.ymin * h, x0 + (b.xmin + b.width) * w, y0 + (b.ymin + b.height) * h)
                found.append((d.score[0], box, [(x0 + k.x * w, y0 + k.y * h) for k in d.location_data.relative_keypoints]))
        return suppress(found, 0.3)

    def landmarks(self, rgb, roi) -> Face | None:
        height, width = rgb.shape[:2]
        fields = normalized(roi, width, height)
        if fields is None:
            return None
        out = self.landmark_graph.process({"image": rgb, "roi": self._rect(**fields)})
        presence = getattr(out, PRESENCE)
        if out.landmarks is None or presence is None:
            return None
        points = [(p.x * width, p.y * height) for p in out.landmarks.landmark]
        if len(points) != self.points:
            raise SystemExit(f"face-landmarks: MediaPipe returned {len(points)} points, expected {self.points}")
        return Face(points, float(presence))

    def faces(self, rgb, previous: list | None = None) -> list[Face]:
        """Every face in an RGB frame. `previous`: the regions of the faces in the previous frame."""
        accepted: list[Face] = []

        def accept(face: Face | None) -> bool:
            if face is None or face.presence < self.min_presence:
                return False
            if not any(duplicate(face.box, other.box) for other in accepted):
                accepted.append(face)
            return True

        for roi in previous or []:
            accept(self.landmarks(rgb, roi))
        # first come, first kept: the faces followed from the previous frame, then the detections
        # from the most to the least confident
        for _, box, keypoints in self.detect(rgb):
            if any(duplicate(box, other.box) for other in accepted):
                continue   # a face already found
            if not accept(self._landmark_detection(rgb, box, keypoints)):
                self.rejected += 1
        return accepted

    def _landmark_detection(self, rgb, box, keypoints) -> Face | None:
        """Landmarks for one detected face. When the model does not take the detector's region for a
        face (presence below the threshold), as MediaPipe's own tracking does: once more on the region
        of the landmarks it found; then on the region of each detection of the face again in a crop
        around it (the full-range and short-range boxes differ and the landmark model is sensitive to
        the region: a profile, a wide-open mouth, sunglasses). Landmarks must stay on the detected face."""

        face = self.landmarks(rgb, box_roi(box, keypoints[0], keypoints[1]))
        if face is None or face.presence >= self.min_presence:
            return face
        # the model said "not a face" once: a second look must be clearly positive (a hand seen
        # as a face reached 0.65 here, real faces 0.87-1.0 on the test photos)
        sure = max(self.min_presence, SECOND_LOOK)
        again = self.landmarks(rgb, face.roi)
        if again is not None and again.presence >= sure and iou(again.box, box) >= 0.3:
            return again
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = box
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 2.5 * max(x1 - x0, y1 - y0)
        left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
        if right - left < 8 or bottom - top < 8:
            return face
        out = self.detect_graph.process({"image": crop(rgb, (left, top, right, bottom))})
        w, h = right - left, bottom - top
        for d in sorted((out.full or []) + (out.short or []), key=lambda d: -d.score[0]):
            b = d.location_data.relative_bounding_box
            found = (left + b.xmin * w, top + b.ymin * h, left + (b.xmin + b.width) * w, top + (b.ymin + b.height) * h)
            if iou(found, box) < 0.3:
                continue
            eyes = [(left + k.x * w, top + k.y * h) for k in d.location_data.relative_keypoints[:2]]
            candidate = self.landmarks(rgb, box_roi(found, eyes[0], eyes[1]))
            if candidate is not None and candidate.presence >= sure and iou(candidate.box, box) >= 0.3:
                return candidate
        return face


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
    parser = argparse.ArgumentParser(prog="face-landmarks", description="MediaPipe face mesh landmarks for every face, one CSV per input.")
    parser.add_argument("inputs", nargs="+", type=Path, help="videos or images")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder for the CSV files")
    parser.add_argument("--max-faces", type=int, default=0, help="keep at most this many faces per frame, most confident first (0: all)")
    parser.add_argument("--no-refine", action="store_true", help="468 points, without the 10 iris points")
    parser.add_argument("--tiles", type=int, choices=(1, 2), default=1,
                        help="1: detect on the whole frame and squares of its short side; 2: also squares of half that "
                             "(small faces; detection about 4x slower)")
    parser.add_argument("--min-detection", type=float, default=0.5, help="score the face detectors need")
    parser.add_argument("--min-presence", type=float, default=0.5,
                        help="a face is kept when the landmark model's face presence score (the confidence column) is at least this")
    args = parser.parse_args(argv)

    import cv2

    finder = FaceFinder(refine=not args.no_refine, tiles=args.tiles, min_detection=args.min_detection, min_presence=args.min_presence)
    points = finder.points
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        for source in args.inputs:
            target = args.output / f"{source.stem}.csv"
            found = rows = 0
            rejected = finder.rejected
            tracker, previous = Tracker(), []
            with target.open("w", newline="") as f:
                out = csv.writer(f)
                out.writerow(header(points))
                for number, (timestamp, image) in enumerate(frames(source), start=1):
                    faces = finder.faces(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), previous)
                    faces.sort(key=lambda face: -face.presence)
                    if args.max_faces > 0:
                        faces = faces[:args.max_faces]
                    ids = tracker.update([face.box for face in faces])
                    order = sorted(range(len(faces)), key=lambda i: ids[i])
                    previous = [faces[i].roi for i in order]
                    if not faces:
                        out.writerow([number, 0, f"{timestamp:.3f}", 0.0, 0] + [""] * (2 * points))
                    for i in order:
                        face = faces[i]
                        out.writerow([number, ids[i], f"{timestamp:.3f}", f"{face.presence:.3f}", 1,
                                      *(f"{x:.2f}" for x, _ in face.points), *(f"{y:.2f}" for _, y in face.points)])
                        found += 1
                    rows += 1
            print(f"face-landmarks: {source} -> {target}: {rows} frame(s), {found} face(s)"
                  f" ({finder.rejected - rejected} detection(s) the landmark model did not take for a face)", file=sys.stderr)
    finally:
        finder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
