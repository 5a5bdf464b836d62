"""A trained change model on disk: versioned files, never overwritten.

A model named ``NAME`` at version ``N`` is three files in one folder:

* ``NAME-vN.model.txt``: the LightGBM booster (text dump, evaluated by ``trees``);
* ``NAME-vN.card.json``: its model card (training data, bands, features, label
  licence, cross-validated scores, decision threshold, id, the model file's SHA-256);
* ``NAME-vN.card.md``: the same card for people.

``save_model`` picks the next free version; ``load_model`` takes a card path, a model
file path, a folder (its newest model), a name or ``NAME-vN`` (looked up in the shipped
models, ``eowatch.models``, or a given folder). Every failure is an ``InputError``
naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .trees import Forest, parse_forest

__all__ = ["LearnedModel", "SHIPPED_DIR", "DEFAULT_MODEL", "load_model", "save_model", "next_version"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = "oscd-urban"
_VERSIONED = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)\.card\.json$")
FORMAT = "eowatch-change-model/1"


def _lightgbm() -> Any:
    """LightGBM, which training needs (inference does not: ``trees``)."""
    try:
        import lightgbm
    except ImportError:
        raise InputError(
            "the learned change model needs LightGBM; install it (pip install 'lightgbm>=4')"
        ) from None
    return lightgbm


@dataclass(frozen=True)
class LearnedModel:
    """A loaded model: its card and booster text. The trees are parsed once, when first used
    (the object travels to window workers as plain data: pickling keeps the text only)."""

    card: dict[str, Any]
    booster_text: str
    #: The region stage's booster (None: pixel route only, regions keep their pixels' values).
    region_text: str | None = None

    @property
    def id(self) -> str:
        return str(self.card["id"])

    @property
    def version(self) -> int:
        return int(self.card["version"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.card["features"])

    @property
    def threshold(self) -> float:
        return float(self.card["decision_threshold"])

    @property
    def candidate_alpha(self) -> float:
        return float(self.card["candidate_alpha"])

    @property
    def mad_bands(self) -> tuple[str, ...]:
        return tuple(self.card["mad_bands"])

    @property
    def region_threshold(self) -> float | None:
        """Pixel probability above which regions are rated by the region stage (None: no stage)."""
        value = self.card.get("region_threshold")
        return None if value is None or self.region_text is None else float(value)

    @cached_property
    def forest(self) -> Forest:
        return parse_forest(self.booster_text)

    @cached_property
    def region_forest(self) -> Forest | None:
        return None if self.region_text is None else parse_forest(self.region_text)

    def predict_regions(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Change probability (expected share of changed pixels) of each region's row."""
        if features.shape[0] == 0 or self.region_forest is None:
            return np.zeros(features.shape[0], dtype=np.float32)
        return self.region_forest.predict(features)

    def predict(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Change probability of each row of ``features`` (n, len(features)), by the compiled
        evaluator (``trees``: LightGBM is needed to train only)."""
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return self.forest.predict(features)

    def __getstate__(self) -> dict[str, Any]:
        return {"card": self.card, "booster_text": self.booster_text, "region_text": self.region_text}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key in ("card", "booster_text", "region_text"):
            object.__setattr__(self, key, state[key])


def next_version(folder: Path, name: str) -> int:
    """One more than the newest version of ``name`` in ``folder`` (1 when none)."""
    versions = [int(m["version"]) for m in _cards(folder) if m["name"] == name]
    return max(versions, default=0) + 1


def _cards(folder: Path) -> list[re.Match[str]]:
    if not folder.is_dir():
        return []
    return [m for p in folder.iterdir() if (m := _VERSIONED.match(p.name))]


def save_model(
    folder: Path, name: str, booster_text: str, card: dict[str, Any], region_text: str | None = None
) -> Path:
    """Write ``NAME-vN`` (the next free version) into ``folder``; returns the card's path.
    Files are created exclusively: an existing model is never overwritten. ``region_text``:
    the region stage's booster (``NAME-vN.regions.txt``)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or re.search(r"-v\d+$", name):
        raise InputError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (no -vN suffix)")
    folder.mkdir(parents=True, exist_ok=True)
    version = next_version(folder, name)
    stem = f"{name}-v{version}"
    digest = _sha256(booster_text)
    full = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "id": f"{stem}-{digest[:12]}",
        "model_file": f"{stem}.model.txt",
        "model_sha256": digest,
        "region_model_file": None if region_text is None else f"{stem}.regions.txt",
        "region_model_sha256": None if region_text is None else _sha256(region_text),
        **card,
    }
    with open(folder / f"{stem}.model.txt", "x", encoding="utf-8") as f:
        f.write(booster_text)
    if region_text is not None:
        with open(folder / f"{stem}.regions.txt", "x", encoding="utf-8") as f:
            f.write(region_text)
    with open(folder / f"{stem}.card.json", "x", encoding="utf-8") as f:
        f.write(json.dumps(full, indent=1) + "\n")
    with open(folder / f"{stem}.card.md", "x", encoding="utf-8") as f:
        f.write(card_markdown(full))
    return folder / f"{stem}.card.json"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def card_markdown(card: dict[str, Any]) -> str:
    """The model card for people."""
    cv = card.get("cross_validation") or {}
    model = card.get("model", {})
    region_features = ", ".join(card.get("region_features", []))
    bands, mad = ", ".join(card.get("bands", [])), ", ".join(card.get("mad_bands", []))
    lines = [
        f"# Change model {card['id']}",
        "",
        f"* Name / version: `{card['name']}` v{card['version']}",
        f"* Created: {card.get('created', '-')} with eowatch {card.get('eowatch_version', '-')}",
        f"* Model: {model.get('family', '-')} ({model.get('trees', '-')} trees)",
        f"* Bands read: {bands}; MAD bands: {mad}",
        f"* Candidates: MAD chi-square above its alpha={card.get('candidate_alpha')} threshold",
        f"* Decision threshold on the change probability: {card.get('decision_threshold')}",
        f"* Region stage: regions of pixel probability > {card.get('region_threshold')} rated by "
        f"{card.get('region_model_file') or 'none (pixel route)'} from {region_features}",
        f"* Features ({len(card.get('features', []))}): {', '.join(card.get('features', []))}",
        f"* Label licence: **{card.get('label_licence', 'unknown')}**",
        "",
        "## Training data",
        "",
        *(
            f"* {p['name']}: {p.get('source', '')} ({p.get('labelled_px', 0)} labelled px, "
            f"{p.get('change_px', 0)} change) licence {p.get('licence', '-')}"
            for p in card.get("training_data", [])
        ),
        "",
        "## Cross-validated scores",
        "",
    ]
    if cv:
        lines.append(f"{cv.get('scheme', '')}: {json.dumps(cv.get('mean', {}))}")
        lines += [f"* {r['name']}: F1 {r['f1']:.3f} precision {r['precision']:.3f} recall {r['recall']:.3f}"
                  for r in cv.get("pairs", [])]  # fmt: skip
    else:
        lines.append("not computed")
    return "\n".join(lines) + "\n"


def _resolve(ref: str | Path, search: Path | None) -> Path:
    path = Path(ref)
    if path.is_dir():
        cards = sorted(_cards(path), key=lambda m: int(m["version"]))
        if not cards:
            raise InputError(f"no model card (NAME-vN.card.json) in {path}; train one with `eowatch train`")
        return path / cards[-1].string
    if path.name.endswith(".model.txt"):
        path = path.with_name(path.name[: -len(".model.txt")] + ".card.json")
    if path.suffix == ".json" or path.exists() or "/" in str(ref):
        if not path.is_file():
            raise InputError(
                f"model file {path} does not exist; give a model card (NAME-vN.card.json) written by "
                "`eowatch train`, or a shipped model's name"
            )
        return path
    name = str(ref)
    folders = [f for f in (search, SHIPPED_DIR) if f is not None]
    for folder in folders:
        cards = _cards(folder)
        exact = [m for m in cards if f"{m['name']}-v{m['version']}" == name]
        named = sorted((m for m in cards if m["name"] == name), key=lambda m: int(m["version"]))
        if exact or named:
            return folder / (exact or named)[-1].string
    known = sorted({f"{m['name']}" for f in folders for m in _cards(f)})
    raise InputError(
        f"no model named {name!r}; known models: {', '.join(known) or 'none'} "
        "(give a model card path, or train one with `eowatch train`)"
    )


def load_model(ref: str | Path, search: Path | None = None) -> LearnedModel:
    """The model that ``ref`` names (see the module doc), its file checked against the card."""
    card_path = _resolve(ref, search)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise TypeError("the card is not a JSON object")
        model_path = card_path.with_name(str(card["model_file"]))
        text = model_path.read_text(encoding="utf-8")
        region_file = card.get("region_model_file")
        region_text = (
            None if not region_file else card_path.with_name(region_file).read_text(encoding="utf-8")
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"cannot read the change model {card_path}: {exc}; retrain it with `eowatch train` "
            "or give another model"
        ) from None
    if card.get("format") != FORMAT:
        raise InputError(f"{card_path} is not an eowatch change model card (format {card.get('format')!r})")
    for path, content, key in (
        (model_path.name, text, "model_sha256"),
        (region_file, region_text, "region_model_sha256"),
    ):
        if content is not None and _sha256(content) != card.get(key):
            raise InputError(
                f"{path} does not match the SHA-256 its card {card_path.name} "
                "records (modified or truncated); retrain with `eowatch train` or restore the file"
            )
    model = LearnedModel(card, text, region_text)
    _ = model.forest, model.region_forest  # a model that does not parse fails here, not in a window
    return model
