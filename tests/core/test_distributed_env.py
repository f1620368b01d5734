"""Every CLI command leaves the process group it ran in (torchrun ranks then exit with their own codes)."""

import pytest
import torch.distributed as dist

from supernet.cli import main


@pytest.fixture
def group_of_one(tmp_path):
    """A gloo process group of one rank in this process, as a torchrun rank has by the command's end."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["spaces", "--json"], 0), (["cost", "--space", "no-such-space", "--arch", "0"], 2)],
    ids=["success", "refusal"],
)
def test_a_command_leaves_the_process_group_whatever_its_outcome(group_of_one, capsys, argv, code):
    assert main(argv) == code
    assert not dist.is_initialized()
