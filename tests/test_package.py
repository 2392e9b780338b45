"""The project as a real package: a wheel built from this tree and installed (not editable)
into a fresh virtual environment, beside the dependencies already installed, works from a
directory that holds no part of the repository: the shipped assets and data are inside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tts_explorer.loopback import free_port
from tts_explorer.scorers import DEFAULT_SCORER

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the venv's bin folder, an empty working directory) with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((base / "dist").glob("tts_explorer-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # the dependencies this run already has, below the venv's own packages; the .pth names
    # plain folders only, so this checkout's editable install is not seen there
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (purelib / "deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return venv / "bin", elsewhere


def _run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(bin_dir / "tts-explorer"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_the_wheel_carries_the_assets_and_the_data(installed):
    bin_dir, elsewhere = installed
    wheel = next(bin_dir.parent.parent.glob("dist/tts_explorer-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "tts_explorer/assets/prm/smollm2-135m-probe/probe.safetensors",
        "tts_explorer/assets/prompts/default.json",
        "tts_explorer/assets/app.css",
        "tts_explorer/assets/scaling/compute_optimal.json",
        "tts_explorer/assets/problems/easy.jsonl",
        "tts_explorer/assets/data/gsm8k_train.jsonl",
        "tts_explorer/assets/data/LICENSE-GSM8K",
    ):
        assert shipped in names, shipped
    probe = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import tts_explorer, tts_explorer.assets as a; print(tts_explorer.__file__); print(a.ASSETS)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    venv = str(bin_dir.parent)
    assert probe[0].startswith(venv) and probe[1].startswith(venv)  # the wheel's copy, not this checkout


@pytest.mark.slow
def test_solve_with_the_default_scorer_from_another_directory(installed):
    bin_dir, elsewhere = installed
    done = _run(
        bin_dir,
        elsewhere,
        "solve",
        "Tom has 3 apples and buys 5 more. How many apples does he have now?",
        "--strategy",
        "best_of_n",
        "--n",
        "2",
        "--max-steps",
        "3",
        "--answer",
        "8",
        "--out",
        "tree.json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tree = json.loads((elsewhere / "tree.json").read_text())
    assert tree["meta"]["scorer"] == DEFAULT_SCORER  # the shipped PRM, found inside the package
    assert "answer:" in done.stdout
    bad = _run(bin_dir, elsewhere, "solve", "x", "--template", "../../etc/passwd")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown prompt template")  # before any model loads


@pytest.mark.slow
def test_train_prm_quick_reads_the_shipped_gsm8k_rows(installed, tiny_model_dir):
    bin_dir, elsewhere = installed
    done = _run(bin_dir, elsewhere, "train-prm", "--quick", "--model", str(tiny_model_dir), "--layers", "1,2")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((elsewhere / "artifacts" / "train-prm" / "checkpoint" / "metrics.json").read_text())
    assert summary["data"]["labelled_steps"]["perturbed/gsm8k"] > 0
    assert any(name.startswith("GSM8K train rows") for name in summary["evaluation"]["processbench"]["sets"])


@pytest.mark.slow
def test_the_app_command_serves_the_page(installed):
    bin_dir, elsewhere = installed
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    app = subprocess.Popen(
        [str(bin_dir / "tts-explorer"), "app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, page = time.monotonic() + 120, ""
        while time.monotonic() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                assert app.poll() is None, app.stdout.read()[-2000:]
                time.sleep(0.5)
        assert "TTS Explorer" in page
    finally:
        app.terminate()
        app.wait(timeout=30)
