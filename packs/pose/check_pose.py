"""The pose pack's check, and the multi-person test scenes (also used by tests/unit and bench/extractors.py).

Check: through `pose-keypoints`,
  - scikit-image's astronaut photo and a 10-frame mp4 of it: one person per frame, 25 keypoints, the
    nose, neck and both shoulders with confidence > 0.5, every reported point inside the image;
  - "pair": two people at conversational distance in a 1280 x 720 frame (the astronaut and Grace
    Hopper, matplotlib's sample photo, side by side, faces 150 px wide): two people, ids 0 (left)
    and 1 (right), each one's head keypoints inside that person's photo, BODY_25 in OpenPose's order;
  - a 6-frame mp4 of that pair moving apart a few pixels a frame: both found in every frame, each
    keeping its person_id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SHARE = Path("/opt/pose/share")
# installed: /opt/pose/lib; in the repository: beside this file
sys.path[:0] = [str(SHARE.parent / "lib"), str(Path(__file__).resolve().parent)]

from scenes import compose, write_video

REQUIRED = {"Nose": 0, "Neck": 1, "RShoulder": 2, "LShoulder": 5}



def photo_folders() -> list[Path]:
    """The pack's share folder (the astronaut) and matplotlib's sample data (Grace Hopper)."""
    import matplotlib

    return [SHARE, Path(matplotlib.get_data_path()) / "sample_data"]


# ---------------------------------------------------------------- the check


def keypoints(person) -> list[tuple[float, float, float]]:
    values = person["pose_keypoints_2d"]
    assert len(values) == 75, f"{len(values)} values, expected 25 x 3"
    return [tuple(values[3 * i:3 * i + 3]) for i in range(25)]


def validate_single(path: Path, width: int, height: int) -> None:
    frame = json.loads(path.read_text())
    people = frame["people"]
    assert len(people) == 1, f"{path.name}: {len(people)} people"
    points = keypoints(people[0])
    for name, i in REQUIRED.items():
        assert points[i][2] > 0.5, f"{path.name}: {name} confidence {points[i][2]:.2f}"
    for i, (x, y, c) in enumerate(points):
        assert (x, y, c) == (0, 0, 0) or (0 <= x < width and 0 <= y < height), f"{path.name}: joint {i} at {x}, {y}"


def validate_scene(path: Path, boxes: list, ids: list[int] | None = None) -> None:
    """One person per box, in the order of `ids` (default 0, 1, ...): nose, eyes and neck inside
    the person's box, and BODY_25's order: nose above neck above mid-hip, the person's right
    shoulder on the image's left (the people face the camera)."""
    people = json.loads(path.read_text())["people"]
    assert len(people) == len(boxes), f"{path.name}: {len(people)} people, expected {len(boxes)}"
    ids = list(range(len(boxes))) if ids is None else ids
    assert [p["person_id"] for p in people] == [[i] for i in sorted(ids)], f"{path.name}: ids {[p['person_id'] for p in people]}"
    by_id = {p["person_id"][0]: keypoints(p) for p in people}
    for i, (x0, y0, x1, y1) in zip(ids, boxes, strict=True):
        points = by_id[i]
        for joint in (0, 1, 15, 16):   # Nose, Neck, REye, LEye
            x, y, c = points[joint]
            assert c > 0.5 and x0 <= x < x1 and y0 <= y < y1, f"{path.name}: person {i} joint {joint} at {x:.0f}, {y:.0f} ({c:.2f}), box {x0, y0, x1, y1}"
        nose, neck, midhip = points[0], points[1], points[8]
        assert nose[1] < neck[1] and (midhip[2] == 0 or neck[1] < midhip[1]), f"{path.name}: person {i} nose/neck/mid-hip order"
        assert points[2][0] < points[5][0], f"{path.name}: person {i} RShoulder right of LShoulder"


def main() -> None:
    import cv2

    astronaut = SHARE / "astronaut.png"
    image = cv2.imread(str(astronaut))
    height, width = image.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_video(tmp / "astronaut.mp4", [image] * 10)
        pair, people, _ = compose("pair", photo_folders())
        cv2.imwrite(str(tmp / "pair.png"), pair)
        moving = [compose("pair", photo_folders(), move=4 * i) for i in range(6)]
        write_video(tmp / "pair_moving.mp4", [frame for frame, _, _ in moving])
        out = tmp / "json"
        subprocess.run(["pose-keypoints", str(astronaut), str(tmp / "astronaut.mp4"), str(tmp / "pair.png"),
                        str(tmp / "pair_moving.mp4"), "-o", str(out)], check=True)
        still = out / "astronaut_keypoints.json"
        frames = sorted(out.glob("astronaut_0*_keypoints.json"))
        assert still.is_file() and len(frames) == 10, sorted(p.name for p in out.iterdir())
        for path in [still, *frames]:
            validate_single(path, width, height)
        validate_scene(out / "pair_keypoints.json", people)
        moved = sorted(out.glob("pair_moving_0*_keypoints.json"))
        assert len(moved) == 6, [p.name for p in moved]
        for path, (_, boxes, _) in zip(moved, moving, strict=True):
            validate_scene(path, boxes)   # ids 0 (left) and 1 (right) in every frame
        first = keypoints(json.loads(still.read_text())["people"][0])
        shown = ", ".join(f"{n} ({first[i][0]:.0f}, {first[i][1]:.0f}) {first[i][2]:.2f}" for n, i in REQUIRED.items())
        print(f"pose check passed: photo and {len(frames)} video frames, {width}x{height}: {shown}; "
              f"two people at conversational distance (1280x720, faces 150 px): 2 found, ids kept over {len(moved)} moving frames "
              f"({sys.executable})")


if __name__ == "__main__":
    main()
