"""The prepared GPU check (benchmarks/gpu_check.sh): what can be checked without a GPU.

Covers: the script parses (bash -n); with a required package missing it stops before any work with exit status 1
and prints the wheel commands; every module of the project imports with matplotlib, tensorboard and implicit
absent (the GPU machine may lack them: each is imported only where it is used). The phases themselves run with
`bash benchmarks/gpu_check.sh --tiny OUT_DIR` (about 2 minutes on 2 CPU cores; not part of the suite).
Run: python -m pytest tests/test_gpu_check.py -q
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_a_missing_package_stops_the_check_with_the_wheel_commands(tmp_path: Path):
    (tmp_path / "fire.py").write_text('raise ImportError("fire is not installed here")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHON": sys.executable, "WORK": str(tmp_path / "work")}
    proc = subprocess.run(["bash", str(SCRIPT), "--tiny", str(tmp_path / "out")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "error: a required Python package is missing" in proc.stderr
    assert "pip download" in proc.stderr and "fire==" in proc.stderr and "termcolor==" in proc.stderr
    assert not (tmp_path / "work" / "bench").exists()  # nothing ran


def test_the_project_imports_without_the_optional_packages():
    code = """
import importlib, pkgutil, sys
for name in ("matplotlib", "tensorboard", "implicit", "torch.utils.tensorboard"):
    sys.modules[name] = None  # import raises ImportError
modules = ["evaluate", "train", "inference"]
for package in ("data_loader", "models", "trainer", "predictor", "baselines", "benchmarks"):
    modules += [m.name for m in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")]
for m in modules:
    importlib.import_module(m)
print(len(modules))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 40
