"""MNIST held in memory as uint8 tensors and batched by indexing.

A batch is ``(x, y)`` with ``x`` of shape (B, 1, 28, 28), float32 in [0, 1], and ``y`` of shape (B,),
int64 digit labels. Binarization turns each grey value g into a Bernoulli(g) draw, so the data matches a
Bernoulli likelihood p(x|z):

- ``binarize=None``: grey values, as stored.
- ``binarize="dynamic"``: a fresh draw for every training batch (a regulariser; the usual protocol for
  reporting log-likelihoods), while validation and test sets are binarized once with a fixed seed.
- ``binarize="static"``: every split binarized once with a fixed seed.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import pytorch_lightning as pl
import torch

#: md5 sums of the four uncompressed files, as published with the data set.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
BINARIZE_CHOICES = (None, "dynamic", "static")


def default_data_dir() -> Path:
    """The data folder: ``$VAE_DATA_DIR`` if set, else ``data/`` at the project root."""
    env = os.environ.get("VAE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "data"


def _md5(path: Path) -> str:
    stat = path.stat()
    return _md5_of_version(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _md5_of_version(path: str, size: int, mtime_ns: int) -> str:
    # keyed by size and modification time too, so a file replaced or cut short is read again
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_root(root, name: str = "root") -> None:
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or os.PathLike) or None, got {type(root).__name__}")


def mnist_problems(root: str | os.PathLike | None = None) -> list[str]:
    """What is wrong with ``root/MNIST/raw`` (missing or corrupt files); empty when all is well."""
    _check_root(root)
    raw = Path(root if root is not None else default_data_dir()) / "MNIST" / "raw"
    problems = []
    for name, md5 in MNIST_MD5.items():
        path = raw / name
        if not path.is_file():
            problems.append(f"missing {path}")
        elif (found := _md5(path)) != md5:
            problems.append(f"{path} is truncated or corrupt ({path.stat().st_size} bytes, md5 {found}, "
                            f"expected {md5})")
    return problems


def _missing_data_message(root: Path, problems: list[str], reason: str) -> str:
    listed = "\n  ".join(problems)
    header = f"MNIST is not usable in {root}:\n  {listed}\nIt could not be downloaded ({reason}).\n"
    if any((root / name).is_file() for name in MNIST_MD5):
        # a common slip: giving the folder of the files itself rather than the folder above MNIST/
        above = f" (here {root.parent.parent})" if root.name == "raw" and root.parent.name == "MNIST" else ""
        return header + (f"The files are in {root} itself: give the folder that holds MNIST/raw/{above} instead, "
                         "as data_dir or in the environment variable VAE_DATA_DIR.")
    return header + (f"Put the four uncompressed files {', '.join(MNIST_MD5)} in {root / 'MNIST' / 'raw'}, "
                     "or set the environment variable VAE_DATA_DIR to a folder whose MNIST/raw/ holds them.")


@functools.lru_cache(maxsize=4)
def _load_split(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=train, download=False)
    return ds.data.contiguous(), ds.targets.long().contiguous()


def load_mnist(train: bool = True, root: str | os.PathLike | None = None, download: bool = True):
    """MNIST images as uint8 (N, 28, 28) and labels as int64 (N,); N is 60,000 (train) or 10,000 (test).

    Files are read from ``root/MNIST/raw`` (default: :func:`default_data_dir`) and checked against their
    md5 sums. When they are missing or corrupt and ``download`` is true, torchvision fetches them; when
    that is impossible, a ``FileNotFoundError`` says where to put them.
    """
    if not isinstance(train, bool):
        raise TypeError(f"train must be True or False, got {train!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    _check_root(root)
    root = Path(root).expanduser().resolve() if root is not None else default_data_dir()
    problems = mnist_problems(root)
    if problems:
        if not download:
            raise FileNotFoundError(_missing_data_message(root, problems, "download=False"))
        try:
            from torchvision.datasets import MNIST

            for name in MNIST_MD5:  # a corrupt file would stop torchvision from fetching a good one
                bad = root / "MNIST" / "raw" / name
                if bad.is_file() and _md5(bad) != MNIST_MD5[name]:
                    bad.unlink()
            for split in (True, False):
                MNIST(root, train=split, download=True)
        except Exception as err:  # no network, a proxy, a read-only folder: all end the same way
            raise FileNotFoundError(_missing_data_message(root, problems, f"{type(err).__name__}: {err}")) from None
        problems = mnist_problems(root)
        if problems:
            raise FileNotFoundError(_missing_data_message(root, problems, "the downloaded files do not match"))
    return _load_split(str(root), train)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_seed(seed) -> None:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def binarize_once(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed Bernoulli draw of uint8 grey images, returned as uint8 in {0, 255}."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError(f"images must be a uint8 tensor of grey values in [0, 255], got "
                        + (f"dtype {images.dtype}" if isinstance(images, torch.Tensor) else type(images).__name__))
    _check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.float() / 255, generator=g).to(torch.uint8) * 255


class TensorBatches:
    """Batches ``(x, y)`` cut from uint8 tensors by indexing: no per-item work, no worker processes.

    Under ``torch.distributed`` each process takes every ``world_size``-th example. Shuffled (training)
    loaders give every process the same number of batches, as gradient synchronisation needs; evaluation
    loaders keep every example exactly once.
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool = False, dynamic_binarize: bool = False,
                 seed: int = 0):
        for name, t in (("images", images), ("labels", labels)):
            if not isinstance(t, torch.Tensor) or t.dim() < 1:
                raise TypeError(f"{name} must be a tensor with one row per example, got "
                                + (f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__))
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        _check_seed(seed)
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.dynamic_binarize, self.seed = batch_size, shuffle, dynamic_binarize, seed
        self.epoch = 0
        # Lightning reads these DataLoader attributes: it calls sampler.set_epoch(epoch) before each epoch
        self.sampler, self.batch_sampler = self, None

    def set_epoch(self, epoch: int) -> None:
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.images)
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
            return order[: n - n % world][rank::world]
        return torch.arange(rank, n, world)

    def __len__(self) -> int:
        return -(-len(self._indices()) // self.batch_size)

    def __iter__(self):
        idx = self._indices()
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7)
        for start in range(0, len(idx), self.batch_size):
            b = idx[start:start + self.batch_size]
            # index_select copies whole rows: ten times as fast here as the general indexing of images[b]
            x = self.images.index_select(0, b).unsqueeze(1).float().div_(255)
            if self.dynamic_binarize:
                # x ~ Bernoulli(g) as (u < g) with u ~ U(0, 1): the same draw, three times as fast on a CPU
                x = (torch.rand(x.shape, generator=g) < x).float()
            yield x, self.labels.index_select(0, b)
        self.epoch += 1  # so that a plain loop over the loader also sees a fresh order each epoch


class MNISTDataModule(pl.LightningDataModule):
    """MNIST train/validation/test splits as in-memory tensors.

    Args:
        data_dir: folder holding ``MNIST/raw``; default :func:`default_data_dir`.
        batch_size: training batch size; evaluation uses ``eval_batch_size``.
        val_size: images held out of the 60,000 training images for validation (0 for none).
        subset: if given, train on only this many of the remaining training images.
        binarize: ``None``, ``"dynamic"`` or ``"static"`` (see the module docstring).
        seed: fixes the split, the shuffling and every binarization.
    """

    def __init__(self, data_dir=None, batch_size: int = 128, val_size: int = 5000, subset: int | None = None,
                 binarize: str | None = None, seed: int = 0, eval_batch_size: int = 1000, download: bool = True):
        super().__init__()
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not _is_int(val_size) or not 0 <= val_size < 60_000:
            raise ValueError(f"val_size must be an integer in [0, 60000), got {val_size!r}")
        if subset is not None and (not _is_int(subset) or not 1 <= subset <= 60_000 - val_size):
            raise ValueError(f"subset must be None or an integer in [1, {60_000 - val_size}], got {subset!r}")
        if binarize not in BINARIZE_CHOICES:
            raise ValueError(f"binarize must be one of {BINARIZE_CHOICES}, got {binarize!r}")
        _check_seed(seed)
        _check_root(data_dir, "data_dir")
        if not isinstance(download, bool):
            raise TypeError(f"download must be True or False, got {download!r}")
        self.save_hyperparameters(ignore=["data_dir", "download"])  # what defines the data, not where it lives
        self.data_dir, self.download = data_dir, download
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.subset, self.binarize, self.seed = val_size, subset, binarize, seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def prepare_data(self) -> None:
        load_mnist(True, self.data_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_mnist(True, self.data_dir, self.download)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        val, train = order[: self.val_size], order[self.val_size:]
        if self.subset is not None:
            train = train[: self.subset]
        test_images, test_labels = load_mnist(False, self.data_dir, self.download)
        self.splits = {"train": (images[train], labels[train]), "val": (images[val], labels[val]),
                       "test": (test_images, test_labels)}
        if self.binarize is not None:  # evaluation sets are binarized once, with a fixed seed
            for i, split in enumerate(("val", "test")):
                self.splits[split] = (binarize_once(self.splits[split][0], self.seed + 1 + i), self.splits[split][1])
        if self.binarize == "static":
            self.splits["train"] = (binarize_once(self.splits["train"][0], self.seed), self.splits["train"][1])

    def tensors(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """A whole split as ``(x, y)``: x float (N, 1, 28, 28) in [0, 1] (binarized as configured), y (N,)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        self.setup()
        images, labels = self.splits[split]
        return images.unsqueeze(1).float() / 255, labels

    def train_dataloader(self) -> TensorBatches:
        self.setup()
        return TensorBatches(*self.splits["train"], self.batch_size, shuffle=True,
                             dynamic_binarize=self.binarize == "dynamic", seed=self.seed)

    def val_dataloader(self):
        self.setup()
        if self.val_size == 0:
            return []
        return TensorBatches(*self.splits["val"], self.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        self.setup()
        return TensorBatches(*self.splits["test"], self.eval_batch_size)
