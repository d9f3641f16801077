#!/usr/bin/env python3
"""frame-embeddings: per-frame visual embeddings (ImageNet ResNet-18, 512 numbers a frame).

    frame-embeddings VIDEO... -o DIR [--every 1] [--batch 64] [--device auto] [--weights PATH]
    frame-embeddings --self-test

Runs on the runtime's own torch and torchvision (Colab's GPU runtime has them; nothing is
installed over them), on CUDA when there is a GPU, else on the CPU. Frames are decoded with
OpenCV, resized (shorter side 256), center-cropped to 224 and normalized with ImageNet's mean
and std; the embedding is the 512-d output of the global average pool (the classifier removed).
Writes DIR/NAME.npz: embeddings (frames x 512, float32), frame (indices), timestamp (seconds).
The weights are torchvision's resnet18-f37072fd.pth (IMAGENET1K_V1), fetched at build time and
checked against their sha256 here before they are loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

HOME = Path(os.environ.get("PREBAKE_GPU_EXTRACTORS", "/opt/gpu-extractors"))
WEIGHTS = HOME / "models" / "resnet18-f37072fd.pth"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(weights: Path) -> str | None:
    """The sha256 recorded next to the weights at build time (WEIGHTS.sha256), if any."""
    recorded = weights.with_name(weights.name + ".sha256")
    return recorded.read_text().split()[0] if recorded.is_file() else None


def need_torch():
    try:
        import torch
        import torchvision
    except ImportError as e:
        raise SystemExit(f"frame-embeddings: {e.name} is not importable: this pack uses the runtime's own torch and "
                         "torchvision (Colab's GPU runtime has them); install them first") from e
    return torch, torchvision


def load_model(weights: Path, device: str):
    torch, torchvision = need_torch()
    expected = expected_sha256(weights)
    if expected is not None and sha256(weights) != expected:
        raise SystemExit(f"frame-embeddings: {weights} does not match its recorded sha256 {expected}")
    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()
    return model.eval().to(device)


def frames(path: Path, every: int):
    import cv2

    video = cv2.VideoCapture(str(path))
    if not video.isOpened():
        raise SystemExit(f"frame-embeddings: cannot open video {path}")
    fps = video.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    try:
        while True:
            ok, image = video.read()
            if not ok:
                break
            if index % every == 0:
                yield index, (index / fps if fps > 0 else 0.0), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        video.release()


def preprocess(batch, device: str):
    """uint8 RGB frames (list of HxWx3 arrays) -> normalized 224x224 tensor on `device`."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.stack(batch)).to(device).permute(0, 3, 1, 2).float().div_(255)
    h, w = x.shape[-2:]
    scale = 256 / min(h, w)
    x = torch.nn.functional.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear",
                                        antialias=True, align_corners=False)
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    x = x[..., top:top + 224, left:left + 224]
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def embed(model, path: Path, device: str, every: int, batch_size: int):
    import numpy as np
    import torch

    vectors, indices, times, batch = [], [], [], []

    def flush() -> None:
        with torch.inference_mode(), torch.autocast(device_type="cuda", enabled=device.startswith("cuda")):
            vectors.append(model(preprocess(batch, device)).float().cpu().numpy())
        batch.clear()

    for index, timestamp, image in frames(path, every):
        indices.append(index)
        times.append(timestamp)
        batch.append(image)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not indices:
        raise SystemExit(f"frame-embeddings: no frame could be decoded from {path}")
    return np.concatenate(vectors), np.array(indices), np.array(times)


def self_test(weights: Path, device: str) -> int:
    """A synthetic clip through the real model: shape, finiteness, and different frames giving
    different embeddings."""
    import tempfile

    import cv2
    import numpy as np

    model = load_model(weights, device)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
        rng = np.random.default_rng(0)
        for i in range(8):
            frame = np.full((240, 320, 3), 30 * i, np.uint8)
            cv2.rectangle(frame, (20 * i, 30), (20 * i + 120, 200), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
            writer.write(frame)
        writer.release()
        vectors, _, _ = embed(model, clip, device, 1, 4)
    assert vectors.shape == (8, 512), vectors.shape
    assert np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[-1])
    print(f"frame-embeddings self-test passed on {device}: 8 frames -> {vectors.shape}, weights {weights}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="frame-embeddings", description="Per-frame ResNet-18 (ImageNet) embeddings.")
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--every", type=int, default=1, help="embed every Nth frame (default 1)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cpu, ...")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--self-test", action="store_true", help="run a synthetic clip through the model and check the result")
    args = parser.parse_args(argv)
    if not args.self_test and (not args.videos or args.output is None):
        parser.error("give VIDEO... and -o DIR (or --self-test)")
    torch, _ = need_torch()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.self_test:
        return self_test(args.weights, device)
    import numpy as np

    model = load_model(args.weights, device)
    args.output.mkdir(parents=True, exist_ok=True)
    for video in args.videos:
        vectors, indices, times = embed(model, video, device, args.every, args.batch)
        np.savez(args.output / f"{video.stem}.npz", embeddings=vectors, frame=indices, timestamp=times)
        print(f"frame-embeddings: {video} -> {args.output / (video.stem + '.npz')}: {vectors.shape} on {device}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
