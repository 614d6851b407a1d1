"""What a run of simulated labelers did, counted across the labeler threads, and the cap on judgements in all."""

import threading
from dataclasses import dataclass, field, replace


@dataclass
class SimulationReport:
    """What a run of simulated labelers did. `per_labeler` and `stop_reasons` are keyed by username."""

    submitted: int = 0
    refused_by_budget: int = 0
    lease_expirations: int = 0
    errors: int = 0
    seconds: float = 0.0
    per_labeler: dict[str, int] = field(default_factory=dict)
    stop_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def judgements_per_second(self) -> float:
        return self.submitted / self.seconds if self.seconds > 0 else 0.0


class Tally:
    """The run's counters, shared by the labeler threads."""

    def __init__(self, usernames: list[str]):
        self._lock = threading.Lock()
        self._report = SimulationReport(per_labeler={name: 0 for name in usernames})

    def add(self, username: str, *, submitted: int = 0, refused_by_budget: int = 0, lease_expirations: int = 0,
            errors: int = 0) -> None:
        with self._lock:
            report = self._report
            report.submitted += submitted
            report.per_labeler[username] += submitted
            report.refused_by_budget += refused_by_budget
            report.lease_expirations += lease_expirations
            report.errors += errors

    def stopped(self, username: str, reason: str) -> None:
        with self._lock:
            self._report.stop_reasons[username] = reason

    def snapshot(self, seconds: float) -> SimulationReport:
        with self._lock:
            report = self._report
            return replace(report, seconds=seconds, per_labeler=dict(report.per_labeler),
                           stop_reasons=dict(report.stop_reasons))


class Quota:
    """At most `limit` judgements in all (None: no limit). A labeler takes a ticket before asking for an item
    and gives it back when no judgement came of it."""

    def __init__(self, limit: int | None):
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def give_back(self) -> None:
        with self._lock:
            if self._left is not None:
                self._left += 1
