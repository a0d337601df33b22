"""Files a store keeps in its own folder for its samples, found, aged and removed.

A sample's ``source`` names the image it was extracted from.  ``locard ingest`` leaves
images where they are (the source names a file outside the store); ``locard serve``
keeps each enrolled image inside the store folder (``api-images/``), and that copy
belongs to the store: deleting the last sample that names it deletes the file, and a
file there that no sample names is an orphan (an enrolment that died between writing
the file and committing the sample).

A file counts as named by a source that ends with the file's path relative to the
store folder, so sources written by a process with another working directory, or
before the store folder was moved, still hold on to their file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .store import GalleryStore


@dataclass(frozen=True)
class StoreFile:
    """A file under the store folder.

    Attributes
    ----------
    path : Path
    key : str
        Its path relative to the store folder, ``/``-separated (``api-images/ab/ab12...``).
    age_s : float
        Seconds since it was last written.
    """

    path: Path
    key: str
    age_s: float


@dataclass(frozen=True)
class Deletion:
    """What :func:`delete_subject_and_files` removed."""

    samples: list[int]
    files: list[Path]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def key_in_source(source: str, folder: str) -> str | None:
    """The store-relative path under ``folder`` that a source names, or None.

    Found by the source's tail (``.../FOLDER/rest``), so it holds for relative sources
    and for a store folder that was moved since.
    """
    parts = source.replace("\\", "/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == folder:
            return "/".join(parts[i:])
    return None


def owned_file(store: Path, source: str) -> Path | None:
    """The file a sample's source names when it lies inside the store folder, else None.

    A relative source is taken relative to the working directory, as the matcher read it.
    """
    if not source:
        return None
    try:
        rel = Path(source).resolve().relative_to(Path(store).resolve())
    except (ValueError, OSError):
        return None
    return Path(store) / rel if rel.parts else None


def files_under(store: Path, folder: str, now: float | None = None) -> list[StoreFile]:
    """Every plain file under ``STORE/folder`` (none when the folder is absent), by key."""
    root = Path(store) / folder
    now = time.time() if now is None else now
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:  # removed meanwhile
                continue
            out.append(StoreFile(p, p.relative_to(store).as_posix(), max(0.0, now - st.st_mtime)))
    return sorted(out, key=lambda f: f.key)


def named_files(store: GalleryStore, folder: str) -> dict[str, float]:
    """Store-relative paths under ``folder`` that some sample names -> newest such sample's ``created``."""
    out: dict[str, float] = {}
    for source, created in store.con.execute(
            "SELECT source, MAX(created) FROM samples WHERE source LIKE ? ESCAPE '\\' GROUP BY source",
            (f"%{_like_escape(folder)}/%",)):
        key = key_in_source(source, folder)
        if key is not None:
            out[key] = max(created, out.get(key, created))
    return out


def is_named(store: GalleryStore, key: str) -> bool:
    """Whether any sample's source names the store file ``key`` (see :func:`key_in_source`)."""
    return store.con.execute("SELECT 1 FROM samples WHERE source=? OR source LIKE ? ESCAPE '\\' LIMIT 1",
                             (key, "%/" + _like_escape(key))).fetchone() is not None


def remove_unnamed(store: GalleryStore, files: Iterable[Path]) -> list[Path]:
    """Delete those of the store's ``files`` that no sample names any more; returns the deleted ones.

    Run it where samples are added (the service's gallery thread), so that a file is not
    judged between being placed and being committed.
    """
    removed = []
    root = Path(store.path)
    for f in sorted(set(files)):
        try:
            key = Path(f).relative_to(root).as_posix()
        except ValueError:
            continue  # not the store's: never touched
        if not is_named(store, key):
            try:
                Path(f).unlink()
            except FileNotFoundError:
                continue
            removed.append(Path(f))
    return removed


def delete_subject_and_files(store: GalleryStore, subject: str | int, **delete) -> Deletion:
    """Delete a subject (:meth:`GalleryStore.delete_subject`, given ``delete`` as its keyword
    arguments: ``reason``, ``actor``) and the image files only it named.

    The database side leaves no bytes of the templates behind (``secure_delete`` and a
    WAL checkpoint); the files removed are the store's own copies (inside the store
    folder) that no remaining sample names.

    Raises
    ------
    SubjectNotFoundError
    """
    _, samples = store.subject(subject)
    ids = store.delete_subject(subject, **delete)
    owned = [f for f in (owned_file(store.path, s.source) for s in samples) if f is not None]
    return Deletion(ids, remove_unnamed(store, owned))
