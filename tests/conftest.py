import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Under pytest-xdist each worker (and every CLI subprocess it starts) computes on one thread:
# the workers already fill the cores, and two-thread torch in each would oversubscribe them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def cli_command() -> list[str]:
    """The installed console script when there is one, else the same entry point by module."""
    script = Path(sys.executable).with_name("profile-encoder")
    if script.exists():
        return [str(script)]
    found = shutil.which("profile-encoder")
    return [found] if found else [sys.executable, "-m", "profiler"]


def run_cli(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("PYTHONWARNINGS", "ignore")
    full_env.update(env or {})
    return subprocess.run(cli_command() + [str(a) for a in args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli
