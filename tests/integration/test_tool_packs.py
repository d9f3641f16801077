"""Tool packs carry their own CPython: built on the bookworm image (Python 3.11), the pack's command
runs in a fresh Debian trixie container (Python 3.13), whose own libraries differ (libmpdec,
libssl's package names, ...)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prebake.manifest import loads
from prebake.restore import restore

from .conftest import prebake

RECIPE = """
name = "pytool"
version = "1"
runtime = "2026.07"
install = [
  "/opt/pytool/venv/bin/pip install -q --no-cache-dir six==1.16.0",
  '''mkdir -p /opt/pytool/bin && cat > /opt/pytool/bin/pytool <<'PY'
#!/opt/pytool/venv/bin/python
import bz2, ctypes, decimal, lzma, sqlite3, ssl, sys, six
print("pytool", "%d.%d" % sys.version_info[:2], sys.prefix, ssl.OPENSSL_VERSION.split()[1], six.__version__)
PY
chmod 755 /opt/pytool/bin/pytool''',
]
check = "pytool"

[tool]
prefix = "/opt/pytool"

[env]
prepend = { PATH = ["/opt/pytool/bin"] }
"""


@pytest.mark.slow
def test_a_tool_pack_built_on_bookworm_runs_in_a_fresh_trixie_container(tmp_path: Path, build_args, base_python, trixie_image,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pytool.toml").write_text(RECIPE)
    prebake("build", str(tmp_path / "pytool.toml"), "-o", str(tmp_path / "out"), *build_args)  # its check ran on bookworm
    manifest = loads((tmp_path / "out/pytool/manifest.json").read_bytes())
    assert manifest.platform is not None
    assert (manifest.platform.os, manifest.platform.python, manifest.platform.abi) == (None, None, None)
    assert manifest.platform.arch and manifest.platform.glibc
    monkeypatch.setenv("PREBAKE_STATE_DIR", str(tmp_path / "state"))
    restore(tmp_path / "out/pytool", root=tmp_path / "root", progress=False, apply_env=False)
    ran = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path / 'root/opt/pytool'}:/opt/pytool:ro",
                          trixie_image, "sh", "-c", "python3 -c 'import sys; print(sys.version_info[:2])' && /opt/pytool/bin/pytool"],
                         capture_output=True, text=True, check=True)
    system_python, tool = ran.stdout.splitlines()
    assert system_python == "(3, 13)"
    assert tool.split()[:3] == ["pytool", base_python, "/opt/pytool/venv"] and tool.endswith(" 1.16.0")
