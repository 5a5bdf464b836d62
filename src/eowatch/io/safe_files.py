"""The files of one SAFE product, as a folder or a zip (read in place, through GDAL's
``/vsizip/`` for rasters, never unpacked), addressed by paths relative to the SAFE root.

Sentinel-1 (anchored on ``manifest.safe``) and Sentinel-2 (anchored on its
``MTD_MSIL*.xml``) products share this access; which mission a zip holds is told by
``zip_members``' names.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import InputError, InputReadError

__all__ = ["SafeFiles", "zip_members"]


def zip_members(archive: Path) -> frozenset[str]:
    """The member names of a zip; ``InputReadError`` when it cannot be read."""
    try:
        with zipfile.ZipFile(archive) as z:
            return frozenset(z.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputReadError(
            f"cannot read zip {archive}: {exc}; the download is incomplete or damaged"
        ) from exc


@dataclass(frozen=True)
class SafeFiles:
    """One product's files: ``root`` is the SAFE folder (or the SAFE folder inside the
    zip), ``anchor`` the metadata file that identified it, relative to root."""

    root: str
    anchor: str
    archive: str | None = None  # the zip file, when zipped
    members: frozenset[str] = frozenset()

    @classmethod
    def zipped(cls, archive: Path, anchor: re.Pattern[str], inner: str, what: str) -> SafeFiles:
        """The product in ``archive`` whose anchor file matches ``anchor`` (the shortest
        path, i.e. the product's own, when several match; ending in ``inner`` if given)."""
        names = zip_members(archive)
        wanted = PurePosixPath(inner).name if inner.lower().endswith((".xml", ".safe")) else None
        found = sorted(
            n for n in names if anchor.match(PurePosixPath(n).name) and (wanted is None or n.endswith(wanted))
        )
        if not found:
            raise InputError(
                f"{archive} is not a zipped SAFE product: it holds no {what}; give the zip of a "
                "Sentinel-1 GRD or Sentinel-2 L1C/L2A SAFE as downloaded from the archive"
            )
        top = PurePosixPath(min(found, key=len))
        return cls(str(top.parent), top.name, str(archive.resolve()), names)

    def _member(self, rel: str) -> str:
        """The zip member name of ``rel`` (the SAFE folder may be the zip's root)."""
        return f"{self.root}/{rel}" if self.root not in ("", ".") else rel

    def read(self, rel: str) -> bytes:
        try:
            if self.archive is not None:
                with zipfile.ZipFile(self.archive) as z:
                    return z.read(self._member(rel))
            return (Path(self.root) / rel).read_bytes()
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise InputReadError(f"cannot read {rel} of {self.name}: {exc}") from exc

    def exists(self, rel: str) -> bool:
        if self.archive is not None:
            return self._member(rel) in self.members
        return (Path(self.root) / rel).is_file()

    def listing(self, pattern: str) -> list[str]:
        """The files whose path relative to root matches the regular expression ``pattern``."""
        if self.archive is None:
            root = Path(self.root)
            relative = (str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        else:
            prefix = self._member("")
            relative = (n[len(prefix) :] for n in self.members if n.startswith(prefix))
        return sorted(n for n in relative if re.fullmatch(pattern, n))

    def href(self, rel: str) -> str:
        if self.archive is not None:
            return f"/vsizip/{self.archive}/{self._member(rel)}"
        return str(Path(self.root) / rel)

    @property
    def name(self) -> str:
        return self.archive or self.root
