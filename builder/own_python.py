"""Give a tool pack its own CPython: a script the builder runs at the build site, with the python to copy.

    python3 own_python.py PREFIX PATCHELF

Copies the running interpreter (its binary, standard library and lib-dynload) to PREFIX/python,
with every shared library it and its extension modules load that glibc does not provide
(libssl, libffi, libmpdec, ...) in PREFIX/python/lib and RUNPATHs ($ORIGIN-relative, set with
PATCHELF) that find them there; then makes the virtualenv PREFIX/venv with that copy. The pack
then needs only the architecture and a glibc at least as new as the build's: a distribution's
Python bump (a Colab runtime moving from 3.12 to 3.13, Debian from bookworm to trixie) leaves it
working. Imports nothing of prebake: it runs in the mirror image's own Python.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

GLIBC = re.compile(r"(ld-linux[^/]*|libc|libm|libpthread|libdl|librt|libutil|libresolv|libnsl|libanl|libcrypt|"
                   r"libBrokenLocale|libmvec|linux-vdso|linux-gate)\.so[.\d]*")
"""What every glibc system has (the pack's platform records the glibc version); never bundled."""


def needed(elf: str) -> dict[str, str]:
    """soname -> path of the libraries `elf` loads (transitively, as ldd resolves them) beyond glibc."""
    out = subprocess.run(["ldd", elf], capture_output=True, text=True, check=False).stdout
    found = {}
    for line in out.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0].strip()
        if rest and path.startswith("/") and not GLIBC.fullmatch(name):
            found[name] = path
        elif "not found" in rest:
            sys.exit(f"{elf} needs {name}, which this system lacks")
    return found


def main(prefix: str, patchelf: str) -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    home = os.path.join(prefix, "python")
    stdlib, dynload = sysconfig.get_path("stdlib"), os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")
    binary = os.path.join(home, "bin", version)
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    shutil.copy2(os.path.realpath(sys.executable), binary)
    for link in ("python3", "python"):
        os.symlink(version, os.path.join(home, "bin", link))
    target_stdlib = os.path.join(home, "lib", version)
    shutil.copytree(stdlib, target_stdlib, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "dist-packages", "test", "idlelib"))
    target_dynload = os.path.join(target_stdlib, "lib-dynload")
    if os.path.realpath(dynload) != os.path.realpath(os.path.join(stdlib, "lib-dynload")) or not os.path.isdir(target_dynload):
        shutil.copytree(dynload, target_dynload, symlinks=True, dirs_exist_ok=True)
    libs = os.path.join(home, "lib")
    modules = [os.path.join(target_dynload, f) for f in sorted(os.listdir(target_dynload)) if f.endswith(".so")]
    bundled: dict[str, str] = {}
    for elf in (binary, *modules):
        bundled.update(needed(elf))
    for soname, path in sorted(bundled.items()):
        shutil.copy2(os.path.realpath(path), os.path.join(libs, soname))
    # RUNPATH, not LD_LIBRARY_PATH: the tool's subprocesses keep the system's own libraries.
    for elf, origin in [(binary, "$ORIGIN/../lib"), *((m, "$ORIGIN/../..") for m in modules),
                        *((os.path.join(libs, s), "$ORIGIN") for s in bundled)]:
        os.chmod(elf, os.stat(elf).st_mode | 0o200)
        subprocess.run([patchelf, "--set-rpath", origin, elf], check=True)
    subprocess.run([binary, "-m", "venv", os.path.join(prefix, "venv")], check=True)
    print(f"{prefix}: own {version} with {len(bundled)} bundled libraries ({', '.join(sorted(bundled)) or 'none'}), "
          f"virtualenv {prefix}/venv")


if __name__ == "__main__":
    main(*sys.argv[1:])
