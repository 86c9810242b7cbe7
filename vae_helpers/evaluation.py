"""How good are the codes? Scores that use labels only to judge, never to train.

``knn_accuracy`` asks: if each test code is given the majority label of its k nearest training codes,
how often is it right? High accuracy means codes of the same digit lie close together.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on (train_codes (N, D), train_labels (N,))."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    train_codes, test_codes = _numpy(train_codes), _numpy(test_codes)
    train_codes, test_codes = train_codes.reshape(len(train_codes), -1), test_codes.reshape(len(test_codes), -1)
    if train_codes.shape[1] != test_codes.shape[1]:
        raise ValueError(f"train_codes and test_codes must have the same dimension, got {train_codes.shape[1]} "
                         f"and {test_codes.shape[1]}")
    classifier = KNeighborsClassifier(n_neighbors=k).fit(train_codes, _numpy(train_labels))
    return float(classifier.score(test_codes, _numpy(test_labels)))
