"""Hostile and careless search specs: `bioact search` refuses each with exit code 2 and an error
naming the key, without a traceback and before anything is written or trained (no storage file,
no export or output folder). Files a spec names are regular files under a size limit; numbers
are finite everywhere; seeds fit 32 bits; the data splits are non-empty; the saved model loads
with safe_mode=True; the output folder can be created."""

import gzip
import math
import os
import struct

import keras
import numpy as np
import pytest

import keras_bioact.search.evolution.runner as run_evolution_module
from keras_bioact import datasets
from keras_bioact.cli import main
from keras_bioact.search import sampler_from_spec
from keras_bioact.search.evolution import evolve
from keras_bioact.search.optuna import objective as objective_lib
from keras_bioact.search.optuna.study import open_study
from keras_bioact.search.spec import SpecError, load_spec, parse_spec

pytestmark = pytest.mark.single_backend

OPT = "[optuna]\nn_trials = 1\n"
EVO = "[evolution]\ngenerations = 1\npopsize = 4\n"
BIG_SEED = 2**32

ENQ = OPT + "[space]\nenqueue = "
SAVED = '[model]\npath = "{models}/%s"\n'
OPTIONS = "evolution.algorithm_options."


def row(text, key, *argv, id):
    return pytest.param(text, key, list(argv), id=id)


ROWS = [
    # (spec, the key its error names, further command-line arguments); {tmp}: the working
    # directory (where the default storage and output folder would go), {models}: saved models
    row(OPT + '[model]\npath = "/dev/zero"', "model.path", id="model-dev-zero"),
    row(EVO + '[model]\npath = "{tmp}/fifo"', "model.path", id="model-fifo"),
    row(EVO + SAVED % "lambda.keras", "model.path", id="model-safe-mode"),
    row(OPT + SAVED % "wrong.keras" + '[space]\nfamilies = ["gamma"]', "model.path", id="model-input"),
    row(OPT + f"[budget]\nseed = {BIG_SEED}", "budget.seed", id="budget-seed"),
    row(OPT + f"[optuna.sampler]\nseed = {BIG_SEED}", "optuna.sampler.seed", id="sampler-seed"),
    row(EVO + f"seed = {BIG_SEED}", "evolution.seed", id="evolution-seed"),
    row(EVO + f"[data]\nseed = {BIG_SEED}", "data.seed", id="data-seed"),
    row(OPT + "[data]\nvalidation_fraction = 0.9999", "data.validation_fraction", id="no-training-sample"),
    row(OPT + "[data]\ntest_fraction = 0.001", "data.test_fraction", id="no-test-sample"),
    row(EVO + "algorithm_options = {center_learning_rate = nan}", OPTIONS + "center_learning_rate", id="nan"),
    row(EVO + "algorithm_options = {stdev_max = [1.0, -inf]}", OPTIONS + "stdev_max[1]", id="inf"),
    row(OPT + "x = " + "[" * 2000 + "]" * 2000, "<toml>", id="deep-toml"),
    row(OPT, "--export", "--export", "{tmp}/file", id="export-is-a-file"),
    row(OPT, "--export", "--export", "{tmp}/file/sub", id="export-under-a-file"),
    row(OPT, "--export", "--export", "/proc/bioact-export", id="export-unwritable"),
    row(OPT + '[output]\ndir = "{tmp}/file"', "output.dir", id="output-dir-is-a-file"),
    row(OPT + '[data]\nname = "idx:{tmp}/idx-fifo"', "data.name", id="idx-fifo"),
    row(OPT + '[data]\nname = "idx:{tmp}/idx-cut"', "data.name", id="idx-truncated"),
    row(OPT + "[budget]\nrepeats = 0", "budget.repeats", id="repeats-0"),
    row(OPT + "[budget]\nrepeats = true", "budget.repeats", id="repeats-bool"),
    row(OPT + "[budget]\nrepeats = 2.5", "budget.repeats", id="repeats-float"),
    row(OPT + "[budget]\nrepeats = 2\n[data]\nfolds = 3", "budget.repeats", id="repeats-and-folds"),
    row(OPT + "[data]\nfolds = 1", "data.folds", id="folds-1"),
    row(OPT + '[optuna.pruner]\nname = "wilcoxon"', "optuna.pruner.name", id="wilcoxon-one-seed"),
    row(EVO + "[budget]\nrepeats = 3", "budget.repeats", id="evolution-repeats"),
    row(OPT + '[space]\nbaselines = ["gamma"]', "space.baselines", id="baseline-not-a-baseline"),
    row(OPT + '[space]\nbaselines = ["lrelu"]', "space.baselines", id="baseline-unknown"),
    row(EVO + 'baselines = ["bru"]', "evolution.baselines", id="evolution-baseline"),
    row(ENQ + '[{family = "bru"}]\nfamilies = ["gamma"]', "space.enqueue[0].family", id="enqueue-family"),
    row(ENQ + '[{family = "gamma", gamma_n = 1e6}]', "space.enqueue[0].gamma_n", id="enqueue-range"),
    row(ENQ + '[{family = "relu"}, {family = "gamma", n = 5.0}]', "space.enqueue[1].n", id="enqueue-param"),
    row(ENQ + '[{family = "relu", learning_rate = 0.1}]', "space.enqueue[0].learning_rate", id="enqueue-lr"),
    row(ENQ + '["relu"]', "space.enqueue[0]", id="enqueue-not-a-table"),
    row(EVO + 'start = "model"', "evolution.start", id="start-model-without-path"),
    row(EVO + 'start = "centre"', "evolution.start", id="start-unknown"),
]  # fmt: skip


def _idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def _idx_dir(path, images=(6, 4, 4)):
    path.mkdir()
    for prefix, n in (("train", images[0]), ("t10k", 3)):
        _idx(path / f"{prefix}-images-idx3-ubyte", np.zeros((n, *images[1:]), np.uint8))
        _idx(path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 2)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A model safe_mode refuses (a Python lambda) and one whose input fits no data set here."""
    folder = tmp_path_factory.mktemp("models")
    layers = keras.layers
    keras.Sequential([keras.Input((8, 8)), layers.Flatten(), layers.Lambda(lambda x: 2 * x)]).save(
        folder / "lambda.keras"
    )
    keras.Sequential([keras.Input((5,)), layers.Dense(10, activation="softmax")]).save(folder / "wrong.keras")
    return folder


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The working directory, with a named pipe, a file and two broken IDX folders."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("not a folder")
    fifo = _idx_dir(tmp_path / "idx-fifo") / "train-labels-idx1-ubyte"
    fifo.unlink()
    os.mkfifo(fifo)
    cut = _idx_dir(tmp_path / "idx-cut") / "train-images-idx3-ubyte"
    cut.write_bytes(cut.read_bytes()[:-5])

    def no_training(*args, **kwargs):
        raise AssertionError("training started for a refused spec")

    monkeypatch.setattr(objective_lib, "objective_from_spec", no_training)
    monkeypatch.setattr(run_evolution_module, "run_evolution", no_training)
    return tmp_path


def _refused(workdir, capsys, text, argv=()):
    """Exit code, stderr and whether the working directory was left as it was."""
    spec = workdir / "hostile.toml"
    spec.write_text(text)
    before = sorted(workdir.rglob("*"))
    code = main(["search", str(spec), "--quiet", *argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.err, sorted(workdir.rglob("*")) == before


@pytest.mark.parametrize("text, key, argv", ROWS)
def test_hostile_spec_is_refused_naming_the_key_before_anything_is_written(
    workdir, models, capsys, text, key, argv
):
    def fill(s):
        return s.replace("{tmp}", str(workdir)).replace("{models}", str(models))

    code, err, untouched = _refused(workdir, capsys, fill(text), [fill(a) for a in argv])
    assert code == 2, err
    assert f": {key}" in err, err
    assert untouched, "a refused spec wrote something"


def test_a_deeply_nested_value_given_as_data_is_refused_naming_its_key():
    deep = 1.0
    for _ in range(1000):  # a spec stored as JSON (bioact show) or built in Python: no tomllib
        deep = [deep]
    key = r"evolution\.algorithm_options\.stdev_max(\[0\])+"
    with pytest.raises(SpecError, match=rf"<spec>: {key}: is nested more than 16 levels"):
        parse_spec({"evolution": {"algorithm_options": {"stdev_max": deep}}})


def test_validation_fraction_error_gives_the_legal_range_for_the_data(workdir, capsys):
    code, err, _ = _refused(workdir, capsys, OPT + "[data]\nvalidation_fraction = 0.9999")
    n = 1347  # digits' training split at test_fraction 0.25
    assert code == 2 and f"(0, {math.floor((n - 1) / n * 1e6) / 1e6}]" in err, err
    assert round(n * 0.999257) == n - 1  # the upper end leaves one training sample


def test_files_over_the_size_limit_are_never_read(workdir, capsys, monkeypatch):
    big = workdir / "big.keras"
    with open(big, "wb") as f:
        f.truncate(datasets.MAX_FILE_BYTES + 1)  # sparse: no disk used
    code, err, untouched = _refused(workdir, capsys, EVO + f'[model]\npath = "{big}"')
    assert code == 2 and "model.path" in err and "over the limit" in err and untouched, err
    images = _idx_dir(workdir / "idx-gz") / "train-images-idx3-ubyte"
    images.with_suffix(".gz").write_bytes(gzip.compress(images.read_bytes()))
    images.unlink()
    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 80)  # every file is smaller; the gzipped
    # train images (6 x 4 x 4 = 96 bytes, the header says) unpack to more
    code, err, untouched = _refused(workdir, capsys, OPT + f'[data]\nname = "idx:{workdir}/idx-gz"')
    assert code == 2 and "data.name" in err and "announces" in err and "over the limit" in err, err
    assert untouched


def test_a_device_pipe_or_folder_as_the_spec_file_is_never_read(workdir, capsys):
    for path in ("/dev/zero", str(workdir / "fifo"), str(workdir)):
        assert main(["search", path]) == 2
        err = capsys.readouterr().err
        assert path in err and "not a regular file" in err, err


def test_an_optuna_refusal_is_a_sampler_error_not_a_storage_error(workdir):
    (workdir / "s.toml").write_text(OPT + '[optuna.sampler]\nname = "cmaes"\npopulation_size = 6')
    spec = load_spec(workdir / "s.toml")
    assert sampler_from_spec(spec)._popsize == 6  # CmaEsSampler calls it popsize
    spec.sampler = {"name": "nsga2", "population_size": 1}  # past the schema, as the API allows
    with pytest.raises(SpecError, match=r"s\.toml: optuna\.sampler\.population_size: refused by Optuna"):
        open_study(spec)
    assert not (workdir / "s.db").exists()


@pytest.mark.parametrize(
    "options, name",
    [
        ({"algorithm_options": {"center_learning_rate": math.nan}}, "algorithm_options.center_learning_rate"),
        ({"stdev_init": math.inf}, "stdev_init"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"seed": BIG_SEED}, "seed"),
    ],
)
def test_evolve_refuses_non_finite_options_and_wide_seeds(options, name):
    with pytest.raises(ValueError, match=rf"evolve: `{name}`"):
        evolve(None, None, **options)
