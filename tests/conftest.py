"""Shared fixtures: tiny real models built once per run, the app on loopback.

pytest puts this folder on sys.path (rootdir conftest, no package), so the tests import
their helpers (fakes, tiny_models) directly; the project itself is installed (pip install -e .).
"""

from pathlib import Path

import pytest
from tiny_models import build_gemma3, build_llama


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def newline_model_dir(tmp_path_factory) -> Path:
    return build_llama(tmp_path_factory.mktemp("newline-llama"), newline_chain=True)


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory) -> Path:
    return build_gemma3(tmp_path_factory.mktemp("tiny-gemma3"))


@pytest.fixture(scope="session")
def tiny_policy(tiny_model_dir):
    from tts_explorer.policy.loading import load_policy

    return load_policy(str(tiny_model_dir), dtype="fp32")


@pytest.fixture(scope="session")
def app_url(tiny_model_dir):
    """The app on loopback, offering the embedded model (default) and the tiny test model."""
    from app_server import running_app

    from tts_explorer.settings import Settings

    settings = Settings(
        models=("embedded", str(tiny_model_dir)),
        scorers=("arithmetic", "confidence", "judge", "mc-rollout", "mc-rollout-oracle"),
        search_slots=1,  # one run at a time: the tests of the queue (Stop while queued) need runs to wait
    )
    with running_app(settings) as url:
        yield url
