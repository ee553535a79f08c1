"""Fixtures of the database tests."""
import pytest


@pytest.fixture(scope="session")
def database_cli(forked):
    """``database_cli(*args)``: ``python -m dass.database args``, forked from a warm interpreter
    (``forked`` of tests/conftest.py); returns the CompletedProcess."""
    def run(*args):
        return forked(["-m", "dass.database", *args])
    return run
