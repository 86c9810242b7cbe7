import shutil

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

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


def test_loaders_are_torch_dataloaders_sampled_by_distributed_sampler():
    dm = MNISTDataModule(batch_size=64, val_size=1000, subset=2000, binarize="dynamic")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        # Lightning keeps a DistributedSampler as it is, rather than putting in one of its own under DDP
        assert isinstance(loader, DataLoader) and isinstance(loader.sampler, DistributedSampler)
    x, y = next(iter(dm.val_dataloader()))
    assert torch.equal(x, dm.tensors("val")[0][:1000]) and torch.equal(y, dm.splits["val"][1])


def test_an_epoch_gives_the_same_batches_however_it_is_reached():
    dm = MNISTDataModule(batch_size=300, subset=1000, binarize="dynamic", seed=2)
    loader = dm.train_dataloader()
    passes = [torch.cat([x for x, _ in loader]) for _ in range(3)]  # a plain loop moves on each epoch
    assert len(set(bytes(p.numpy()) for p in passes)) == 3
    resumed = dm.train_dataloader()  # as after a checkpoint, which sets the epoch
    resumed.set_epoch(2)
    assert torch.equal(torch.cat([x for x, _ in resumed]), passes[2])
    loader.set_epoch(1)
    next(iter(loader))  # a pass cut short stays in its epoch
    assert torch.equal(torch.cat([x for x, _ in loader]), passes[1])
    # every image once per epoch, in a new order
    labels = [torch.cat([y for _, y in loader]) for _ in range(2)]
    assert torch.equal(labels[0].sort().values, dm.splits["train"][1].sort().values)
    assert not torch.equal(labels[0], labels[1])
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        loader.set_epoch(-1)


def test_a_pass_leaves_torchs_global_random_numbers_alone():
    # the model's noise comes from them, seeded at every epoch: a loader must not draw from them
    dm = MNISTDataModule(batch_size=250, val_size=500, subset=500, binarize="dynamic")
    state = torch.get_rng_state()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        next(iter(loader))
        list(loader)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("world", [2, 3])
def test_processes_share_the_examples_out(world, monkeypatch):
    def loaders(rank):
        monkeypatch.setattr(dist, "is_available", lambda: True)
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_world_size", lambda *args: world)
        monkeypatch.setattr(dist, "get_rank", lambda *args: rank)
        return dm.train_dataloader(), dm.val_dataloader()

    dm = MNISTDataModule(batch_size=100, val_size=999, subset=1000)
    train, val = zip(*(loaders(rank) for rank in range(world)))
    # training: disjoint shares of the images, of equal length for the gradient synchronisation
    shares = [{bytes(x.numpy()) for batch, _ in loader for x in batch} for loader in train]
    assert len({len(s) for s in shares}) == 1 and len({len(loader) for loader in train}) == 1
    assert len(set.union(*shares)) == 1000 - 1000 % world
    # evaluation: every image exactly once, process r taking images r, r + world, ...
    images = dm.tensors("val")[0]
    for rank, loader in enumerate(val):
        assert torch.equal(torch.cat([x for x, _ in loader]), images[rank::world])


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(eval_batch_size=-1), "eval_batch_size must be an integer >= 1"),
    (dict(seed=-1), "seed must be an integer >= 0"),
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
