"""Pure ML for the RLHF loop: base model, sampling, gold labelers, pair acquisition, reward models, policy
optimisation. Plain data and paths in, metrics dicts and paths out; no Django import anywhere in this package.

Every entry module has a command line, `python -m models_rl.<module> --help`, built by tyro from its
@dataclass config (field help from `field(metadata={"help": ...})`, choices from `Literal` types).
"""

import os
from pathlib import Path

# The embedded default base policy, shipped with the code (see models_rl.base_model.embedded_base_model).
EMBEDDED_BASE_MODEL_DIR = Path(__file__).resolve().parent / "checkpoints" / "shakespeare-base"

# Hugging Face libraries draw a bar for every weights load and save ("Loading weights 52/52"), dozens per
# round; our own tqdm bars and progress callbacks say what matters. Set before they are imported.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
