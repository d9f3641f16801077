"""The face pack's check, and the multi-person test scenes (also used by tests/unit and bench/extractors.py).

Check: through `face-landmarks`,
  - scikit-image's astronaut photo and a 5-frame mp4 of it: one face, 478 landmarks (468 with
    --no-refine), every one inside the image;
  - "pair": two people at conversational distance in a 1280 x 720 frame (the astronaut and Grace
    Hopper, matplotlib's sample photo, side by side, faces 150 px wide): two faces, ids 0 (left) and
    1 (right), each face's landmarks inside that person's photo and about 150 px wide;
  - a 6-frame mp4 of that pair moving apart a few pixels a frame: both faces in every frame, each
    keeping its face_id.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

SHARE = Path("/opt/face/share")
# installed: /opt/face/lib; in the repository: beside this file
sys.path[:0] = [str(SHARE.parent / "lib"), str(Path(__file__).resolve().parent)]

from scenes import compose, write_video


def photo_folders() -> list[Path]:
    """The pack's share folder (the astronaut) and matplotlib's sample data (Grace Hopper)."""
    import matplotlib

    return [SHARE, Path(matplotlib.get_data_path()) / "sample_data"]


# ---------------------------------------------------------------- the check


def read_faces(path: Path) -> dict[int, list[dict]]:
    """Rows of a face-landmarks CSV by frame number."""
    frames: dict[int, list[dict]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            frames.setdefault(int(row["frame"]), []).append(row)
    return frames


def landmarks(row: dict, points: int) -> list[tuple[float, float]]:
    assert f"x_{points - 1}" in row and f"x_{points}" not in row, f"not {points} landmarks"
    return [(float(row[f"x_{i}"]), float(row[f"y_{i}"])) for i in range(points)]


def validate(path: Path, width: int, height: int, points: int, frames: int) -> None:
    """One face per frame, `points` landmarks inside the image."""
    by_frame = read_faces(path)
    assert sorted(by_frame) == list(range(1, frames + 1)), f"{path.name}: frames {sorted(by_frame)}"
    for number, rows in by_frame.items():
        assert len(rows) == 1, f"{path.name}: frame {number} has {len(rows)} faces"
        row = rows[0]
        assert row["success"] == "1" and row["face_id"] == "0", f"{path.name}: frame {number} has no face"
        assert all(0 <= x < width and 0 <= y < height for x, y in landmarks(row, points)), f"{path.name}: landmark outside"


def validate_scene(rows: list[dict], boxes: list, faces: list, where: str, points: int = 478) -> None:
    """Face i (face_id i) has all its landmarks inside person box i and is about as wide as the
    face the scene put there."""
    assert sorted(int(r["face_id"]) for r in rows) == list(range(len(boxes))), f"{where}: face ids {[r['face_id'] for r in rows]}"
    for row in rows:
        i = int(row["face_id"])
        x0, y0, x1, y1 = boxes[i]
        marks = landmarks(row, points)
        assert row["success"] == "1" and float(row["confidence"]) >= 0.5, f"{where}: face {i} success {row['success']}"
        assert all(x0 <= x < x1 and y0 <= y < y1 for x, y in marks), f"{where}: face {i} has landmarks outside {boxes[i]}"
        width = max(x for x, _ in marks) - min(x for x, _ in marks)
        expected = faces[i][2] - faces[i][0]
        assert 0.6 * expected < width < 1.6 * expected, f"{where}: face {i} is {width:.0f} px wide, expected about {expected}"


def main() -> None:
    import cv2

    astronaut = SHARE / "astronaut.png"
    image = cv2.imread(str(astronaut))
    height, width = image.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_video(tmp / "clip.mp4", [image] * 5)
        pair, people, faces = compose("pair", photo_folders())
        cv2.imwrite(str(tmp / "pair.png"), pair)
        moving = [compose("pair", photo_folders(), move=4 * i) for i in range(6)]
        write_video(tmp / "pair_moving.mp4", [frame for frame, _, _ in moving])
        out, flat = tmp / "refined", tmp / "flat"
        subprocess.run(["face-landmarks", str(astronaut), str(tmp / "clip.mp4"), str(tmp / "pair.png"),
                        str(tmp / "pair_moving.mp4"), "-o", str(out)], check=True)
        subprocess.run(["face-landmarks", str(astronaut), "--no-refine", "-o", str(flat)], check=True)
        validate(out / "astronaut.csv", width, height, 478, 1)
        validate(out / "clip.csv", width, height, 478, 5)
        validate(flat / "astronaut.csv", width, height, 468, 1)
        validate_scene(read_faces(out / "pair.csv")[1], people, faces, "pair.png")
        moved = read_faces(out / "pair_moving.csv")
        assert sorted(moved) == list(range(1, 7)), f"pair_moving.csv: frames {sorted(moved)}"
        for number, (_, boxes, boxes_of_faces) in enumerate(moving, start=1):
            validate_scene(moved[number], boxes, boxes_of_faces, f"pair_moving.mp4 frame {number}")
    print(f"face check passed: one face, 478 (and 468) landmarks inside {width}x{height}, photo and 5 video frames; "
          f"two faces 150 px wide in 1280x720, each inside its person, ids kept over 6 moving frames ({sys.executable})")


if __name__ == "__main__":
    main()
