import os

import pytest
import torch

# No progress bars in the tests, nor in the kernels nbval starts from this process (they inherit it);
# the test of the default sets and clears the variable itself.
os.environ.setdefault("VAE_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
