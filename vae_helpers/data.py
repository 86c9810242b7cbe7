"""MNIST held in memory as uint8 tensors, binarized, and batched by torch's DataLoader.

A batch is ``(x, y)`` with ``x`` of shape (B, 1, 28, 28), float32 in [0, 1], and ``y`` of shape (B,),
int64 digit labels. Binarization turns each grey value g into a Bernoulli(g) draw, so the data matches a
Bernoulli likelihood p(x|z):

- ``binarize=None``: grey values, as stored.
- ``binarize="dynamic"``: a fresh draw for every training batch (a regulariser; the usual protocol for
  reporting log-likelihoods), while validation and test sets are binarized once with a fixed seed.
- ``binarize="static"``: every split binarized once with a fixed seed.

:class:`MNISTDataModule` hands Lightning a ``DataLoader`` over the tensors. Its sampler is torch's
``DistributedSampler``, which also splits the examples between the processes of ``torch.distributed``:
training shuffles by (seed, epoch) and gives every process the same number of batches, as gradient
synchronisation needs; evaluation keeps every example exactly once, in order. The loader fetches each
batch with one indexing operation per tensor, not example by example, and draws a dynamic binarization
from (seed, epoch) too, so the batches of an epoch are the same whether a run is resumed or not.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from . import checks

#: md5 sums of the four uncompressed files, as published with the data set.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
BINARIZE_CHOICES = (None, "dynamic", "static")
SPLITS = ("train", "val", "test")
_FOLDER = "a folder path (str or os.PathLike) or None"


# --- MNIST as tensors ----------------------------------------------------------------------------------

def load_mnist(train: bool = True, root: str | os.PathLike | None = None, download: bool = True):
    """MNIST images as uint8 (N, 28, 28) and labels as int64 (N,); N is 60,000 (train) or 10,000 (test).

    Files are read from ``root/MNIST/raw`` (default: :func:`default_data_dir`) and checked against their
    md5 sums. When they are missing or corrupt and ``download`` is true, torchvision fetches them into a
    temporary folder, and each replaces the file in ``MNIST/raw`` only once its md5 sum matches; when that is
    impossible, a ``FileNotFoundError`` says where to put them, and the files there are left as they were.
    """
    checks.flag("train", train)
    checks.flag("download", download)
    root = _folder("root", root)
    problems = _problems(root)
    if problems:
        if not download:
            raise FileNotFoundError(_missing_data_message(root, problems, "download=False"))
        _download(root, problems)
    return _load_split(str(root), train)


def default_data_dir() -> Path:
    """The data folder: ``$VAE_DATA_DIR`` if set, else ``data/`` at the project root."""
    env = os.environ.get("VAE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "data"


def mnist_problems(root: str | os.PathLike | None = None) -> list[str]:
    """What is wrong with ``root/MNIST/raw`` (missing or corrupt files); empty when all is well."""
    return _problems(_folder("root", root))


# --- binarization --------------------------------------------------------------------------------------

def binarize_once(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed Bernoulli draw of uint8 grey images, returned as uint8 in {0, 255}."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError(f"images must be a uint8 tensor of grey values in [0, 255], got {checks.show(images)}")
    seed = checks.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.float() / 255, generator=g).to(torch.uint8) * 255


def binarize_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fresh Bernoulli(x) draw of float images in [0, 1], as the indicator of u < x with u ~ U(0, 1).

    These are the draws the lessons' numbers come from (at twice the speed of ``torch.bernoulli`` on a CPU).
    """
    return (torch.rand(x.shape, generator=generator) < x).float()


# --- the LightningDataModule ---------------------------------------------------------------------------

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
        batch_size = checks.integer("batch_size", batch_size)
        eval_batch_size = checks.integer("eval_batch_size", eval_batch_size)
        if not checks.is_int(val_size) or not 0 <= val_size < 60_000:
            raise ValueError(f"val_size must be an integer in [0, 60000), got {val_size!r}")
        val_size = int(val_size)
        if subset is not None and (not checks.is_int(subset) or not 1 <= subset <= 60_000 - val_size):
            raise ValueError(f"subset must be None or an integer in [1, {60_000 - val_size}], got {subset!r}")
        subset = None if subset is None else int(subset)
        checks.choice("binarize", binarize, BINARIZE_CHOICES)
        seed = checks.seed("seed", seed)
        if data_dir is not None:
            checks.path("data_dir", data_dir, _FOLDER)
        checks.flag("download", download)
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
        """A whole split as ``(x, y)``: x float32 (N, 1, 28, 28) in [0, 1], y int64 (N,), the images as stored:

            binarize=None        every split: grey values
            binarize="dynamic"   "train": grey values (the loader draws a fresh binarization of each batch
                                 from them); "val" and "test": binary {0, 1}, drawn once with a fixed seed
            binarize="static"    every split: binary {0, 1}, drawn once with a fixed seed

        So under ``"dynamic"`` the training images returned here are not what a training batch holds; a
        binary copy of them is ``torch.bernoulli(x)``.
        """
        checks.choice("split", split, SPLITS)
        self.setup()
        images, labels = self.splits[split]
        return _to_float(images), labels

    def train_dataloader(self) -> MNISTLoader:
        self.setup()
        rows = _Rows(*self.splits["train"])
        world, rank = _process_group()
        # the seeds of the lessons' numbers: epoch e shuffles with seed * 1_000_003 + e, and binarizes with that + 7
        shuffle_seed = self.seed * 1_000_003
        sampler = DistributedSampler(rows, world, rank, shuffle=True, seed=shuffle_seed, drop_last=True)
        binarize_seed = shuffle_seed + 7 if self.binarize == "dynamic" else None
        return MNISTLoader(rows, self.batch_size, sampler=sampler, collate_fn=_float_batch,
                           binarize_seed=binarize_seed)

    def val_dataloader(self) -> MNISTLoader | list:
        return self._eval_loader("val") if self.val_size else []

    def test_dataloader(self) -> MNISTLoader:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> MNISTLoader:
        self.setup()
        rows = _Rows(*self.splits[split])
        return MNISTLoader(rows, self.eval_batch_size, sampler=_EachExampleOnce(rows, *_process_group()),
                           collate_fn=_float_batch)


# --- batching ------------------------------------------------------------------------------------------

class MNISTLoader(DataLoader):
    """torch's ``DataLoader`` over in-memory images, with batches fixed by (seed, epoch).

    The sampler's ``set_epoch`` (which Lightning calls before every epoch) picks the epoch, and a complete
    pass moves on to the next one, so that a plain loop over the loader also gets a fresh order each epoch.
    With ``binarize_seed``, a pass over epoch e binarizes its batches in turn with draws from a generator
    seeded with ``binarize_seed + e``.
    """

    def __init__(self, *args, binarize_seed: int | None = None, **kwargs):
        # a DataLoader draws a number at the start of every pass: from a generator of its own, not from
        # torch's global one, whose draws (the model's noise) would otherwise shift
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(*args, **kwargs)
        self.binarize_seed = binarize_seed

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(checks.integer("epoch", epoch, 0))

    def __iter__(self):
        draws = None
        if self.binarize_seed is not None:
            draws = torch.Generator().manual_seed(self.binarize_seed + self.sampler.epoch)
        for x, y in super().__iter__():
            yield (x if draws is None else binarize_batch(x, draws)), y
        self.sampler.set_epoch(self.sampler.epoch + 1)


class _Rows(TensorDataset):
    """A ``TensorDataset`` that fetches a whole batch with one ``index_select`` per tensor."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        # index_select copies whole rows: 9 us a batch of 128 where t[index] takes 112, 45 ms of a training epoch
        index = torch.tensor(indices)
        return tuple(t.index_select(0, index) for t in self.tensors)


def _float_batch(rows: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The loader's ``collate_fn``: uint8 images (B, 28, 28) and labels as ``(x, y)`` of the module docstring."""
    images, labels = rows
    return _to_float(images), labels


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.unsqueeze(1).float().div_(255)


class _EachExampleOnce(DistributedSampler):
    """``DistributedSampler`` for evaluation: in order, process r takes examples r, r + world size, ...,
    without the padding that would count some examples twice (so counts may differ by one)."""

    def __init__(self, dataset, num_replicas: int, rank: int):
        super().__init__(dataset, num_replicas, rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))


def _process_group() -> tuple[int, int]:
    """(world size, rank) under ``torch.distributed``, else (1, 0); Lightning asks for the loaders after
    starting its processes."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


# --- the files -----------------------------------------------------------------------------------------

def _folder(name: str, root) -> Path:
    if root is None:
        return default_data_dir()
    return checks.path(name, root, _FOLDER).expanduser().resolve()


def _problems(root: Path) -> list[str]:
    raw = root / "MNIST" / "raw"
    problems = []
    for name, md5 in MNIST_MD5.items():
        path = raw / name
        if not path.is_file():
            problems.append(f"missing {path}")
        elif (found := _md5(path)) != md5:
            problems.append(f"{path} is truncated or corrupt ({path.stat().st_size} bytes, md5 {found}, "
                            f"expected {md5})")
    return problems


def _download(root: Path, problems: list[str]) -> None:
    """Fetch the missing or corrupt files with torchvision into a temporary folder next to them, and move each
    into place only once it is complete and its md5 sum matches: a failed download leaves the folder as it was."""
    raw = root / "MNIST" / "raw"
    try:
        from torchvision.datasets import MNIST

        raw.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=raw) as tmp:
            for split in (True, False):
                MNIST(tmp, train=split, download=True)
            fetched = Path(tmp) / "MNIST" / "raw"
            for name, md5 in MNIST_MD5.items():
                path, new = raw / name, fetched / name
                if (not path.is_file() or _md5(path) != md5) and new.is_file() and _md5(new) == md5:
                    os.replace(new, path)  # atomic, on the same file system
    except Exception as err:  # no network, a proxy, a read-only folder: all end the same way
        raise FileNotFoundError(_missing_data_message(root, _problems(root), f"{type(err).__name__}: {err}")) from None
    problems = _problems(root)
    if problems:
        raise FileNotFoundError(_missing_data_message(root, problems, "the downloaded files do not match"))


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


@functools.lru_cache(maxsize=4)
def _load_split(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=train, download=False)
    return ds.data.contiguous(), ds.targets.long().contiguous()
