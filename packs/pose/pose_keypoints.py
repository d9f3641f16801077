#!/opt/pose/venv/bin/python
"""pose-keypoints: OpenPose BODY_25 JSON per frame for every person, from MediaPipe's pose models.

    pose-keypoints VIDEO_OR_IMAGES... -o DIR [--min-confidence 0] [--tiles 1] [--max-people 0]

Inputs: video files (decoded with OpenCV's bundled FFmpeg), image files, or folders of images.
Writes, like OpenPose's --write_json: DIR/NAME_000000000000_keypoints.json per video frame and
DIR/NAME_keypoints.json per image, each {"version": 1.3, "people": [{"person_id": [ID],
"pose_keypoints_2d": [x, y, confidence] * 25, ...}]}, people ordered by ID.

Every person, not only one: MediaPipe's legacy Pose solution keeps the first person its detector
finds and misses people who fill less than about half of a wide frame. This command runs the same
models (both ship in the mediapipe 0.10.21 wheel: pose_detection.tflite and
pose_landmark_full.tflite) through MediaPipe graphs of its own:
  1. proposals: the pose detector on the whole frame and on overlapping squares of the frame's
     short side (`--tiles 2` adds squares of half that, for small or distant people), and the face
     detectors (full and short range) on the same windows, for people the pose detector missed;
     in a video or a folder of images, each person's region from the previous frame as well;
  2. the pose landmark model on each proposal's region of the full-resolution frame, kept when the
     model's own pose presence is >= --min-presence, duplicates dropped;
  3. ids: a person keeps the id of the person it overlaps most in the previous frame (IoU of the
     keypoint boxes, or the nearest centre), new people get new ids from left to right; a person
     lost for up to 30 frames keeps the id when found again. Each image given on its own starts at 0.
The mapping from MediaPipe's 33 landmarks (Neck and MidHip derived, small toes written as zeros) is
in body25.py. Runs in the pack's own virtualenv (/opt/pose/venv: numpy<2, protobuf<5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [os.path.join(_HERE, os.pardir, "lib"), _HERE]  # installed: /opt/pose/lib; in the repository: beside this file

from body25 import frame_json, to_body25
from regions import Tracker, crop, iou, normalize_radians, normalized, suppress, windows

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

# ---------------------------------------------------------------- regions and duplicates (geometry: regions.py)


def alignment_roi(center, end, *, target_degrees: float, scale: float) -> tuple[float, float, float, float]:
    """MediaPipe's AlignmentPointsRectsCalculator + RectTransformationCalculator (square_long): a
    square centred on `center`, its side `scale` times twice the distance to `end`, turned so the
    centre->end vector points at `target_degrees` (90: up, as for the body)."""
    (x0, y0), (x1, y1) = center, end
    size = 2 * math.hypot(x1 - x0, y1 - y0) * scale
    rotation = normalize_radians(math.radians(target_degrees) - math.atan2(-(y1 - y0), x1 - x0))
    return x0, y0, size, rotation


def face_to_body_rois(face_box) -> list[tuple[float, float, float, float]]:
    """First guesses at a body's region from a face box alone, each refined once from the landmarks
    found in it: the whole body (measured on the test photos, the pose detector's region is centred
    3-4 face widths below the face centre and is 9-14 face widths wide), then the upper body
    (5 face widths, centred 1.5 below: people cut by the frame's edge or by another person)."""
    x0, y0, x1, y1 = face_box
    w, cx, cy = x1 - x0, (x0 + x1) / 2, (y0 + y1) / 2
    return [(cx, cy + 3.5 * w, 11 * w, 0.0), (cx, cy + 1.5 * w, 5 * w, 0.0)]


def keypoint_box(points, width: int, height: int, min_visibility: float = 0.5):
    """Box of the landmarks that are inside the frame and visible enough (None if fewer than 3)."""
    inside = [(x, y) for x, y, v in points if v >= min_visibility and 0 <= x < width and 0 <= y < height]
    if len(inside) < 3:
        return None
    xs, ys = [p[0] for p in inside], [p[1] for p in inside]
    return min(xs), min(ys), max(xs), max(ys)


def contained(inner, outer) -> float:
    """The part of box `inner` that lies in box `outer`."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / area if w > 0 and h > 0 and area > 0 else 0.0


def duplicate(a, b) -> bool:
    """Whether person `a` (points: 33 x (x, y, visibility) in pixels; roi; box of its visible
    keypoints) is person `b` again: nose, shoulders and hips within a tenth of the body region on
    average, or nose and eyes within 4 % of it (one head, the body cut by the frame and fitted
    twice); keypoint boxes overlapping by half (two fits of one body from different regions); or a
    smaller fit lying inside b (a face or chest found again as a small person)."""
    size = max(a.roi[2], b.roi[2])
    for joints, share in (((0, 11, 12, 23, 24), 0.1), ((0, 2, 5), 0.04)):   # body; head (nose, eyes)
        if sum(math.dist(a.points[j][:2], b.points[j][:2]) for j in joints) / len(joints) < share * size:
            return True
    if iou(a.box, b.box) >= 0.5:
        return True
    return a.roi[2] < 0.7 * b.roi[2] and contained(a.box, b.box) >= 0.7


def head_in_box(points, box, margin: float = 0.25) -> bool:
    """A visible head landmark (nose, eyes, ears, mouth: MediaPipe 0-10) inside the box, widened by a margin."""
    x0, y0, x1, y1 = box
    m = margin * (x1 - x0)
    return any(x0 - m <= x <= x1 + m and y0 - m <= y <= y1 + m for x, y, v in points[:11] if v >= 0.5)


# ---------------------------------------------------------------- MediaPipe

DETECT_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "POSE:pose"
output_stream: "FACE_FULL:face_full"
output_stream: "FACE_SHORT:face_short"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:pose" }
node { calculator: "FaceDetectionFullRangeCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:face_full" }
node { calculator: "FaceDetectionShortRangeCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:face_short" }
"""
POSE_ONLY_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "POSE:pose"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:pose" }
"""
LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "MODEL_COMPLEXITY:model_complexity"
input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
output_stream: "LANDMARKS:landmarks"
output_stream: "AUXILIARY_LANDMARKS:auxiliary"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "AUXILIARY_LANDMARKS:auxiliary"
}
"""
_SCORES = "poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__"
PRESENCE = _SCORES + "pose_presence_score"


class Person:
    __slots__ = ("box", "points", "presence", "roi")

    def __init__(self, points, presence: float, roi, box) -> None:
        self.points, self.presence, self.roi, self.box = points, presence, roi, box


class PoseFinder:
    """MediaPipe graphs built from the subgraphs the wheel registers: detection on windows, then the
    pose landmark model on the region of each person in the full frame."""

    def __init__(self, *, tiles: int = 1, min_detection: float = 0.5, min_presence: float = 0.5) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python.solution_base import SolutionBase

        def graph(text: str, **kwargs):
            return SolutionBase(graph_config=text_format.Parse(text, calculator_pb2.CalculatorGraphConfig()), **kwargs)

        threshold = {
            "posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection,
            "facedetectionfullrangecpu__facedetectionfullrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_detection,
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_detection,
        }
        self._rect = rect_pb2.NormalizedRect
        self.detect_graph = graph(DETECT_GRAPH, outputs=["pose", "face_full", "face_short"], calculator_params=threshold)
        self.pose_graph = graph(POSE_ONLY_GRAPH, outputs=["pose"],
                                calculator_params={"posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection})
        # the presence threshold is applied here, so the graph lets every pose through with its score
        self.landmark_graph = graph(LANDMARK_GRAPH, side_inputs={"model_complexity": 1, "enable_segmentation": False},
                                    outputs=["landmarks", "auxiliary", PRESENCE],
                                    calculator_params={_SCORES + "ThresholdingCalculator.threshold": 0.0})
        self.tiles = tiles
        self.min_presence = min_presence

    def close(self) -> None:
        for g in (self.detect_graph, self.pose_graph, self.landmark_graph):
            g.close()

    @staticmethod
    def _detections(found, x0: int, y0: int, w: int, h: int) -> list:
        out = []
        for d in found or []:
            b = d.location_data.relative_bounding_box
            box = (x0 + b.xmin * w, y0 + b.ymin * h, x0 + (b.xmin + b.width) * w, y0 + (b.ymin + b.height) * h)
            out.append((d.score[0], box, [(x0 + k.x * w, y0 + k.y * h) for k in d.location_data.relative_keypoints]))
        return out

    def detect(self, rgb) -> tuple[list, list]:
        """Pose and face detections over the windows, in frame pixels, duplicates suppressed."""

        height, width = rgb.shape[:2]
        poses, faces = [], []
        for x0, y0, x1, y1 in windows(width, height, self.tiles):
            found = self.detect_graph.process({"image": crop(rgb, (x0, y0, x1, y1))})
            poses += self._detections(found.pose, x0, y0, x1 - x0, y1 - y0)
            faces += self._detections(found.face_full, x0, y0, x1 - x0, y1 - y0)
            faces += self._detections(found.face_short, x0, y0, x1 - x0, y1 - y0)
        return suppress(poses, 0.3), suppress(faces, 0.3)

    def landmarks(self, rgb, roi) -> Person | None:
        height, width = rgb.shape[:2]
        fields = normalized(roi, width, height)
        if fields is None:
            return None
        out = self.landmark_graph.process({"image": rgb, "roi": self._rect(**fields)})
        presence = getattr(out, PRESENCE)
        if out.landmarks is None or out.auxiliary is None or presence is None:
            return None
        points = [(p.x * width, p.y * height, p.visibility) for p in out.landmarks.landmark]
        aux = [(p.x * width, p.y * height) for p in out.auxiliary.landmark]
        next_roi = alignment_roi(aux[0], aux[1], target_degrees=90, scale=1.25)
        return Person(points, float(presence), next_roi, keypoint_box(points, width, height))

    def _from_face(self, rgb, face_box) -> Person | None:
        """A person the pose detector missed, found from a face: the pose detector on a square below
        the face, else the landmark model on regions guessed from the face box, each refined once.
        The person's head must be on that face."""

        height, width = rgb.shape[:2]
        x0, y0, x1, _ = face_box
        w = x1 - x0
        side = 8 * w
        cx, top = (x0 + x1) / 2, y0 - w
        left, upper = int(max(0, cx - side / 2)), int(max(0, top))
        right, lower = int(min(width, cx + side / 2)), int(min(height, top + side))
        if right - left > 8 and lower - upper > 8:
            below = self.pose_graph.process({"image": crop(rgb, (left, upper, right, lower))})
            found = self._detections(below.pose, left, upper, right - left, lower - upper)
            for _, _, keypoints in sorted(found, key=lambda d: -d[0]):
                person = self.landmarks(rgb, alignment_roi(keypoints[0], keypoints[1], target_degrees=90, scale=1.25))
                if person and person.presence >= self.min_presence and head_in_box(person.points, face_box):
                    return person
        for guess in face_to_body_rois(face_box):
            person = self.landmarks(rgb, guess)
            if person and person.presence >= self.min_presence * 0.5:
                person = self.landmarks(rgb, person.roi)
                if person and person.presence >= self.min_presence and head_in_box(person.points, face_box):
                    return person
        return None

    def people(self, rgb, previous: list | None = None) -> list[Person]:
        """Everyone in an RGB frame. `previous`: the regions of the people in the previous frame."""
        accepted: list[Person] = []

        def accept(person: Person | None) -> None:
            if person is None or person.presence < self.min_presence or person.box is None:
                return
            if not any(duplicate(person, other) for other in accepted):
                accepted.append(person)

        for roi in previous or []:
            accept(self.landmarks(rgb, roi))
        poses, faces = self.detect(rgb)
        for _, _, keypoints in poses:
            roi = alignment_roi(keypoints[0], keypoints[1], target_degrees=90, scale=1.25)
            if any(math.dist(roi[:2], other.roi[:2]) < 0.25 * roi[2] and 0.67 < roi[2] / other.roi[2] < 1.5 for other in accepted):
                continue   # the region of someone already found
            accept(self.landmarks(rgb, roi))
        for _, box, _ in faces:
            if any(head_in_box(other.points, box) for other in accepted):
                continue
            accept(self._from_face(rgb, box))
        # larger people first, so that a part of someone found again as a small person is dropped
        people: list[Person] = []
        for person in sorted(accepted, key=lambda p: -p.roi[2]):
            if not any(duplicate(person, other) for other in people):
                people.append(person)
        return people


# ---------------------------------------------------------------- command


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
    parser = argparse.ArgumentParser(prog="pose-keypoints", description="OpenPose BODY_25 JSON per frame, every person, from MediaPipe's pose models.")
    parser.add_argument("inputs", nargs="+", type=Path, help="videos, images or folders of images (a folder is one tracked sequence)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON files")
    parser.add_argument("--min-confidence", type=float, default=0.0, help="joints below this visibility are written as zeros")
    parser.add_argument("--min-presence", type=float, default=0.5, help="a person is kept when the landmark model's pose presence is at least this")
    parser.add_argument("--min-detection", type=float, default=0.5, help="score the pose and face detectors need")
    parser.add_argument("--tiles", type=int, choices=(1, 2), default=1,
                        help="1: detect on the whole frame and squares of its short side; 2: also squares of half that "
                             "(small or distant people; detection about 4x slower)")
    parser.add_argument("--max-people", type=int, default=0, help="keep at most this many people per frame, most present first (0: all)")
    parser.add_argument("--model-complexity", type=int, choices=(1,), default=1,
                        help="MediaPipe's pose landmark model: only 1 (full) ships in the wheel")
    args = parser.parse_args(argv)

    import cv2

    args.output.mkdir(parents=True, exist_ok=True)
    finder = PoseFinder(tiles=args.tiles, min_detection=args.min_detection, min_presence=args.min_presence)
    written = found = 0
    try:
        for source in args.inputs:
            tracker, previous = Tracker(), []   # ids run across a video's frames or a folder's images
            for name, index, image in frames(source):
                height, width = image.shape[:2]
                people = finder.people(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), previous)
                people.sort(key=lambda p: -p.presence)
                if args.max_people > 0:
                    people = people[:args.max_people]
                ids = tracker.update([p.box for p in people])
                order = sorted(range(len(people)), key=lambda i: ids[i])
                previous = [people[i].roi for i in order]
                keypoints = [to_body25([(x / width, y / height, v) for x, y, v in people[i].points], width, height,
                                       min_confidence=args.min_confidence) for i in order]
                stem = name if index is None else f"{name}_{index:012d}"
                (args.output / f"{stem}_keypoints.json").write_text(json.dumps(frame_json(keypoints, [ids[i] for i in order])))
                written += 1
                found += len(people)
    finally:
        finder.close()
    print(f"pose-keypoints: {written} frame(s), {found} person-frame(s) -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
