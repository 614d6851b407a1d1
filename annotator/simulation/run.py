"""Running simulated labelers: accounts answered by a gold model, working through the public HTTP API like
people. Each labeler is a thread (annotator.simulation.http_labeler); only their accounts are made with the
ORM (annotator.services.simulated_labelers)."""

import threading
import time
from collections.abc import Callable
from decimal import Decimal

from annotator.core.errors import InvalidInput
from annotator.models import Campaign
from annotator.services.simulated_labelers import simulated_labelers_ensure
from annotator.simulation.counters import Quota, SimulationReport, Tally
from annotator.simulation.http_labeler import SimulatedLabeler

PROGRESS_INTERVAL_SECONDS = 0.5
NOISE_SETTINGS = {"temperature", "tie_band", "position_bias", "both_bad_below"}


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the labelers were stopped cleanly; `report` holds what they did until then."""

    def __init__(self, report: SimulationReport):
        super().__init__("simulation interrupted")
        self.report = report


class _SharedGold:
    """One gold model for every labeler thread (a reward model is loaded once); calls take turns, since a
    Hugging Face fast tokenizer must not be used by two threads at once."""

    def __init__(self, gold):
        self._gold, self._lock = gold, threading.Lock()
        self.rating_thresholds = gold.rating_thresholds

    def score(self, prompt: str, text: str) -> float:
        with self._lock:
            return self._gold.score(prompt, text)


def simulate_labelers_run(
    *,
    base_url: str,
    campaign: str,
    gold: str = "vader",
    labelers: int,
    noise: dict | None = None,
    max_items: int | None = None,
    seed: int = 0,
    progress: Callable[[SimulationReport], None] | None = None,
    stop_when_done: bool = True,
    pay_per_judgement: Decimal | None = Decimal("0"),
    prefix: str = "sim",
    poll_seconds: float = 1.0,
) -> SimulationReport:
    """Run `labelers` simulated labelers against the site at `base_url` on one campaign until they stop.

    The labelers' accounts (annotator.services.simulated_labelers) are made the campaign's labelers, so the
    campaign must exist in this project's database (InvalidInput otherwise, before any account is made).
    Each labeler answers through its own `models_rl.gold.NoisyLabeler(make_gold(gold), **noise, seed=...)`,
    seeded per labeler so they disagree (`noise=None` takes the noise model's defaults). A
    labeler stops when the API has nothing left for it (with `stop_when_done=False` it keeps polling every
    `poll_seconds` instead), when the budget cap answers 402, when `max_items` judgements are in (over all
    labelers), or after repeated errors. `progress` is called from this thread about twice a second.
    Ctrl-C stops every labeler and raises SimulationInterrupted carrying the report so far.
    """
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0):
        raise InvalidInput(f"max_items must be a whole number of at least 0; got {max_items!r}.")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidInput(f"base_url must start with http:// or https://; got {base_url!r}.")
    unknown = set(noise or {}) - NOISE_SETTINGS
    if unknown:
        raise InvalidInput(f"Unknown noise settings {sorted(unknown)}; use {sorted(NOISE_SETTINGS)}.")
    if isinstance(labelers, bool) or not isinstance(labelers, int) or labelers < 1:
        raise InvalidInput(f"labelers must be a whole number of at least 1; got {labelers!r}.")
    from models_rl.gold import NoisyLabeler, make_gold  # the ML stack loads only when a simulation runs

    try:  # before any account is made, so a wrong gold name changes nothing
        shared_gold = _SharedGold(make_gold(gold))
        seeds = [seed * 1000 + number for number in range(labelers)]
        golds = [NoisyLabeler(shared_gold, **(noise or {}), seed=labeler_seed) for labeler_seed in seeds]
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    campaign_row = Campaign.objects.filter(name=campaign).first()
    if campaign_row is None:
        raise InvalidInput(f"No campaign {campaign!r}.")
    accounts = simulated_labelers_ensure(count=labelers, prefix=prefix, pay_per_judgement=pay_per_judgement,
                                         campaign=campaign_row)
    tally, quota, stop = Tally([user.get_username() for user, _ in accounts]), Quota(max_items), threading.Event()
    workers = [
        SimulatedLabeler(
            username=user.get_username(), token=token, base_url=base_url, campaign=campaign, gold=labeler_gold,
            seed=labeler_seed, tally=tally, quota=quota, stop=stop, stop_when_done=stop_when_done,
            poll_seconds=poll_seconds,
        )
        for (user, token), labeler_gold, labeler_seed in zip(accounts, golds, seeds)
    ]
    threads = [threading.Thread(target=worker.run, name=f"simulated-{worker.username}", daemon=True)
               for worker in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while alive := [thread for thread in threads if thread.is_alive()]:
            alive[0].join(PROGRESS_INTERVAL_SECONDS)
            if progress is not None:
                progress(tally.snapshot(time.monotonic() - started))
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
        raise SimulationInterrupted(tally.snapshot(time.monotonic() - started)) from None
    report = tally.snapshot(time.monotonic() - started)
    if progress is not None:
        progress(report)
    return report
