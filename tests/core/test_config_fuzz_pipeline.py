"""The ``dass.pipeline`` share of the property of ``test_config_fuzz.py``: every hostile value on every
numeric key of the pipeline's config, on top of its tiny valid run, ends in exit 0 (the run went to
the end: search, KD, export and report) or 2 (a user error), never in an escaping exception.

A file of its own: its accepted values each run the whole tiny pipeline (about a second each, most
of the sweep's time), and pytest-xdist (``--dist loadfile``) gives each file to one worker, so that
the other worker can take the other entries' sweep meanwhile.
"""
from __future__ import annotations

import pytest

from core.test_config_fuzz import PIPELINE, cases_of, check, fx, per_key  # noqa: F401  (fx: the module fixture)


@pytest.mark.slow
@per_key(PIPELINE)
def test_every_hostile_value_on_every_pipeline_key_exits_0_or_2(entry_key, fx, tmp_path, monkeypatch):
    check(cases_of([entry_key]), fx, tmp_path, monkeypatch)
