"""Which Parquet columns hold a prepared dataset's inputs and targets, by input kind and task.

Images (``image``) are uint8 pixels, scaled to [0, 1] on the fly; tabular features
(``features``) are float32, standardized at prepare time. Multi-class and binary targets are an
integer ``label``; multi-label (0/1 per label) and regression (standardized values) targets are
a float32 ``target``. Every binary column holds fixed-width little-endian values, so a whole
column decodes with one copy (see ``pipeline.data.feed.decode_fixed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IMAGE, FEATURES, LABEL, TARGET = "image", "features", "label", "target"
LABEL_TASKS = ("multiclass", "binary")  # tasks whose target is one integer label


@dataclass(frozen=True)
class Layout:
    input_column: str              # IMAGE or FEATURES
    input_shape: tuple[int, ...]
    target_column: str = LABEL     # LABEL or TARGET
    target_width: int = 0          # float32 values per row of TARGET; 0 for LABEL

    @property
    def input_dtype(self) -> type[np.generic]:
        return np.uint8 if self.input_column == IMAGE else np.float32

    @property
    def target_shape(self) -> tuple[int, ...]:
        return (self.target_width,) if self.target_column == TARGET else ()

    @property
    def target_dtype(self) -> type[np.generic]:
        return np.float32 if self.target_column == TARGET else np.int64

    @property
    def columns(self) -> list[str]:
        return [self.input_column, self.target_column]

    def empty(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.zeros((0, *self.input_shape), self.input_dtype),
                np.zeros((0, *self.target_shape), self.target_dtype))


def layout_for(task: str, input_kind: str, input_shape: Sequence[int],
               target_width: int) -> Layout:
    target = (LABEL, 0) if task in LABEL_TASKS else (TARGET, target_width)
    return Layout(IMAGE if input_kind == "image" else FEATURES, tuple(input_shape), *target)


def as_layout(layout: Layout | Sequence[int]) -> Layout:
    """A bare shape means what it always meant: uint8 images with an integer label."""
    return layout if isinstance(layout, Layout) else Layout(IMAGE, tuple(layout))
