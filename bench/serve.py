"""Launcher of the serving benchmark, the package bench/serving/ (its docstring says what a run does):

    .venv/bin/python bench/serve.py --labelers 50 --seconds 20
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for `bench.serving` and the site

from bench.serving.run import main  # noqa: E402

if __name__ == "__main__":
    main()
