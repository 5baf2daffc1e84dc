"""Embedding backends a provider may run, and the tolerance the verifier allows each (pure data).

A provider chooses how it computes all-MiniLM-L6-v2 embeddings; the exchange's spot-check compares a
sample of rows against another provider's re-execution, so it must know how far two honest backends
can differ. The figures are the worst row-wise cosine similarity measured against sentence-transformers
fp32 on the project's 240-line demo text (``benchmarks/inference.py`` reports ``min_cosine`` per backend
in every run), rounded down with margin:

* ``torch`` — sentence-transformers on PyTorch fp32, the reference: 1.0 against itself.
* ``onnx`` — the same weights exported to ONNX, fp32, ONNX Runtime: measured >= 0.99999; allowed 0.999.
* ``onnx-int8`` — ONNX Runtime with dynamic int8 quantisation of the weights (per channel, uint8):
  measured min 0.984 (median 0.993); allowed 0.97.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]

#: Backends by name (the provider's ``--embedding-backend`` choices).
EMBEDDING_BACKENDS: tuple[str, ...] = get_args(EmbeddingBackend)

#: Least row-wise cosine similarity to sentence-transformers fp32 that a backend's honest output reaches.
BACKEND_MIN_COSINE: dict[str, float] = {"torch": 0.999, "onnx": 0.999, "onnx-int8": 0.97}


def spot_check_tolerance(backend_a: str, backend_b: str) -> float:
    """Least cosine similarity two honest providers' rows reach, one on each backend.

    Each backend's row is within angle ``acos(min_cos)`` of the reference row; by the triangle inequality
    on angles the two rows are within the sum of both angles, so the bound is ``cos(a + b)``.

    Raises:
        ValueError: an unknown backend name (the message lists the known ones).
    """
    angles = []
    for name in (backend_a, backend_b):
        if name not in BACKEND_MIN_COSINE:
            raise ValueError(f"unknown embedding backend {name!r}; use one of {', '.join(EMBEDDING_BACKENDS)}")
        angles.append(math.acos(BACKEND_MIN_COSINE[name]))
    return math.cos(sum(angles))
