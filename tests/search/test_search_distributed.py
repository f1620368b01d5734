"""Under torchrun, a generation's candidates are split across ranks; the result equals one process."""

import json
import os
import socket

import torch.multiprocessing as mp

from tests.search.test_search_cli import table_space


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, table: str, run_dir: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank)
    )
    from supernet.config.schema import load_config
    from supernet.core.distributed_env import leave_process_group
    from supernet.jobs.search import search_table

    cfg = load_config(None, ["search.options={population: 8, iterations: 3}"])
    space = table_space()  # the table fixture's
    try:
        out = search_table(cfg, __import__("pathlib").Path(table), space, __import__("pathlib").Path(run_dir))
    finally:
        leave_process_group()  # as the CLI does: without it, a rank that ends first may die of SIGABRT
    with open(f"{run_dir}/rank{rank}.json", "w") as f:
        json.dump({"best": out["best"], "history": [r["arch"] for r in out["history"]]}, f)


def test_two_ranks_equal_one_process(tmp_path, table):
    path = str(table[0])
    mp.start_processes(_worker, args=(1, _free_port(), path, str(tmp_path / "one")), nprocs=1, start_method="spawn")
    mp.start_processes(_worker, args=(2, _free_port(), path, str(tmp_path / "two")), nprocs=2, start_method="spawn")
    one = json.loads((tmp_path / "one" / "rank0.json").read_text())
    for rank in (0, 1):
        two = json.loads((tmp_path / "two" / f"rank{rank}.json").read_text())
        assert two == one
    assert (tmp_path / "two" / "result.json").exists()
