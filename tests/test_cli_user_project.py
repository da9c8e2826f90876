"""Profiling a user's own file from the user's project folder, as a user runs it: a real
subprocess whose working folder is the project. The project has its own top-level
`models` package, the name of our zoo's package, which is also importable (the repository
is on PYTHONPATH, as an installed distribution is on sys.path)."""
import pytest

NET = '''
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, outputs=10):
        super().__init__()
        self.proj = nn.Linear(16000, outputs)

    def forward(self, x):
        import helpers  # imported while the profile runs, from beside the file

        return helpers.double(self.proj(x))
'''
HELPERS = '''
def double(x):
    return x * 2
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "net.py").write_text(NET)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "build.py").write_text("from models.net import Net\n\n\n"
                                       "def build():\n    return Net()\n")
    (tmp_path / "late.py").write_text("def build():\n    from models.net import Net\n\n"
                                      "    return Net(outputs=3)\n")
    return tmp_path


@pytest.mark.parametrize("factory, outputs", [("build.py:build", 10), ("late.py:build", 3)])
def test_a_user_package_named_models_is_the_user_s(cli, project, factory, outputs):
    result = cli("profile", "--model", factory, "--input-shape", "1x16000", cwd=project)
    assert result.returncode == 0, result.stderr
    # one Linear 16000 -> outputs, its bias, then x * 2 from the helper module
    assert f"MACs {16000 * outputs:,}" in result.stdout
    assert f"elementwise {2 * outputs:,})" in result.stdout


def test_a_file_in_another_folder_imports_its_neighbours(cli, project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = cli("profile", "--model", project / "build.py:build", "--input-shape", "1x16000",
                 cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"MACs {16000 * 10:,}" in result.stdout


def test_a_user_package_named_profiler_is_one_line_that_says_what_to_do(cli, project):
    (project / "profiler").mkdir()
    (project / "profiler" / "__init__.py").write_text("")
    (project / "profiler" / "layers.py").write_text("import torch.nn as nn\nLayer = nn.Linear\n")
    (project / "uses_profiler.py").write_text("from profiler.layers import Layer\n\n\n"
                                              "def build():\n    return Layer(16000, 2)\n")
    result = cli("profile", "--model", "uses_profiler.py:build", "--input-shape", "1x16000",
                 cwd=project)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "your 'profiler'" in lines[0] and "is shadowed" in lines[0]
    assert "rename yours" in lines[0]


def test_a_model_file_without_its_factory_says_so(cli, project):
    result = cli("profile", "--model", "build.py", "--input-shape", "1x16000", cwd=project)
    assert result.returncode == 2
    assert "name the factory too, as build.py:FUNCTION" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
