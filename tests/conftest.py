"""Fixtures shared by the whole test suite.

The real recordings live in ``../shared/data`` beside the repository (set
``EDGEMON_SHARED_DATA`` to point elsewhere). Tests that need them are skipped,
with the reason, where the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    configured = os.environ.get("EDGEMON_SHARED_DATA")
    if configured:
        return Path(configured)
    return REPOSITORY.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real CWRU, MFPT and IMS recordings; skips the test where it is absent."""
    path = _shared_data_dir()
    if not (path / "cwru").is_dir():
        pytest.skip(f"real recordings not found in {path}; set EDGEMON_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def cwru_dir(shared_data: Path) -> Path:
    """Folder of the shared CWRU recordings."""
    return shared_data / "cwru"


def _shared_part(shared_data: Path, name: str, description: str) -> Path:
    path = shared_data / name
    if not path.exists():
        pytest.skip(f"{description} not found in {shared_data}: {name} is missing")
    return path


@pytest.fixture(scope="session")
def mfpt_dir(shared_data: Path) -> Path:
    """Folder of the shared MFPT recordings; skips the test where it is absent."""
    return _shared_part(shared_data, "mfpt", "MFPT recordings")


@pytest.fixture(scope="session")
def ims_dir(shared_data: Path) -> Path:
    """Folder of the shared IMS recordings; skips the test where it is absent."""
    return _shared_part(shared_data, "ims", "IMS recordings")


@pytest.fixture(scope="session")
def shared_readme(shared_data: Path) -> Path:
    """The shared data's README with its checksum tables; skips the test where it is absent."""
    return _shared_part(shared_data, "README.md", "the checksum tables")


@pytest.fixture(scope="session")
def excerpt_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained with the default settings on the training split of the bundled excerpt."""
    from edgemon.demo import demo_split, train_demo_model

    path = tmp_path_factory.mktemp("excerpt-model") / "model.onnx"
    train, _ = demo_split()
    train_demo_model(train, path)
    return path


# --- Mosquitto brokers on free loopback ports (tests/brokers.py) -------------
from brokers import broker, broker_factory, publisher_factory, tls_files  # noqa: E402, F401
