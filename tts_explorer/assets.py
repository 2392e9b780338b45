"""Where the files the project ships are found: `assets/` at the repository root in a source
checkout, `tts_explorer/assets/` inside an installed wheel (pyproject.toml maps one onto the
other), and the problem sets it carries, by name.

Nothing here reads a path outside the repository or the installed package.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UserError

_PACKAGE = Path(__file__).resolve().parent
# a wheel carries the folder inside the package; a source tree (or an editable install) beside it
ASSETS = _PACKAGE / "assets" if (_PACKAGE / "assets").is_dir() else _PACKAGE.parent / "assets"

GSM8K_TRAIN, GSM8K_TEST_DEV = "gsm8k-train", "gsm8k-test-dev"
# name -> file under ASSETS: the problem sets a command may name instead of a path
DATASETS = {
    "easy": "problems/easy.jsonl",
    "harder": "problems/harder.jsonl",
    "synthetic-s11": "problems/synthetic-s11.jsonl",
    "synthetic-s12": "problems/synthetic-s12.jsonl",
    "synthetic-s13": "problems/synthetic-s13.jsonl",
    GSM8K_TRAIN: "data/gsm8k_train.jsonl",
    GSM8K_TEST_DEV: "data/gsm8k_test_dev.jsonl",
    "math500": "data/math500.jsonl",
}


def asset(*parts: str) -> Path:
    """A shipped file or folder, e.g. asset("prompts", "default.json")."""
    return ASSETS.joinpath(*parts)


def data_path(name_or_path: str) -> Path:
    """A shipped problem set's file when given its name (DATASETS), else the path as given."""
    if name_or_path in DATASETS:
        return asset(DATASETS[name_or_path])
    if not name_or_path:
        raise UserError(f"no data file given; a path or one of: {', '.join(DATASETS)}")
    return Path(name_or_path)
