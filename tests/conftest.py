import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tiny_models import build_llama  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def newline_model_dir(tmp_path_factory) -> Path:
    return build_llama(tmp_path_factory.mktemp("newline-llama"), newline_chain=True)


@pytest.fixture(scope="session")
def tiny_policy(tiny_model_dir):
    from tts_explorer.policy.loading import load_policy

    return load_policy(str(tiny_model_dir), dtype="fp32")
