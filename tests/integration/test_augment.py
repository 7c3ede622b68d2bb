"""The augment job on a small prepared dataset: real Spark, real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.feed import read_shards
from pipeline.data.manifest import load_manifest
from tests.helpers import load_job, prepare_tiny

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, spark) -> Path:
    return prepare_tiny(tmp_path_factory.mktemp("augment"), n_train=120, n_test=40, side=12)


def _augment(prepared: Path, out: Path, copies: int = 3, extra: str = "") -> Path:
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(f"name: big\ninput: {prepared}\ncopies: {copies}\nseed: 11\nshards: 3\n"
                   f"output: {out}\n{extra}")
    assert load_job("augment").main(["--config", str(cfg)]) == 0
    return out / "big"


def _split(root: Path, split: str):
    m = load_manifest(root)
    return read_shards([root / split / s.file for s in m.splits[split].shards], m.image_shape)


def test_copies_keep_labels_shapes_and_differ_from_the_source(prepared, tmp_path):
    big = _augment(prepared, tmp_path / "a")
    src, out = load_manifest(prepared), load_manifest(big)
    assert out.splits["train"].rows == 4 * src.splits["train"].rows  # original + 3 copies
    # Labels preserved: every class grows by exactly the same factor.
    assert out.splits["train"].class_histogram == [4 * n for n in
                                                    src.splits["train"].class_histogram]
    assert out.splits["test"] == src.splits["test"] and out.splits["val"] == src.splits["val"]
    assert len(out.splits["train"].shards) == 3 and out.image_shape == src.image_shape
    x_src, _ = _split(prepared, "train")
    x_out, _ = _split(big, "train")
    assert x_out.dtype == np.uint8 and x_out.shape[1:] == (12, 12, 1)
    originals = {img.tobytes() for img in x_src}
    new = [img for img in x_out if img.tobytes() not in originals]
    assert len(new) >= 0.9 * 3 * len(x_src)  # the copies are distortions, not duplicates
    assert abs(float(np.mean(new)) - float(x_src.mean())) < 0.25 * float(x_src.mean())


def test_same_seed_same_bytes_and_rerun_is_a_no_op(prepared, tmp_path):
    a = _augment(prepared, tmp_path / "a", copies=2, extra="elastic: true\n")
    b = _augment(prepared, tmp_path / "b", copies=2, extra="elastic: true\n")
    assert load_manifest(a).fingerprint == load_manifest(b).fingerprint
    xa, ya = _split(a, "train")
    xb, yb = _split(b, "train")
    key = sorted(zip((x.tobytes() for x in xa), ya.tolist(), strict=True))
    assert key == sorted(zip((x.tobytes() for x in xb), yb.tolist(), strict=True))
    before = (a / "manifest.json").stat().st_mtime_ns
    _augment(prepared, tmp_path / "a", copies=2, extra="elastic: true\n")
    assert (a / "manifest.json").stat().st_mtime_ns == before
