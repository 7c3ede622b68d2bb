"""``latest.json`` as a typed state (train/checkpoints.py): written and read in one place, and
anything malformed read as no checkpoint, so a damaged file starts the run afresh."""

from __future__ import annotations

import pytest

from pipeline.train import checkpoints
from pipeline.train.checkpoints import CheckpointState


def test_a_state_reads_back_as_written(tmp_path):
    prefix = tmp_path / "epoch-0003"
    (tmp_path / "epoch-0003.index").write_bytes(b"")
    state = CheckpointState(3, str(prefix), "run-1", {"loss": 0.25})
    (tmp_path / checkpoints.STATE).write_text(state.to_json())
    assert checkpoints.read_state(tmp_path) == state


@pytest.mark.parametrize("text", ['{"epoch": "three", "prefix": "p"}', '{"prefix": "p"}',
                                  '{"epoch": 1, "prefix": "p", "logs": {"loss": "high"}}',
                                  '[1, 2]', "not json"])
def test_a_malformed_state_is_no_checkpoint(tmp_path, text):
    (tmp_path / "p.index").write_bytes(b"")
    (tmp_path / checkpoints.STATE).write_text(text.replace('"p"', f'"{tmp_path / "p"}"'))
    assert checkpoints.read_state(tmp_path) is None


def test_a_state_whose_files_are_gone_is_no_checkpoint(tmp_path):
    state = CheckpointState(1, str(tmp_path / "epoch-0001"), "run-1")
    (tmp_path / checkpoints.STATE).write_text(state.to_json())
    assert checkpoints.read_state(tmp_path) is None
