"""models_rl is pure ML: importing every one of its modules must not import Django."""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import models_rl

CHECK = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m == "django" or m.startswith("django."))))
"""


def test_importing_all_of_models_rl_imports_no_django():
    modules = ["models_rl"] + [f"models_rl.{m.name}" for m in pkgutil.iter_modules(models_rl.__path__)]
    assert {"models_rl.base_model", "models_rl.sampling", "models_rl.gold", "models_rl.acquisition"} <= set(modules)
    result = subprocess.run([sys.executable, "-c", CHECK.format(modules=modules)], capture_output=True, text=True,
                            cwd=Path(models_rl.__file__).parent.parent, env={"HF_HUB_OFFLINE": "1", "PATH": ""},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
