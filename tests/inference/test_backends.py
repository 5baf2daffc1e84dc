"""Embedding backends: the ONNX exports agree with sentence-transformers within the documented tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from market.core.embeddings import BACKEND_MIN_COSINE, spot_check_tolerance
from providers import inference

SENTENCES = [
    "We hold these truths to be self-evident, that all men are created equal.",
    "Four score and seven years ago our fathers brought forth on this continent a new nation.",
    "In the beginning God created the heaven and the earth.",
    "short",
    "Congress shall make no law respecting an establishment of religion, or prohibiting the free exercise thereof;"
    " or abridging the freedom of speech, or of the press.",
    "And the evening and the morning were the first day.",
] * 3


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return inference.embed(SENTENCES, backend="torch")


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_backends_agree_with_sentence_transformers(reference, backend):
    out = inference.embed(SENTENCES, backend=backend)
    assert out.shape == (len(SENTENCES), inference.EMBEDDING_DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    cosine = (out * reference).sum(axis=1)
    assert cosine.min() >= BACKEND_MIN_COSINE[backend], cosine.min()
    # Input order is kept although the embedder sorts by length internally.
    assert np.argmax(out[:6] @ reference[:6].T, axis=1).tolist() == list(range(6))


def test_the_onnx_export_is_built_once_and_cached_by_weight_hash():
    path = inference.onnx_model_path(quantized=False)
    mtime = path.stat().st_mtime_ns
    assert inference.weights_sha256()[:16] in str(path)
    assert inference.onnx_model_path(quantized=False).stat().st_mtime_ns == mtime


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(inference.EmbeddingBackendError, match="onnx-int8"):
        inference.embed(["x"], backend="tensorrt")
    with pytest.raises(ValueError, match="unknown embedding backend"):
        spot_check_tolerance("torch", "tensorrt")


def test_spot_check_tolerance_is_symmetric_and_loosest_for_int8():
    assert spot_check_tolerance("torch", "onnx-int8") == spot_check_tolerance("onnx-int8", "torch")
    assert spot_check_tolerance("onnx-int8", "onnx-int8") < spot_check_tolerance("torch", "onnx") < 1.0
    # Noise (cosine ~ 0) is far below every tolerance.
    assert min(spot_check_tolerance(a, b) for a in BACKEND_MIN_COSINE for b in BACKEND_MIN_COSINE) > 0.8


def test_a_provider_worker_embeds_with_its_chosen_backend(reference):
    """The agent's ``--embedding-backend`` reaches the worker: int8 rows are not torch's, yet within int8's bound."""
    import io

    from market.core.tickets import sentences_from_text
    from providers.jobs import JobWorker

    text = "\n".join(SENTENCES).encode()
    assert sentences_from_text(text) == SENTENCES
    rows = {b: np.load(io.BytesIO(JobWorker(embedding_backend=b).embed(text))) for b in ("torch", "onnx-int8")}
    np.testing.assert_allclose(rows["torch"], reference, atol=1e-5)
    cosine = (rows["onnx-int8"] * reference).sum(axis=1)
    assert cosine.min() >= BACKEND_MIN_COSINE["onnx-int8"]
    assert not np.allclose(rows["onnx-int8"], reference, atol=1e-4)  # it really ran the quantised model
