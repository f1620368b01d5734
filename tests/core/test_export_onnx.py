"""`supernet export --onnx`: model.onnx runs in onnxruntime and equals the supernet path in PyTorch."""

import json
import random
from dataclasses import asdict

import numpy as np
import onnx
import onnxruntime as ort
import torch

from supernet.cli import main
from supernet.config.schema import DataConfig
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.train.checkpoint import save_checkpoint
from tests.conftest import randomize_batchnorm


def write_supernet(run_dir, space, identity="els"):
    """A checkpoint `load_supernet` accepts, with random weights and BN statistics."""
    options = SupernetOptions(identity)
    torch.manual_seed(0)
    net = randomize_batchnorm(Supernet(space, options))
    meta = {
        "kind": "supernet",
        "space": space.name,
        "space_options": dict(space.options),
        "space_fingerprint": space.fingerprint(),
        "supernet": options.to_dict(),
        "data": asdict(DataConfig()),
        "mean": [0.286],
        "std": [0.353],
    }
    save_checkpoint(run_dir / "checkpoints", meta, {"model": net.state_dict()})
    return net


def test_onnx_export_matches_pytorch_and_records_normalisation(tmp_path, tiny_space, capsys):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    net = write_supernet(tmp_path / "run", tiny_space)
    arch = tiny_space.sample(random.Random(3))
    code = main(
        [
            "export",
            "--supernet",
            str(tmp_path / "run"),
            "--arch",
            arch.to_string(),
            "--out",
            str(tmp_path / "e"),
            "--onnx",
        ]
    )
    assert code == 0, capsys.readouterr().err
    proto = onnx.load(str(tmp_path / "e" / "model.onnx"))
    assert proto.opset_import[0].version == 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["normalisation_mean"]) == [0.286] and json.loads(props["normalisation_std"]) == [0.353]
    session = ort.InferenceSession(str(tmp_path / "e" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(5, *tiny_space.input_shape)  # another batch size than the export's example
    with torch.no_grad():
        expected = net(x, arch).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
