"""MediaPipe Pose's 33 landmarks -> OpenPose's BODY_25 keypoints (pure Python, no dependencies).

BODY_25 joint   from MediaPipe landmark(s)
 0 Nose         0 nose
 1 Neck         midpoint of 11 left_shoulder and 12 right_shoulder (confidence: the lower of the two)
 2 RShoulder    12 right_shoulder        5 LShoulder   11 left_shoulder
 3 RElbow       14 right_elbow           6 LElbow      13 left_elbow
 4 RWrist       16 right_wrist           7 LWrist      15 left_wrist
 8 MidHip       midpoint of 23 left_hip and 24 right_hip (confidence: the lower of the two)
 9 RHip         24 right_hip            12 LHip        23 left_hip
10 RKnee        26 right_knee           13 LKnee       25 left_knee
11 RAnkle       28 right_ankle          14 LAnkle      27 left_ankle
15 REye         5 right_eye             16 LEye        2 left_eye
17 REar         8 right_ear             18 LEar        7 left_ear
19 LBigToe      31 left_foot_index      22 RBigToe     32 right_foot_index
21 LHeel        29 left_heel            24 RHeel       30 right_heel
20 LSmallToe    no equivalent: 0, 0, 0  23 RSmallToe   no equivalent: 0, 0, 0

MediaPipe's foot_index is the tip of the foot (between the big and the second toe): the nearest
thing it has to OpenPose's big toe. Coordinates are pixels (MediaPipe's normalized x * width,
y * height), confidence is MediaPipe's visibility. As in OpenPose's output, a joint that was not
found is written 0, 0, 0: here, a joint with no equivalent, one whose point falls outside the
image (MediaPipe extrapolates off-frame joints) or one below `min_confidence`.
"""

from __future__ import annotations

from collections.abc import Sequence

BODY_25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
           "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
           "LHeel", "RBigToe", "RSmallToe", "RHeel")

# BODY_25 index -> MediaPipe landmark indices: one (a joint), two (their midpoint) or none (zeros)
SOURCES: tuple[tuple[int, ...], ...] = (
    (0,), (11, 12), (12,), (14,), (16,), (11,), (13,), (15,), (23, 24), (24,),
    (26,), (28,), (23,), (25,), (27,), (5,), (2,), (8,), (7,), (31,), (),
    (29,), (32,), (), (30,),
)
MEDIAPIPE_LANDMARKS = 33

Landmark = Sequence[float]  # (x, y, visibility), x and y normalized to [0, 1]


def to_body25(landmarks: Sequence[Landmark], width: int, height: int, *, min_confidence: float = 0.0) -> list[float]:
    """75 numbers, x, y, confidence for each BODY_25 joint (OpenPose's pose_keypoints_2d)."""
    if len(landmarks) != MEDIAPIPE_LANDMARKS:
        msg = f"expected {MEDIAPIPE_LANDMARKS} MediaPipe pose landmarks, got {len(landmarks)}"
        raise ValueError(msg)
    out: list[float] = []
    for sources in SOURCES:
        if not sources:
            out += [0.0, 0.0, 0.0]
            continue
        points = [landmarks[i] for i in sources]
        x = sum(p[0] for p in points) / len(points) * width
        y = sum(p[1] for p in points) / len(points) * height
        confidence = min(float(p[2]) for p in points)
        if not (0 <= x < width and 0 <= y < height) or confidence < min_confidence or confidence <= 0:
            out += [0.0, 0.0, 0.0]
        else:
            out += [float(x), float(y), confidence]
    return out


def frame_json(people: Sequence[Sequence[float]], ids: Sequence[int] | None = None) -> dict:
    """One frame in OpenPose's JSON layout (version 1.3), BODY_25 keypoints per person. `ids`: each
    person's tracked id (OpenPose's person_id, [-1] when not tracked)."""
    if ids is not None and len(ids) != len(people):
        raise ValueError(f"{len(people)} people but {len(ids)} ids")
    return {
        "version": 1.3,
        "people": [
            {
                "person_id": [-1 if ids is None else int(ids[i])],
                "pose_keypoints_2d": [round(v, 4) for v in keypoints],
                "face_keypoints_2d": [],
                "hand_left_keypoints_2d": [],
                "hand_right_keypoints_2d": [],
                "pose_keypoints_3d": [],
                "face_keypoints_3d": [],
                "hand_left_keypoints_3d": [],
                "hand_right_keypoints_3d": [],
            }
            for i, keypoints in enumerate(people)
        ],
    }
