"""The pose pack's check: scikit-image's astronaut photo, and a short mp4 made from it with OpenCV,
through `pose-keypoints`: one person per frame, 25 keypoints, the nose, neck and both shoulders with
confidence > 0.5, every reported point inside the image."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ASTRONAUT = Path("/opt/pose/share/astronaut.png")
REQUIRED = {"Nose": 0, "Neck": 1, "RShoulder": 2, "LShoulder": 5}


def validate(path: Path, width: int, height: int) -> None:
    frame = json.loads(path.read_text())
    people = frame["people"]
    assert len(people) == 1, f"{path.name}: {len(people)} people"
    keypoints = people[0]["pose_keypoints_2d"]
    assert len(keypoints) == 75, f"{path.name}: {len(keypoints)} values, expected 25 x 3"
    for name, i in REQUIRED.items():
        x, y, c = keypoints[3 * i:3 * i + 3]
        assert c > 0.5, f"{path.name}: {name} confidence {c:.2f}"
    for i in range(25):
        x, y, c = keypoints[3 * i:3 * i + 3]
        assert (x, y, c) == (0, 0, 0) or (0 <= x < width and 0 <= y < height), f"{path.name}: joint {i} at {x}, {y}"


def main() -> None:
    image = cv2.imread(str(ASTRONAUT))
    height, width = image.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "astronaut.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
        assert writer.isOpened(), "OpenCV cannot write mp4"
        for _ in range(10):
            writer.write(image)
        writer.release()
        out = Path(tmp) / "json"
        subprocess.run(["pose-keypoints", str(ASTRONAUT), str(video), "-o", str(out)], check=True)
        still = out / "astronaut_keypoints.json"
        frames = sorted(out.glob("astronaut_0*_keypoints.json"))
        assert still.is_file() and len(frames) == 10, sorted(p.name for p in out.iterdir())
        for path in [still, *frames]:
            validate(path, width, height)
        keypoints = json.loads(still.read_text())["people"][0]["pose_keypoints_2d"]
        shown = ", ".join(f"{n} ({keypoints[3 * i]:.0f}, {keypoints[3 * i + 1]:.0f}) {keypoints[3 * i + 2]:.2f}"
                          for n, i in REQUIRED.items())
        print(f"pose check passed: photo and {len(frames)} video frames, {width}x{height}: {shown} ({sys.executable})")


if __name__ == "__main__":
    main()
