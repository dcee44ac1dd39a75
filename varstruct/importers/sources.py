"""Where a disentanglement_lib model is read from: a model zip or its unpacked folder
(:func:`open_source`), and the expansion of source paths (folders of zips) into models.

Safety: a zip with a member named with ``..``, an absolute or drive path, a NUL byte, or a
symlink member is refused as a whole; members are read in memory (never extracted) with a size
cap (``MAX_MEMBER``); an unpacked folder's symlinked files are refused.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from pathlib import Path

from ..errors import VarstructError, first_line

HUB = "model/tfhub/variables/variables"
MAX_MEMBER = 1 << 30  # bytes: larger members are refused (a dlib model is ~3 MB)


class ImportError_(VarstructError):
    """A source that cannot be imported (malformed, hostile or unsupported); one line."""


class Source:
    """One model: read(relative path) -> bytes, exists(path), members(), a display name."""

    name: str

    def read(self, rel: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def exists(self, rel: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def members(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


def _hostile(name: str) -> str | None:
    """Why a zip member's name is refused, or None."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "a '..' component"
    if "\x00" in name:
        return "a NUL byte"
    return None


class ZipSource(Source):
    """A model zip; every member is checked when it is opened."""

    def __init__(self, path: Path):
        self.path, self.name = Path(path), str(path)
        try:
            self.zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as e:
            raise ImportError_(f"{path}: not a readable zip ({first_line(e)})") from None
        infos = self.zf.infolist()
        for info in infos:
            why = _hostile(info.filename)
            if why:
                self.zf.close()
                raise ImportError_(f"{path}: refused: member {info.filename[:80]!r} has {why}")
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_ISLNK(mode):
                self.zf.close()
                raise ImportError_(f"{path}: refused: member {info.filename[:80]!r} is a symlink")
        names = [i.filename for i in infos if not i.is_dir()]
        roots = sorted({n[:-len(HUB + ".index")] for n in names if n.endswith(HUB + ".index")})
        if not roots:
            self.zf.close()
            raise ImportError_(f"{path}: no TF-Hub module ({HUB}.index) in the zip")
        if len(roots) > 1:
            self.zf.close()
            raise ImportError_(f"{path}: holds {len(roots)} models ({', '.join(r or '.' for r in roots[:3])}); "
                               f"one per zip")
        self.root = roots[0]
        self._infos = {i.filename: i for i in infos if not i.is_dir()}

    def members(self):
        n = len(self.root)
        return [k[n:] for k in self._infos if k.startswith(self.root)]

    def exists(self, rel):
        return self.root + rel in self._infos

    def read(self, rel):
        info = self._infos.get(self.root + rel)
        if info is None:
            raise ImportError_(f"{self.name}: no {rel}")
        if info.file_size > MAX_MEMBER:
            raise ImportError_(f"{self.name}: {rel} is larger than {MAX_MEMBER >> 20} MiB; refused")
        try:
            with self.zf.open(info) as f:
                data = f.read(MAX_MEMBER + 1)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, RuntimeError, NotImplementedError,
                ValueError) as e:
            raise ImportError_(f"{self.name}: cannot read {rel} ({first_line(e)})") from None
        if len(data) > MAX_MEMBER:
            raise ImportError_(f"{self.name}: {rel} is larger than {MAX_MEMBER >> 20} MiB; refused")
        return data

    def close(self):
        self.zf.close()


class DirSource(Source):
    """An unpacked model (the folder holding ``model/tfhub``); symlinked files are refused."""

    def __init__(self, path: Path):
        self.root_path, self.name = Path(path), str(path)

    def _file(self, rel) -> Path:
        p = self.root_path / rel
        if p.is_symlink():
            raise ImportError_(f"{self.name}: refused: {rel} is a symlink")
        return p

    def members(self):
        out = []
        for dirpath, _, files in os.walk(self.root_path):
            for f in files:
                out.append((Path(dirpath) / f).relative_to(self.root_path).as_posix())
        return out

    def exists(self, rel):
        return self._file(rel).is_file()

    def read(self, rel):
        p = self._file(rel)
        if not p.is_file():
            raise ImportError_(f"{self.name}: no {rel}")
        if p.stat().st_size > MAX_MEMBER:
            raise ImportError_(f"{self.name}: {rel} is larger than {MAX_MEMBER >> 20} MiB; refused")
        try:
            return p.read_bytes()
        except OSError as e:
            raise ImportError_(f"{self.name}: cannot read {rel} ({e.strerror or first_line(e)})") from None


def is_model_dir(path: Path) -> bool:
    return (Path(path) / (HUB + ".index")).is_file()


def expand_sources(paths) -> list[tuple[Path, str | None]]:
    """Each source path -> the model zips / model folders it names, as (path, None), or
    (path, error line) for a path that names none; folders are listed in name order."""
    out = []
    for p in map(Path, paths):
        if p.is_file():
            out.append((p, None))
        elif p.is_dir():
            if is_model_dir(p):
                out.append((p, None))
                continue
            kids = sorted((c for c in p.iterdir() if (c.is_file() and c.suffix == ".zip") or
                           (c.is_dir() and is_model_dir(c))), key=_natural)
            if not kids:
                out.append((p, f"{p}: no model zips or unpacked models in the folder"))
            out.extend((c, None) for c in kids)
        else:
            out.append((p, f"{p}: no such file or folder"))
    return out


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def open_source(path: Path) -> Source:
    path = Path(path)
    if path.is_dir():
        if not is_model_dir(path):
            raise ImportError_(f"{path}: no TF-Hub module ({HUB}.index) in the folder")
        return DirSource(path)
    return ZipSource(path)
