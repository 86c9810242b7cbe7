import shutil

import pytest
import torch

from vae_helpers import MNISTDataModule, default_data_dir, load_mnist
from vae_helpers.data import MNIST_MD5


def test_the_four_files_load_as_uint8_tensors():
    images, labels = load_mnist(train=True)
    assert images.shape == (60000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60000,) and set(labels.unique().tolist()) == set(range(10))
    assert load_mnist(train=False)[0].shape == (10000, 28, 28)


def test_batches_shapes_ranges_and_split():
    dm = MNISTDataModule(batch_size=64, val_size=1000, subset=2000)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (64,)
    assert 0 <= x.min() and x.max() <= 1 and len(x.unique()) > 2  # grey values
    assert len(dm.train_dataloader()) == 2000 // 64 + 1
    assert sum(len(b[0]) for b in dm.val_dataloader()) == 1000
    assert sum(len(b[0]) for b in dm.test_dataloader()) == 10000
    # the validation images are held out of the 60,000 training images: no overlap with training
    train = {bytes(t.numpy()) for t in dm.splits["train"][0]}
    assert not any(bytes(v.numpy()) in train for v in dm.splits["val"][0])


def test_dynamic_binarization_draws_anew_and_test_set_is_fixed():
    dm = MNISTDataModule(batch_size=500, subset=500, binarize="dynamic")
    loader = dm.train_dataloader()
    loader.set_epoch(0)
    a = next(iter(loader))
    loader.set_epoch(0)
    b = next(iter(loader))
    loader.set_epoch(1)
    c = next(iter(loader))
    assert set(a[0].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a[0], b[0])  # same epoch, same draw: reproducible
    assert not torch.equal(a[0], c[0])  # a new epoch, a new draw (and order)
    t1 = MNISTDataModule(binarize="dynamic").tensors("test")[0]
    t2 = MNISTDataModule(binarize="static").tensors("test")[0]
    assert set(t1.unique().tolist()) == {0.0, 1.0} and torch.equal(t1, t2)
    # a binarized pixel is 1 about as often as its grey value says
    grey = MNISTDataModule().tensors("test")[0]
    assert abs(t1.mean().item() - grey.mean().item()) < 0.002


def test_static_binarization_is_the_same_every_epoch():
    dm = MNISTDataModule(batch_size=100, subset=100, binarize="static")
    loader = dm.train_dataloader()
    first = torch.cat([x for x, _ in loader])
    loader.set_epoch(0)
    again = torch.cat([x for x, _ in loader])
    assert torch.equal(first, again) and set(first.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(eval_batch_size=-1), "eval_batch_size must be a positive integer"),
    (dict(binarize="always"), "binarize must be one of"),
    (dict(subset=0), "subset must be"),
    (dict(val_size=60000), "val_size must be"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MNISTDataModule(**kwargs)


def test_missing_folder_says_where_to_put_the_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(root=tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert "missing" in message and "VAE_DATA_DIR" in message and "MNIST/raw" in message


def test_failed_download_gives_the_same_clear_message(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(FileNotFoundError, match="could not be downloaded .*Error downloading"):
        load_mnist(root=tmp_path, download=True)


def test_partial_and_corrupt_folders_are_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    source = default_data_dir() / "MNIST" / "raw"
    names = list(MNIST_MD5)
    for name in names[:3]:
        shutil.copy(source / name, raw / name)
    with pytest.raises(FileNotFoundError, match=f"missing .*{names[3]}"):
        load_mnist(root=tmp_path, download=False)
    shutil.copy(source / names[3], raw / names[3])
    with open(raw / names[0], "r+b") as f:
        f.truncate(1000)
    with pytest.raises(FileNotFoundError, match=f"{names[0]} is truncated or corrupt"):
        load_mnist(root=tmp_path, download=False)
