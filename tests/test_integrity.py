"""Weights integrity: only weights/ is read, only weights are deserialised, and altered files
give the retrain command on every page instead of a crash."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys

import h5py
import pytest

from conftest import ROOT, with_pythonpath


SHIPPED = ["autoencoder_mnist_z2", "autoencoder_mnist_z10", "autoencoder_fashion_mnist_z2",
           "autoencoder_fashion_mnist_z10"]
# The other kinds' files, as far as they are shipped yet (tests/test_kinds.py measures them).
SHIPPED += sorted(path.name[: -len(".weights.h5")] for pattern in ("vae_*.weights.h5", "umap_*.weights.h5")
                  for path in (ROOT / "weights").glob(pattern))


def test_the_loader_takes_a_name_never_a_path():
    from ae_core import WeightsError, load_autoencoder

    assert list(inspect.signature(load_autoencoder).parameters) == ["latent_dim", "dataset", "name", "kind"]
    for name in ["../weights", "/etc", "a/b", "..", "", "x" * 41]:
        with pytest.raises(WeightsError, match="no model called"):
            load_autoencoder(2, "mnist", name)
    # The kind picks a file name too (config.weights_stem), so it is one of a fixed few.
    for kind in ["../ae", "AE", ""]:
        with pytest.raises(ValueError, match="kind must be one of"):
            load_autoencoder(2, "mnist", kind=kind)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_hold_weights_only(name):
    """No model config, no Lambda, no pickle: only arrays of numbers."""
    path = ROOT / "weights" / f"{name}.weights.h5"
    with h5py.File(path, "r") as file:
        assert "model_config" not in file.attrs
        names = []
        file.visit(names.append)
        kinds = {file[name].dtype.kind for name in names if isinstance(file[name], h5py.Dataset)}
    assert kinds == {"f"}, kinds  # Float arrays only: nothing that could hold code.
    card = json.loads((ROOT / "weights" / f"{name}.json").read_text())
    assert card["weights_file"] == path.name


@pytest.mark.parametrize("card", sorted((ROOT / "weights").glob("*_z*.json")), ids=lambda path: path.stem)
def test_every_shipped_cards_command_retrains_into_weights(card):
    """The command a page quotes to retrain a shipped model writes into weights/, not into the
    folder of the machine that trained it, and trains the card's recipe under today's defaults.
    A model trained on from another (``--continue-from``) has a chain of commands, each run
    continuing the model the one before it wrote."""
    import shlex

    from ae_core.config import TrainConfig

    recorded = json.loads(card.read_text())
    configs = []
    for part in recorded["retrain_command"].split(" && "):
        command = shlex.split(part)
        out = command.index("--out")
        assert command[:3] == ["python", "-m", "ae_core.train"] and command[out + 1] in ("weights", "weights/")
        configs.append(TrainConfig.from_flags(command[3:out] + command[out + 2:]))
    assert configs[-1] == TrainConfig.from_dict(recorded["config"])
    assert [config.continue_from for config in configs] == [None] + ["weights/"] * (len(configs) - 1)


@pytest.mark.slow
def test_a_card_cannot_point_outside_its_folder(quick_copy):
    from ae_core import Autoencoder, WeightsError

    folder, card = quick_copy
    outside = folder.parent / "elsewhere.weights.h5"
    shutil.copyfile(folder / card["weights_file"], outside)
    (folder / "autoencoder_mnist_z2.json").write_text(json.dumps({**card, "weights_file": "../elsewhere.weights.h5"}))
    with pytest.raises(WeightsError, match="missing"):
        Autoencoder.from_folder(folder, latent_dim=2)


CHILD = """
import json, sys
from streamlit.testing.v1 import AppTest
report = {}
for page in [None, "pages/map.py", "pages/grid.py", "pages/sliders.py", "pages/upload.py"]:
    app = AppTest.from_file(sys.argv[1], default_timeout=120)  # Absolute: AppTest resolves against the caller.
    if page:
        app.switch_page(page)
    app.run()
    report[page or "app"] = {"exceptions": [e.value for e in app.exception],
                             "errors": [e.value for e in app.error] + [e.value for e in app.sidebar.error]}
print(json.dumps(report))
"""


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_every_page_shows_the_retrain_command_for_damaged_weights(tmp_path, damage):
    project = tmp_path / "project"
    project.mkdir()
    for item in ["app.py", "pages", "ui", "ae_core", "weights", ".streamlit"]:
        source = ROOT / item
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, project / item)
    weights = project / "weights" / "autoencoder_mnist_z2.weights.h5"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 3])
    else:
        weights.write_bytes(data[:5000] + bytes([data[5000] ^ 1]) + data[5001:])
    result = subprocess.run([sys.executable, "-c", CHILD, str(project / "app.py")], cwd=project, capture_output=True, text=True,
                            timeout=600, env=with_pythonpath(project))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for page, outcome in report.items():
        assert not outcome["exceptions"], (page, outcome)
        assert any("does not match the SHA-256" in error and "python -m ae_core.train" in error
                   for error in outcome["errors"]), (page, outcome)
