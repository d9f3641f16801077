"""Where to look in a frame and who is who across frames: the geometry and the tracker that
pose-keypoints and face-landmarks share (pure Python). Each pack ships this file in its lib folder.

Boxes are (x0, y0, x1, y1) in pixels. A region (ROI) is (cx, cy, size, rotation): a square of `size`
pixels centred on (cx, cy), turned by `rotation` radians, as MediaPipe's NormalizedRect.
"""

from __future__ import annotations

import math


def spread(length: int, side: int) -> list[int]:
    """Starts of squares of `side` covering `length`, overlapping by at least a third of a side."""
    if length <= side:
        return [0]
    n = math.ceil((length - side) / (side * 2 / 3)) + 1
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


def windows(width: int, height: int, tiles: int = 1) -> list[tuple[int, int, int, int]]:
    """Where the detectors look: the whole frame, then squares of its short side (none when the
    frame is square), then with tiles=2 squares of half the short side."""
    out = [(0, 0, width, height)]
    side = min(width, height)
    for level in range(tiles):
        if level:
            side //= 2
        squares = [(x, y, x + side, y + side) for y in spread(height, side) for x in spread(width, side)]
        if len(squares) > 1:
            out += squares
    return out


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def suppress(candidates: list, threshold: float = 0.3) -> list:
    """Greedy non-maximum suppression of (score, box, ...) tuples: the best of each overlapping group."""
    kept: list = []
    for candidate in sorted(candidates, key=lambda c: -c[0]):
        if all(iou(candidate[1], k[1]) < threshold for k in kept):
            kept.append(candidate)
    return kept


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


class Tracker:
    """Stable ids across the frames of one video (or folder of images): each new box takes the id of
    the previous frame's box it overlaps most (IoU >= min_iou), else of the nearest one whose centre
    is within one box size; the rest get new ids, numbered left to right. A track unseen for more
    than max_missed frames is forgotten."""

    def __init__(self, *, min_iou: float = 0.2, max_missed: int = 30) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: dict[int, tuple] = {}   # id -> (box, frames since seen)
        self.next_id = 0

    def update(self, boxes: list) -> list[int]:
        ids: list[int | None] = [None] * len(boxes)
        free = set(self.tracks)
        pairs = sorted(((iou(box, self.tracks[t][0]), i, t) for i, box in enumerate(boxes) for t in self.tracks), reverse=True)
        for overlap, i, t in pairs:
            if overlap < self.min_iou:
                break
            if ids[i] is None and t in free:
                ids[i] = t
                free.discard(t)
        near = []
        for i, box in enumerate(boxes):
            if ids[i] is not None:
                continue
            for t in free:
                old = self.tracks[t][0]
                reach = max(old[2] - old[0], old[3] - old[1], box[2] - box[0], box[3] - box[1])
                distance = math.dist(centre(box), centre(old))
                if distance <= reach:
                    near.append((distance / reach, i, t))
        for _, i, t in sorted(near):
            if ids[i] is None and t in free:
                ids[i] = t
                free.discard(t)
        for i in sorted((i for i in range(len(boxes)) if ids[i] is None), key=lambda i: centre(boxes[i])):
            ids[i] = self.next_id
            self.next_id += 1
        for t in free:
            box, missed = self.tracks[t]
            if missed < self.max_missed:
                self.tracks[t] = (box, missed + 1)
            else:
                del self.tracks[t]
        for i, box in enumerate(boxes):
            self.tracks[ids[i]] = (box, 0)
        return ids  # type: ignore[return-value]


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def crop(image, window):
    """The part of an image (a numpy array, rows first) inside a window (x0, y0, x1, y1), contiguous in
    memory as MediaPipe wants it; the image itself when the window is all of it."""
    x0, y0, x1, y1 = window
    height, width = image.shape[:2]
    return image if (x1 - x0, y1 - y0) == (width, height) else image[y0:y1, x0:x1].copy()


def normalized(roi, width: int, height: int) -> dict[str, float] | None:
    """MediaPipe's NormalizedRect fields for a region in pixels of a width x height frame; None for a
    region too small to hold anything (coincident keypoints) or not a number."""
    cx, cy, size, rotation = roi
    if not size >= 4:
        return None
    return {"x_center": cx / width, "y_center": cy / height, "width": size / width, "height": size / height, "rotation": rotation}
