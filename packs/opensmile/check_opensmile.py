"""The opensmile pack's check: a wav synthesized here (numpy) through `smile-features`, and through
`SMILExtract` with each set's config, gives exactly the published number of features for each set,
with no NaN."""

import csv
import math
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

EXPECTED = {"eGeMAPSv02": 88, "IS10": 1582, "ComParE_2016": 6373, "emobase": 988}
CONFIGS = {
    "eGeMAPSv02": "egemaps/v02/eGeMAPSv02.conf",
    "IS10": "is09-13/IS10_paraling_compat.conf",
    "ComParE_2016": "compare/ComParE_2016.conf",
    "emobase": "emobase/emobase.conf",
}


def voice(seconds: float = 3.0, rate: int = 16000) -> np.ndarray:
    """A voiced, speech-like signal: a gliding 110-220 Hz fundamental with harmonics, syllable-rate
    amplitude modulation and a little noise (so pitch, jitter and shimmer are all defined)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) * (t % 0.75 < 0.6)
    rng = np.random.default_rng(0)
    return 0.3 * envelope * signal / 3 + 0.003 * rng.standard_normal(t.size)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(voice(), -1, 1) * 32767).astype("<i2").tobytes())
        for name, count in EXPECTED.items():
            out = Path(tmp) / f"{name}.csv"
            subprocess.run(["smile-features", str(wav), "--set", name, "-o", str(out)], check=True)
            with out.open() as f:
                rows = list(csv.reader(f))
            header, values = rows[0], rows[1:]
            assert header[:3] == ["file", "start", "end"], header[:3]
            assert len(values) == 1, f"{name}: {len(values)} rows"
            features = [float(v) for v in values[0][3:]]
            assert len(features) == count, f"{name}: {len(features)} features, expected {count}"
            nan = [header[3 + i] for i, v in enumerate(features) if math.isnan(v)]
            assert not nan, f"{name}: NaN in {nan[:5]}"
            print(f"opensmile check: {name}: {len(features)} features, no NaN")
            plain = Path(tmp) / f"{name}-SMILExtract.csv"
            subprocess.run(["SMILExtract", "-C", CONFIGS[name], "-I", str(wav), "-O", str(plain), "-l", "1"], check=True)
            with plain.open() as f:
                rows = list(csv.reader(f, delimiter=";"))
            assert rows[0][0] == "frameTime" and len(rows) == 2, rows[0][:2]
            values = [float(v) for v in rows[1][1:]]
            assert len(values) == count, f"SMILExtract {name}: {len(values)} features, expected {count}"
            assert not any(math.isnan(v) for v in values), f"SMILExtract {name}: NaN"
            print(f"opensmile check: SMILExtract -C {CONFIGS[name]}: {len(values)} features, no NaN")
    import opensmile

    print(f"opensmile check passed (opensmile {opensmile.__version__}, {sys.executable})")


if __name__ == "__main__":
    main()
