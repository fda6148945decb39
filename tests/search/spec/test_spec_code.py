"""A TOML spec never runs code: templates come from the registry; `--allow-code MODULE` on the
command line (never the spec) is the one opt-in."""

import sys
import textwrap

import pytest

from keras_bioact.cli import main
from keras_bioact.search import load_spec, register_template, templates

pytestmark = pytest.mark.single_backend

SPEC = """
[optuna]
study = "t"
storage = "sqlite:///{tmp}/t.db"
n_trials = 1
[data]
name = "digits"
[model]
template = "{template}"
[budget]
epochs = 1
[space]
families = ["relu"]
"""


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """A module `evilmod_<id>` in the working directory that writes a marker when imported."""
    name = f"evilmod_{abs(hash(str(tmp_path))) % 10**8}"
    marker = tmp_path / "evil-ran"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(f"""
        open({str(marker)!r}, "w").close()

        def build(activation, input_shape, num_classes):
            from keras_bioact.search.templates import mlp
            return mlp(activation, input_shape, num_classes, hidden=(4,))
        """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)
    templates._ALLOWED_MODULES.pop(name, None)


def test_a_spec_naming_a_module_is_refused_and_the_module_never_runs(tmp_path, capsys, evil_module):
    name, marker = evil_module
    spec = tmp_path / "evil.toml"
    spec.write_text(SPEC.format(tmp=tmp_path, template=f"{name}:build"))
    assert main(["search", str(spec), "--create-only"]) == 2
    err = capsys.readouterr().err
    assert "model.template" in err and "never imports code" in err and f"--allow-code {name}" in err
    assert not marker.exists() and name not in sys.modules
    for text in ("os:system", "builtins:eval", "subprocess:run"):
        spec.write_text(SPEC.format(tmp=tmp_path, template=text))
        assert main(["search", str(spec), "--create-only"]) == 2
        assert "never imports code" in capsys.readouterr().err


def test_allow_code_on_the_command_line_is_the_opt_in(tmp_path, capsys, evil_module):
    name, marker = evil_module
    spec = tmp_path / "mine.toml"
    spec.write_text(SPEC.format(tmp=tmp_path, template=f"{name}:build"))
    assert main(["search", "--allow-code", name, str(spec), "--create-only"]) == 0
    assert marker.exists()  # the user asked for it on the command line
    assert main(["search", "--allow-code", "no_such_module_xyz", str(spec), "--create-only"]) == 2
    assert "--allow-code" in capsys.readouterr().err


def test_registered_templates_are_named_by_specs(tmp_path):
    @register_template("tiny_for_test")
    def tiny(activation, input_shape, num_classes):
        return templates.mlp(activation, input_shape, num_classes, hidden=(4,))

    try:
        path = tmp_path / "s.toml"
        path.write_text(SPEC.format(tmp=tmp_path, template="tiny_for_test"))
        assert load_spec(str(path)).template == "tiny_for_test"
        with pytest.raises(ValueError, match="built-in"):
            register_template("mlp", tiny)
        with pytest.raises(ValueError, match="must accept"):
            register_template("bad_for_test", lambda: None)
        with pytest.raises(ValueError, match="name"):
            register_template("a:b", tiny)
    finally:
        templates.TEMPLATES.pop("tiny_for_test", None)
