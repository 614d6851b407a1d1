"""Simulated labelers: accounts answered by a gold model that work through the public HTTP API like people.

Only the accounts are made with the ORM (`simulated_labelers_ensure`). The work itself goes over HTTP
(`simulate_labelers_run`): each labeler is a thread with its own `requests.Session` and API token that
loops next item -> the gold model's answer -> submit. So simulated labelers are leased, paid at their
rate, stopped by the budget cap (402) and checked for double submits exactly like people are.
"""

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotator.models import LabelerKind, LabelerProfile
from annotator.core.errors import InvalidInput

logger = logging.getLogger(__name__)

NEXT_ITEM_PATH = "/api/campaigns/{campaign}/next/"
SUBMIT_PATHS = {"pairwise": "/api/assignments/{id}/judgement/", "rating": "/api/assignments/{id}/rating/"}
# The gold model's "a" means the first text shown; the API takes that screen side, never completion A/B.
SCREEN_CHOICE = {"a": "first", "b": "second", "tie": "tie", "both_bad": "both_bad"}

REQUEST_TIMEOUT_SECONDS = 10.0
RETRY_ATTEMPTS = 8  # connection errors and 5xx/429 answers; ~11 s of backoff in all
RETRY_FIRST_DELAY_SECONDS = 0.1
RETRY_MAX_DELAY_SECONDS = 5.0
RETRY_STATUSES = {429, 502, 503, 504}
MAX_CONSECUTIVE_ERRORS = 5
PROGRESS_INTERVAL_SECONDS = 0.5
USERNAME_PREFIX = re.compile(r"[\w.@+-]{1,100}")
NOISE_SETTINGS = {"temperature", "tie_band", "position_bias", "both_bad_below"}


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


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the labelers were stopped cleanly; `report` holds what they did until then."""

    def __init__(self, report: SimulationReport):
        super().__init__("simulation interrupted")
        self.report = report


@transaction.atomic
def simulated_labelers_ensure(
    *,
    count: int,
    prefix: str = "sim",
    kind: str = LabelerKind.SIMULATED,
    pay_per_judgement: Decimal | None = Decimal("0"),
) -> list[tuple[AbstractBaseUser, str]]:
    """Create or reuse `count` labeler accounts named `<prefix>-001`, ... and return (user, API token key) pairs.

    New accounts get no usable password (they only use their token). The profile's kind and
    `pay_per_judgement` are set to what is asked (None: paid the campaign's rate). An existing account
    that is not a simulated or AI labeler is refused, so a run never takes over a person's account.
    Locks: each profile row (`SELECT ... FOR UPDATE`) while it is checked and updated.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput(f"count must be a whole number of at least 1; got {count!r}.")
    if kind not in (LabelerKind.SIMULATED, LabelerKind.AI_JUDGE):
        raise InvalidInput(f"kind must be {LabelerKind.SIMULATED.value!r} or {LabelerKind.AI_JUDGE.value!r}; got {kind!r}.")
    if not USERNAME_PREFIX.fullmatch(prefix):
        raise InvalidInput(f"prefix may hold letters, digits and @.+-_ only; got {prefix!r}.")
    if pay_per_judgement is not None and Decimal(pay_per_judgement) < 0:
        raise InvalidInput("pay_per_judgement must not be negative.")

    user_model = get_user_model()
    accounts = []
    for number in range(1, count + 1):
        username = f"{prefix}-{number:03d}"
        user, user_created = user_model.objects.get_or_create(username=username)
        if user_created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        profile = LabelerProfile.objects.select_for_update().filter(user=user).first()
        if profile is None and not user_created:
            raise InvalidInput(f"Account {username!r} exists and is not a simulated labeler; choose another prefix.")
        if profile is not None and profile.kind == LabelerKind.HUMAN:
            raise InvalidInput(f"Account {username!r} belongs to a human labeler; choose another prefix.")
        if profile is None:
            LabelerProfile.objects.create(user=user, kind=kind, pay_per_judgement=pay_per_judgement)
        elif (profile.kind, profile.pay_per_judgement) != (kind, pay_per_judgement):
            profile.kind, profile.pay_per_judgement = kind, pay_per_judgement
            profile.save(update_fields=["kind", "pay_per_judgement"])
        token, _ = Token.objects.get_or_create(user=user)
        accounts.append((user, token.key))
    return accounts


class _Tally:
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


class _Quota:
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


class _SharedGold:
    """One gold model for every labeler thread (a reward model is loaded once); calls take turns, since a
    Hugging Face fast tokenizer must not be used by two threads at once."""

    def __init__(self, gold):
        self._gold, self._lock = gold, threading.Lock()
        self.rating_thresholds = gold.rating_thresholds

    def score(self, prompt: str, text: str) -> float:
        with self._lock:
            return self._gold.score(prompt, text)


class _Unreachable(Exception):
    """The server did not answer usefully after every retry."""


class _SimulatedLabeler:
    """One labeler's loop over HTTP. Touches no database: it only knows its token and the gold model."""

    def __init__(self, *, username: str, token: str, base_url: str, campaign: str, gold, seed: int, tally: _Tally,
                 quota: _Quota, stop: threading.Event, stop_when_done: bool, poll_seconds: float):
        self.username, self.base_url, self.campaign, self.gold = username, base_url.rstrip("/"), campaign, gold
        self.tally, self.quota, self.stop = tally, quota, stop
        self.stop_when_done, self.poll_seconds = stop_when_done, poll_seconds
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    def run(self) -> None:
        try:
            reason = self._work()
        except _Unreachable as exc:
            self.tally.add(self.username, errors=1)
            reason = f"unreachable: {exc}"
        except Exception as exc:  # a bug must stop this labeler visibly, not hang the run
            logger.exception("simulated labeler %s crashed", self.username)
            self.tally.add(self.username, errors=1)
            reason = f"crashed: {exc!r}"
        finally:
            self.session.close()
        self.tally.stopped(self.username, reason)

    def _work(self) -> str:
        consecutive_errors = 0
        while not self.stop.is_set():
            if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                return "errors"
            if not self.quota.take():
                return "max_items"
            outcome = self._one_item()
            if outcome != "submitted":
                self.quota.give_back()
            if outcome in ("budget", "done"):
                return outcome
            consecutive_errors = consecutive_errors + 1 if outcome == "error" else 0
            if outcome == "empty":
                self.stop.wait(self.poll_seconds)
        return "stopped"

    def _one_item(self) -> str:
        """Ask for an item, answer it, submit; returns what happened."""
        response = self._request("GET", NEXT_ITEM_PATH.format(campaign=self.campaign))
        if response.status_code == 402:
            self.tally.add(self.username, refused_by_budget=1)
            return "budget"
        if response.status_code == 204:
            return "done" if self.stop_when_done else "empty"
        if response.status_code != 200:
            return self._error(response)
        item = response.json()
        task_kind = item["task_kind"]
        path = SUBMIT_PATHS[task_kind].format(id=item["assignment_id"])
        response = self._request("POST", path, json=self._answer(item, task_kind))
        if response.status_code in (200, 201):
            self.tally.add(self.username, submitted=1)
            return "submitted"
        code = _error_code(response)
        if response.status_code == 409 and code == "already_submitted":
            # An earlier try of this very submit reached the server before its answer was lost.
            self.tally.add(self.username, submitted=1)
            return "submitted"
        if response.status_code == 409 and code == "lease_expired":
            self.tally.add(self.username, lease_expirations=1)
            return "lease_expired"
        return self._error(response)

    def _answer(self, item: dict, task_kind: str) -> dict:
        prompt = item["prompt"]
        if task_kind == "rating":
            text = item["first"]  # a rating item has only a first text
            return {"value": self.gold.rate(prompt, text), "milliseconds": self._reading_milliseconds(prompt, text)}
        choice, strength = self.gold.prefer(prompt, item["first"], item["second"])
        return {
            "choice": SCREEN_CHOICE[choice],
            "strength": strength,
            "milliseconds": self._reading_milliseconds(prompt, item["first"], item["second"]),
        }

    def _reading_milliseconds(self, *texts: str) -> int:
        """A plausible time on the page: a moment to decide plus ~4 words a second, varying like people do."""
        words = sum(len(text.split()) for text in texts)
        return int((1500 + 250 * words) * self.rng.lognormvariate(0, 0.3))

    def _error(self, response: requests.Response) -> str:
        logger.warning("simulated labeler %s: %s %s -> %s %s", self.username, response.request.method,
                       response.url, response.status_code, response.text[:300])
        self.tally.add(self.username, errors=1)
        return "error"

    def _request(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        """One API call, retried with exponential backoff on connection errors, timeouts and 429/5xx-busy
        answers. Retrying a submit is safe: the server refuses a second answer with 409 already_submitted."""
        delay = RETRY_FIRST_DELAY_SECONDS
        problem = ""
        for _ in range(RETRY_ATTEMPTS):
            try:
                response = self.session.request(method, self.base_url + path, json=json,
                                                timeout=REQUEST_TIMEOUT_SECONDS)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem = f"HTTP {response.status_code}"
            if self.stop.wait(delay * self.rng.uniform(0.5, 1.5)):
                break
            delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)
        raise _Unreachable(f"{method} {path}: {problem or 'stopped while retrying'}")


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return body.get("code", "") if isinstance(body, dict) else ""


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
    accounts = simulated_labelers_ensure(count=labelers, prefix=prefix, pay_per_judgement=pay_per_judgement)
    tally, quota, stop = _Tally([user.get_username() for user, _ in accounts]), _Quota(max_items), threading.Event()
    workers = [
        _SimulatedLabeler(
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
