"""How good are the codes? Scores that use labels only to judge, never to train.

- ``codes`` encodes a data set in batches to one point per image: z = f(x) for an autoencoder, the mean
  of q(z|x) for a VAE. ``pca_codes`` gives the linear baseline, the top principal components.
- ``knn_accuracy`` asks: if each test code is given the majority label of its k nearest training codes,
  how often is it right? High accuracy means codes of the same digit lie close together.
- ``precision_recall`` asks of draws from a sampler, say the prior: do they land where the encoder puts
  data (a decoder has only learned what to draw near the codes it was trained on), and do they reach all
  of it? ``in_manifold`` answers the first half point by point.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from . import checks
from .latents import encode_batches


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on (train_codes (N, D), train_labels (N,)), scored
    on (test_codes (M, D), test_labels (M,)); k <= N."""
    k = checks.integer("k", k)
    train_codes = checks.matrix("train_codes", train_codes, float64=False)
    test_codes = checks.matrix("test_codes", test_codes, float64=False)
    train_labels, test_labels = _labels("train_labels", train_labels), _labels("test_labels", test_labels)
    checks.same_length(train_codes=train_codes, train_labels=train_labels)
    checks.same_length(test_codes=test_codes, test_labels=test_labels)
    if train_codes.shape[1] != test_codes.shape[1]:
        raise ValueError(f"train_codes and test_codes must have the same dimension, got {train_codes.shape[1]} "
                         f"and {test_codes.shape[1]}")
    if k > len(train_codes):
        raise ValueError(f"k must be at most the number of training codes ({len(train_codes)}), got {k}")
    classifier = KNeighborsClassifier(n_neighbors=k).fit(train_codes, train_labels)
    return float(classifier.score(test_codes, test_labels))


def codes(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """One code per image, encoded ``batch_size`` at a time: (N, ...) -> (N, D).

    ``model.encode(x)`` may return points (an ``AutoEncoder``: z = f(x)) or a distribution q(z|x) (a
    ``VAE``), in which case its mean E_q[z] = mu(x) is the code.
    """
    outputs = encode_batches(model, x, batch_size)  # checks x and batch_size
    return torch.cat([out if isinstance(out, torch.Tensor) else out.mean for out in outputs])


def pca_codes(train_x, test_x, dim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Project flattened images onto the top ``dim`` principal components of ``train_x``.

    With the training images centred at their mean m and the top principal directions W (P, dim), the
    code is z = W^T (x - m): the best linear ``dim``-dimensional summary in squared error. Returns
    (train codes (N, dim), test codes (M, dim)) as float32 tensors.
    """
    dim = checks.integer("dim", dim)
    train, test = checks.matrix("train_x", train_x), checks.matrix("test_x", test_x)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train_x and test_x must have the same number of features, got {train.shape[1]} "
                         f"and {test.shape[1]}")
    if dim > min(train.shape):
        raise ValueError(f"dim must be at most min(N, features) = {min(train.shape)}, got {dim}")
    pca = PCA(n_components=dim, svd_solver="randomized", random_state=0).fit(train)
    return (torch.from_numpy(pca.transform(train)).float(), torch.from_numpy(pca.transform(test)).float())


def in_manifold(points, codes, k: int = 3, chunk_size: int = 2048) -> torch.Tensor:
    """Whether each point lies in the region the codes occupy, estimated as a union of balls.

    Each code c_n gets a ball reaching to its k-th nearest other code, of radius r_n; a point u is
    inside when ||u - c_n|| <= r_n for some n (the k-NN manifold estimate of Kynkaenniemi et al., 2019).
    The radii follow the codes' own spacing, so no scale has to be chosen. points (M, D), codes (N, D)
    -> a boolean tensor (M,).
    """
    k, chunk_size = checks.integer("k", k), checks.integer("chunk_size", chunk_size)
    points, codes = checks.matrix("points", points), checks.matrix("codes", codes)
    _check_regions(k, points=points, codes=codes)
    return _in_manifold(points, codes, k, chunk_size)


def _in_manifold(points: np.ndarray, codes: np.ndarray, k: int, chunk_size: int = 2048) -> torch.Tensor:
    distance, _ = NearestNeighbors(n_neighbors=k + 1).fit(codes).kneighbors(codes)
    radius = torch.from_numpy(distance[:, k]).float()  # column 0 is the code itself
    codes_t, points_t = torch.from_numpy(codes).float(), torch.from_numpy(points).float()
    return torch.cat([(torch.cdist(chunk, codes_t) <= radius).any(1) for chunk in points_t.split(chunk_size)])


def precision_recall(data_codes, sample_codes, k: int = 3) -> tuple[float, float]:
    """How well samples match data, both seen as codes (Kynkaenniemi et al., 2019):

        precision = fraction of samples inside the data's region   (do samples land where data is?)
        recall    = fraction of data inside the samples' region    (do samples reach all of the data?)

    each region estimated by :func:`in_manifold` with ``k`` neighbours. Compare samplers with equal
    numbers of samples, since the radii shrink as points get denser.
    """
    k = checks.integer("k", k)
    data, samples = checks.matrix("data_codes", data_codes), checks.matrix("sample_codes", sample_codes)
    _check_regions(k, data_codes=data, sample_codes=samples)
    precision = _in_manifold(samples, data, k).double().mean().item()
    recall = _in_manifold(data, samples, k).double().mean().item()
    return precision, recall


# --- conversion and argument checks --------------------------------------------------------------------


def _labels(name: str, labels) -> np.ndarray:
    a = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array or tensor of labels (N,), got shape {a.shape}")
    return a


def _check_regions(k: int, **sets: np.ndarray) -> None:
    """Two sets of points of the same dimension, each with more than k rows (a ball reaches its k-th neighbour)."""
    (first, a), (second, b) = sets.items()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{first} and {second} must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    for name, rows in sets.items():
        if len(rows) <= k:
            raise ValueError(f"{name} must hold more than k = {k} rows (each ball reaches the k-th nearest other "
                             f"point), got {len(rows)}")
