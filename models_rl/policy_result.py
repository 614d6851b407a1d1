"""What every policy optimiser (models_rl.rloo, .dpo, .best_of_n) hands back: the checkpoints it kept, each
with its KL from the reference in nats per completion, the final policy's path and the run's metrics, also
written as `policy_result.json` next to the checkpoints."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import tyro

ProgressCallback = Callable[[dict], None]
CommandT = TypeVar("CommandT")
RESULT_FILE = "policy_result.json"


@dataclass
class Checkpoint:
    label: str  # "kl_<level>" or "final"
    path: Path
    kl: float  # nats per completion from the reference
    metrics: dict


@dataclass
class PolicyResult:
    final_path: Path
    checkpoints: list[Checkpoint]
    metrics: dict


def write_policy_result(config, checkpoints: list[Checkpoint], metrics: dict) -> PolicyResult:
    """Write policy_result.json (the @dataclass config, checkpoints, metrics) into `config.output_dir`, whose
    `final/` holds the final policy, and return the result."""
    output_dir = Path(config.output_dir)
    record = {
        "config": dataclasses.asdict(config),
        "checkpoints": [{"label": c.label, "path": str(c.path), "kl": c.kl, "metrics": c.metrics} for c in checkpoints],
        "metrics": metrics,
    }
    (output_dir / RESULT_FILE).write_text(json.dumps(record, indent=2, default=str))
    return PolicyResult(final_path=output_dir / "final", checkpoints=checkpoints, metrics=metrics)


def policy_command(command_type: type[CommandT], *, prog: str, argv: Sequence[str] | None,
                   optimize: Callable[[CommandT], PolicyResult]) -> int:
    """An optimiser's command line: parse `command_type` (a dataclass) with tyro, run `optimize` on it, print the
    final path, the checkpoints and the metrics as one JSON object; bad input exits with `error: ...`."""
    command = tyro.cli(command_type, args=argv, prog=prog)
    try:
        result = optimize(command)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps({"final_path": str(result.final_path),
                      "checkpoints": [{"label": c.label, "path": str(c.path), "kl": c.kl} for c in result.checkpoints],
                      **result.metrics}, indent=2, default=str))
    return 0


def phase_progress(progress: ProgressCallback | None, phase: str) -> ProgressCallback | None:
    """Tag a sub-step's progress reports, so that a listener can tell them from training steps."""
    return None if progress is None else (lambda report: progress({**report, "phase": phase}))
