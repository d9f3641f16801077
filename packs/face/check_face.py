"""The face pack's check: scikit-image's astronaut photo (and a short mp4 of it) through
`face-landmarks`: one face, 478 landmarks (468 with --no-refine), every one inside the image."""

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ASTRONAUT = Path("/opt/face/share/astronaut.png")


def validate(path: Path, width: int, height: int, points: int, frames: int) -> None:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == frames, f"{path.name}: {len(rows)} rows, expected {frames} (one face per frame)"
    for row in rows:
        assert row["success"] == "1" and row["face_id"] == "0", f"{path.name}: frame {row['frame']} has no face"
        xs = [float(row[f"x_{i}"]) for i in range(points)]
        ys = [float(row[f"y_{i}"]) for i in range(points)]
        assert f"x_{points}" not in row, f"{path.name}: more than {points} landmarks"
        assert all(0 <= x < width for x in xs) and all(0 <= y < height for y in ys), f"{path.name}: landmark outside"


def main() -> None:
    image = cv2.imread(str(ASTRONAUT))
    height, width = image.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
        for _ in range(5):
            writer.write(image)
        writer.release()
        out, flat = Path(tmp) / "refined", Path(tmp) / "flat"
        subprocess.run(["face-landmarks", str(ASTRONAUT), str(video), "-o", str(out)], check=True)
        subprocess.run(["face-landmarks", str(ASTRONAUT), "--no-refine", "-o", str(flat)], check=True)
        validate(out / "astronaut.csv", width, height, 478, 1)
        validate(out / "clip.csv", width, height, 478, 5)
        validate(flat / "astronaut.csv", width, height, 468, 1)
    print(f"face check passed: one face, 478 (and 468) landmarks inside {width}x{height}, photo and 5 video frames "
          f"({sys.executable})")


if __name__ == "__main__":
    main()
