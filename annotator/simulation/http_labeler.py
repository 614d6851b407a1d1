"""One simulated labeler: an HTTP client of the public API that loops next item -> its gold model's answer ->
submit, with its own `requests.Session` and API token. It touches no database, so it is leased, paid,
stopped by the budget cap (402) and checked for double submits exactly like a person."""

import logging
import random
import threading

import requests

from annotator.simulation.counters import Quota, Tally

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


class _Unreachable(Exception):
    """The server did not answer usefully after every retry."""


class SimulatedLabeler:
    """One labeler's loop over HTTP; `run` is a thread's target and records why it stopped in the tally."""

    def __init__(self, *, username: str, token: str, base_url: str, campaign: str, gold, seed: int, tally: Tally,
                 quota: Quota, stop: threading.Event, stop_when_done: bool, poll_seconds: float):
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
