"""``market`` does not import ``providers``: the pipeline gets its prover worker injected."""

from __future__ import annotations

import subprocess
import sys

import pytest

from market.pipeline.errors import PipelineConfigError, PipelineError, StageCrashed
from market.pipeline.replay import replay_batch
from proving.errors import RaymarketError


def test_pipeline_modules_import_nothing_of_providers():
    """Importing every pipeline module (and its CLI) loads no ``providers`` module."""
    code = ("import sys, market.pipeline.runtime, market.pipeline.replay, market.cli.pipeline\n"
            "bad = sorted(m for m in sys.modules if m == 'providers' or m.startswith('providers.'))\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_replay_without_a_worker_class_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.setattr("market.pipeline.replay._registered", {})
    with pytest.raises(PipelineConfigError, match="use_worker"):
        replay_batch("no-such-batch", tmp_path)


def test_pipeline_errors_are_raymarket_errors():
    assert issubclass(PipelineError, RaymarketError) and issubclass(StageCrashed, RaymarketError)
