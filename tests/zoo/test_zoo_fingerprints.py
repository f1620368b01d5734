"""Saved checkpoints keep loading: a refactor of a zoo module leaves its spaces' fingerprints and the
supernets' parameter names and shapes exactly as they were (pinned from the code before issue 16's
clean-up of the MobileNet and quantized-ResNet factories). A deliberate change of a space updates the
pin here, and says in its commit that old checkpoints of that space no longer load."""

import hashlib
import json

import pytest

from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.space import create_space

FINGERPRINTS = {
    ("fairnas", None): "11e05a051bb73813",
    ("fairnas", "fashion-mnist"): "b7eb31807b0d3c1f",
    ("scarlet-s1", None): "82be2738c4c03450",
    ("scarlet-s1", "fashion-mnist"): "edf7fd7d760c1cb5",
    ("scarlet-s2", None): "17540155feb56945",
    ("scarlet-s2", "fashion-mnist"): "40b5bc1d384cef91",
    ("resnet18-quant", None): "e266d7ea12b5f811",
    ("resnet18-quant", "fashion-mnist"): "5908976b419cc770",
    ("resnet34-quant", None): "675b608204d469c5",
    ("resnet34-quant", "fashion-mnist"): "a401bf1e8c9f64c9",
}
# sha256 of the JSON list of (state_dict key, shape) of the fashion-mnist supernet with ELS identities
PARAMETERS = {
    "fairnas": "c9e8a8344b931c2d",
    "scarlet-s1": "6c371c99d3bb5e30",
    "scarlet-s2": "1fc62572f8b3d528",
    "resnet18-quant": "5a4b6b3dbdaa0d18",
    "resnet34-quant": "76e8f1033fdca2a5",
}


@pytest.mark.parametrize(("name", "preset"), sorted(FINGERPRINTS, key=str))
def test_fingerprint_is_unchanged(name, preset):
    assert create_space(name, preset=preset).fingerprint() == FINGERPRINTS[(name, preset)]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_names_and_shapes_are_unchanged(name):
    net = build_supernet(create_space(name, preset="fashion-mnist"), SupernetOptions("els"))
    blob = json.dumps([(key, list(value.shape)) for key, value in net.state_dict().items()])
    assert hashlib.sha256(blob.encode()).hexdigest()[:16] == PARAMETERS[name]
