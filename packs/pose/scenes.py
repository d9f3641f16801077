"""Test scenes for the pose and face checks: real photos of one person each, composed into frames
of several people at conversational distance (faces of 110-150 px in 1280 x 720), and videos of them
moving. Each pack ships this file in its lib folder."""

from __future__ import annotations

from pathlib import Path

# Where the face is in each photo, as MediaPipe's full-range face detector finds it: x, y, width (pixels).
PHOTOS = {
    "astronaut": ("astronaut.png", (174, 68, 104)),      # scikit-image's data (NASA, public domain)
    "hopper": ("grace_hopper.jpg", (166, 128, 200)),     # matplotlib's sample data (US Navy, public domain)
    "camera": ("camera.png", (200, 123, 76)),            # scikit-image's data
    "zidane": ("zidane.jpg", (521, 293, 137)),           # ultralytics' sample photos (two people, 1280 x 720)
    "ancelotti": ("zidane.jpg", (916, 123, 152)),
    "walker": ("bus.jpg", (255, 415, 65)),
}


# Each person: (photo, face width in the frame, cell (x0, y0, x1, y1) the photo is cut to, where the
# face's top-left corner goes inside the cell).
SCENES = {
    "pair": [("astronaut", 150, (80, 60, 620, 720), (200, 100)), ("hopper", 150, (660, 60, 1200, 720), (200, 110))],
    "six": [("astronaut", 120, (0, 0, 420, 360), (150, 70)), ("hopper", 120, (430, 0, 850, 360), (150, 80)),
            ("zidane", 120, (860, 0, 1280, 360), (150, 90)), ("ancelotti", 110, (0, 365, 420, 720), (150, 80)),
            ("camera", 110, (430, 365, 850, 720), (150, 70)), ("walker", 110, (860, 365, 1280, 720), (150, 80))],
}


def compose(scene, folders, *, size=(1280, 720), move: int = 0):
    """A BGR frame of `size` on grey with each person's photo scaled so that the face is the given
    width, cut to its cell, the cell moved `move` pixels (right for the 1st, 3rd... person, left for
    the others). Returns (frame, person boxes, face boxes), boxes (x0, y0, x1, y1) in the frame.
    `folders`: where to look for the photos, in order."""
    import cv2
    import numpy as np

    width, height = size
    frame = np.full((height, width, 3), 128, np.uint8)
    people, faces = [], []
    for k, (name, face_width, cell, (fx, fy)) in enumerate(SCENES[scene] if isinstance(scene, str) else scene):
        filename, (x, y, w) = PHOTOS[name]
        path = next((Path(f) / filename for f in folders if (Path(f) / filename).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{filename} in none of {[str(f) for f in folders]}")
        image = cv2.imread(str(path))
        s = face_width / w
        image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        dx = move if k % 2 == 0 else -move
        cx0, cy0, cx1, cy1 = cell[0] + dx, cell[1], cell[2] + dx, cell[3]
        # frame pixel (X, Y) shows photo pixel (X - ox, Y - oy): the face's corner lands on (cx0 + fx, cy0 + fy)
        ox, oy = cx0 + fx - round(x * s), cy0 + fy - round(y * s)
        x0, y0 = max(cx0, ox, 0), max(cy0, oy, 0)
        x1, y1 = min(cx1, ox + image.shape[1], width), min(cy1, oy + image.shape[0], height)
        frame[y0:y1, x0:x1] = image[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        people.append((x0, y0, x1, y1))
        faces.append((cx0 + fx, cy0 + fy, cx0 + fx + face_width, cy0 + fy + face_width))
    return frame, people, faces


def write_video(path: Path, frames, fps: int = 10) -> None:
    import cv2

    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4"
    for frame in frames:
        writer.write(frame)
    writer.release()
