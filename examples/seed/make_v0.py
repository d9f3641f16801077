"""Writes examples/seed/v0.ipynb: a seed-like Colab notebook, setup mixed with research.

    .venv/bin/python examples/seed/make_v0.py [-o examples/seed/v0.ipynb]

Setup the way researchers write it on Colab: `%pip` and `!pip` installs with the pins MediaPipe
0.10.21 needs, a form field holding the lab's data server (Drive-like), `!wget` of a model file
with `$DATA_URL` behind an `if not os.path.exists(...)` guard, a `{expr}`-interpolated download of
a small dataset and `!tar xzf`, `%env`, `%cd`. Research: openSMILE eGeMAPS functionals of a wav
the notebook synthesizes, MediaPipe Pose on the frames of a short video made from scikit-image's
astronaut photo written as OpenPose BODY_25, MediaPipe Face Mesh on the same photo, the model
file's checksum and a table from the dataset. Every research cell prints deterministic results.

The data server's address is a form default (`http://127.0.0.1:8000`); bench/seed.py serves the
model and the dataset at 50 MB/s and rewrites that default to its own port.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
DATA_URL = "http://127.0.0.1:8000"
_ids = iter(f"seed{i:02d}" for i in range(100))


def md(text: str):
    return new_markdown_cell(text.strip("\n"), metadata={"id": next(_ids)})


def code(text: str, form: bool = False, tags: tuple[str, ...] = ()):
    metadata = {"id": next(_ids)}
    if form:
        metadata["cellView"] = "form"
    if tags:
        metadata["tags"] = list(tags)
    return new_code_cell(text.strip("\n"), metadata=metadata)


CELLS = [
    md("""
# Seed: voice, body and face features of one session

Run all. The first cells install openSMILE and MediaPipe and fetch the lab's model and session
data (about a minute on a fresh runtime); then voice features (openSMILE eGeMAPS), body pose
(MediaPipe, written as OpenPose BODY_25), face landmarks, and a look at the sessions.
"""),
    code("""
#@title Install the extractors
%pip install -q opensmile==2.6.0
# MediaPipe's solutions API needs numpy 1.x and protobuf 4; pandas 3 and pyarrow>=20 (from opensmile) want numpy 2
!pip install -q mediapipe==0.10.21 "numpy<2" "protobuf<5" "pandas<3" "pyarrow<20"
!pip install -q scikit-image==0.25.2  # the test photo
%env GLOG_minloglevel=2
""", form=True),
    code(f"""
#@title Lab data server
# The lab's share (Drive-like); the same for everyone in the lab, so not a form field
DATA_URL = "{DATA_URL}"
DATASET = "seed-sessions"
""", form=True),
    code("""
import os
os.makedirs("/content/models", exist_ok=True)
if not os.path.exists("/content/models/model.bin"):
    !wget -q $DATA_URL/model.bin -O /content/models/model.bin
!mkdir -p /content/data && wget -q {DATA_URL}/{DATASET}.tar.gz -O /content/data/{DATASET}.tar.gz
!tar xzf /content/data/{DATASET}.tar.gz -C /content/data
!mkdir -p /content/work
%cd /content/work
"""),
    md("## Voice: openSMILE eGeMAPS functionals"),
    code("""
#@title A synthetic voiced segment
import wave
import numpy as np

SR = 16000 #@param {type:"integer"}
t = np.arange(2 * SR) / SR
f0 = 160 + 30 * np.sin(2 * np.pi * 1.5 * t)              # a vibrato around 160 Hz
phase = 2 * np.pi * np.cumsum(f0) / SR
syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t) ** 2   # three syllables a second
x = syllables * (0.5 * np.sin(phase) + 0.25 * np.sin(2 * phase) + 0.12 * np.sin(3 * phase))
x += 0.01 * np.random.default_rng(0).standard_normal(t.size)
pcm = np.round(x / np.abs(x).max() * 0.8 * 32767).astype("<i2")
with wave.open("voice.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(SR); w.writeframes(pcm.tobytes())
print("voice.wav:", pcm.size, "samples at", SR, "Hz,", round(pcm.size / SR, 2), "s")
""", form=True),
    code("""
import opensmile

smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                        feature_level=opensmile.FeatureLevel.Functionals)
features = smile.process_file("voice.wav")
print("eGeMAPSv02 functionals:", features.shape)
for name in ["F0semitoneFrom27.5Hz_sma3nz_amean", "loudness_sma3_amean", "HNRdBACF_sma3nz_amean",
             "VoicedSegmentsPerSec", "MeanVoicedSegmentLengthSec"]:
    print(f"  {name:36s} {features[name].iloc[0]:8.2f}")
"""),
    md("## Body: MediaPipe Pose as OpenPose BODY_25"),
    code("""
#@title A short clip of the test photo
import cv2
from skimage import data

photo = data.astronaut()                      # RGB, 512 x 512
N_FRAMES = 12 #@param {type:"integer"}
writer = cv2.VideoWriter("clip.avi", cv2.VideoWriter_fourcc(*"MJPG"), 12, (640, 512))
for i in range(N_FRAMES):
    canvas = np.full((512, 640, 3), 255, np.uint8)
    canvas[:, 8 * i:8 * i + 512] = photo        # the person moves right, 8 px a frame
    writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
writer.release()
capture = cv2.VideoCapture("clip.avi")
frames = []
while True:
    ok, frame = capture.read()
    if not ok:
        break
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
print("clip.avi:", len(frames), "frames of", frames[0].shape)
""", form=True),
    code("""
import json
import os

import mediapipe as mp

BODY_25 = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
           "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
           "LHeel", "RBigToe", "RSmallToe", "RHeel"]
# BODY_25 joint <- MediaPipe landmark(s): one, the midpoint of two, or none (OpenPose writes 0, 0, 0)
FROM_MP = [(0,), (11, 12), (12,), (14,), (16,), (11,), (13,), (15,), (23, 24), (24,), (26,), (28,), (23,), (25,),
           (27,), (5,), (2,), (8,), (7,), (31,), (), (29,), (32,), (), (30,)]

def body25(landmarks, width, height):
    keypoints = []
    for sources in FROM_MP:
        points = [landmarks[i] for i in sources]
        if not points:
            keypoints += [0.0, 0.0, 0.0]
            continue
        x = sum(p.x for p in points) / len(points) * width
        y = sum(p.y for p in points) / len(points) * height
        c = min(p.visibility for p in points)
        keypoints += [x, y, c] if 0 <= x < width and 0 <= y < height and c > 0 else [0.0, 0.0, 0.0]
    return keypoints

os.makedirs("pose", exist_ok=True)
people = []
with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
    for i, frame in enumerate(frames):
        found = pose.process(frame).pose_landmarks
        keypoints = body25(found.landmark, frame.shape[1], frame.shape[0]) if found else []
        people.append(keypoints)
        with open(f"pose/clip_{i:012d}_keypoints.json", "w") as f:
            json.dump({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [round(v, 3) for v in keypoints]}] if keypoints else []}, f)
print("frames with a person:", sum(1 for k in people if k), "of", len(people), "->", len(os.listdir("pose")), "OpenPose JSON files")
first = people[0]
seen = [name for j, name in enumerate(BODY_25) if first[3 * j + 2] > 0.5]
print("BODY_25 joints seen in frame 0:", len(seen), seen)
for name in ("Nose", "Neck", "RShoulder", "LShoulder"):
    j = BODY_25.index(name)
    print(f"  {name:10s} x={first[3 * j]:6.0f} y={first[3 * j + 1]:6.0f}")
neck_x = [k[3] for k in people if k]
print("Neck moves", round((neck_x[-1] - neck_x[0]) / (len(neck_x) - 1)), "px a frame (the clip: 8)")
"""),
    md("## Face: MediaPipe Face Mesh"),
    code("""
with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
    faces = mesh.process(photo).multi_face_landmarks
h, w = photo.shape[:2]
points = np.array([(p.x * w, p.y * h) for p in faces[0].landmark])
print("faces:", len(faces), "landmarks:", len(points))
print("nose tip (1):", np.round(points[1]).astype(int).tolist(), " face box:",
      np.round(points.min(0)).astype(int).tolist(), np.round(points.max(0)).astype(int).tolist())
"""),
    md("## The lab's model and sessions"),
    code("""
import hashlib
import os

with open("/content/models/model.bin", "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
print("model.bin:", os.path.getsize("/content/models/model.bin"), "bytes, sha256", digest[:16])
"""),
    code("""
import glob
import pandas as pd

sessions = pd.concat([pd.read_csv(p) for p in sorted(glob.glob(f"/content/data/{DATASET}/*.csv"))])
table = sessions.groupby("participant").agg(frames=("frame", "size"), valence=("valence", "mean"),
                                            arousal=("arousal", "mean"))
print(table.round(3).to_string())
"""),
]


def notebook():
    nb = new_notebook(cells=CELLS, metadata={
        "colab": {"provenance": [], "name": "seed.ipynb", "toc_visible": True},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
    })
    nb.nbformat, nb.nbformat_minor = 4, 4  # Colab saves 4.0-4.4: cells have no ids
    for cell in nb.cells:
        cell.pop("id", None)
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, default=HERE / "v0.ipynb")
    args = parser.parse_args()
    nb = notebook()
    nbformat.validate(nb)
    nbformat.write(nb, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
