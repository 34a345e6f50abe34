import pytest


@pytest.fixture(autouse=True)
def _artifacts_of_its_own(artifact_root):
    """Every test here stores artifacts in a folder of its own (tests/conftest.py)."""
    return artifact_root
