"""The extractor packs' pure parts, without Docker, MediaPipe, opensmile or torch: the MediaPipe ->
OpenPose BODY_25 mapping, the recipes in packs/ and the [[file]] entries recipes ship."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tomllib
from prebake.errors import UsageError
from prebake.recipe import load, parse

REPO = Path(__file__).resolve().parents[2]
PACKS = REPO / "packs"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


body25 = _module(PACKS / "pose" / "body25.py")


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
    face = _module(PACKS / "face" / "face_landmarks.py")
    header = face.header(478)
    assert header[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert header[5] == "x_0" and header[5 + 477] == "x_477" and header[5 + 478] == "y_0" and len(header) == 5 + 2 * 478


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
