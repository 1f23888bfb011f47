"""Text features of the local classifier, shared by training and inference.

Everything here is stateless or takes its fitted state (IDF weights, anchor vectors) as
arguments, so the training script and the shipped model compute exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class NgramHasher:
    """Hashed word 1-2-gram and character 2-5-gram counts (no vocabulary to ship).

    Characters are taken inside word boundaries (``char_wb``), which copes with misspellings
    and obfuscated slurs better than words alone.
    """

    n_features: int = 2**16

    def counts(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Raw (word, char) count matrices, each (n, n_features)."""
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": self.n_features, "alternate_sign": False, "norm": None}
        words = HashingVectorizer(ngram_range=(1, 2), **common)
        chars = HashingVectorizer(ngram_range=(2, 5), analyzer="char_wb", **common)
        return words.transform(texts).tocsr(), chars.transform(texts).tocsr()


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear TF times IDF, rows scaled to unit length (as scikit-learn's TfidfTransformer)."""
    from sklearn.preprocessing import normalize

    weighted = counts.astype(np.float64, copy=True)
    np.log(weighted.data, out=weighted.data)
    weighted.data += 1.0
    weighted = weighted @ sparse.diags(idf.astype(np.float64))
    return normalize(weighted, norm="l2", copy=False).tocsr()


def ngram_features(
    hasher: NgramHasher, texts: Sequence[str], word_idf: np.ndarray, char_idf: np.ndarray
) -> sparse.csr_matrix:
    """The word and char TF-IDF blocks side by side: (n, 2 * n_features)."""
    words, chars = hasher.counts(texts)
    return sparse.hstack([tfidf(words, word_idf), tfidf(chars, char_idf)]).tocsr()


def anchor_similarity(
    embeddings: np.ndarray, anchors: np.ndarray, anchor_owner: np.ndarray, n_outputs: int
) -> np.ndarray:
    """For each output column, the highest cosine between a text and that column's anchors.

    ``embeddings`` and ``anchors`` have unit-length rows; ``anchor_owner[k]`` is the output
    column of anchor ``k``. Returns (n, n_outputs).
    """
    cosines = embeddings @ anchors.T
    out = np.full((embeddings.shape[0], n_outputs), -1.0, dtype=np.float64)
    for column in range(n_outputs):
        mine = anchor_owner == column
        if mine.any():
            out[:, column] = cosines[:, mine].max(axis=1)
    return out
