"""The simulated labelers: a few processes, each a selector loop over one non-blocking socket per labeler.

Each labeler loops next item -> submit until the end of the measured window. Latencies and judgements count
only inside the window, but every acknowledged judgement is kept for the database check.
"""

import json
import random
import selectors
import socket
import time
from collections import Counter

SLICE_SECONDS = 5  # judgements per second are also reported for each slice this long


class Labeler:
    """One simulated labeler: next item -> submit, over one non-blocking socket at a time, speaking just enough
    HTTP/1.1 for this API. Driven by `client_process`'s selector: no transport or stream objects per connection,
    since sync workers close the connection after every answer and the client opens one per request."""

    def __init__(self, *, port: int, token: str, campaign: str, rng: random.Random, window: tuple[float, float],
                 result: dict, selector: selectors.BaseSelector):
        self.port, self.rng, self.window, self.result, self.selector = port, rng, window, result, selector
        self.headers = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nAccept: application/json\r\n"
        self.next_path = f"/api/campaigns/{campaign}/next/"
        self.sock: socket.socket | None = None
        self.reused = False  # the request went on a kept-alive connection (the server may have closed it)
        self.done = False

    # -- one request
    def send(self, method: str, path: str, body: bytes = b"") -> None:
        self.method, self.path, self.body = method, path, body
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.outgoing = f"{method} {path} HTTP/1.1\r\n{self.headers}{extra}\r\n".encode() + body
        self.incoming = bytearray()
        self.started = time.monotonic()
        self.reused = self.sock is not None
        if self.sock is None:
            self.sock = socket.socket()
            self.sock.setblocking(False)
            self.sock.connect_ex(("127.0.0.1", self.port))
            self.selector.register(self.sock, selectors.EVENT_WRITE, self)
        else:
            self.selector.modify(self.sock, selectors.EVENT_WRITE, self)

    def on_event(self, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                sent = self.sock.send(self.outgoing)
                self.outgoing = self.outgoing[sent:]
                if not self.outgoing:
                    self.selector.modify(self.sock, selectors.EVENT_READ, self)
                return
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed by the server")
        except (ConnectionError, OSError):
            # A kept-alive connection the server closed: reconnect and resend. A resent submit that had landed
            # answers 409 already_submitted, which counts as acknowledged.
            if self.reused and not self.incoming:
                self.close()
                self.send(self.method, self.path, self.body)
                return
            raise
        self.incoming += chunk
        head_end = self.incoming.find(b"\r\n\r\n")
        if head_end < 0:
            return
        lines = self.incoming[:head_end].decode("latin-1").split("\r\n")
        headers = dict((name.strip().lower(), value.strip()) for name, _, value in
                       (line.partition(":") for line in lines[1:]))
        if "chunked" in headers.get("transfer-encoding", ""):
            raise RuntimeError("chunked answers are not expected from this API")
        length = int(headers.get("content-length", "0"))
        if len(self.incoming) < head_end + 4 + length:
            return
        payload = bytes(self.incoming[head_end + 4: head_end + 4 + length])
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.answered(int(lines[0].split(" ", 2)[1]), payload)

    def close(self) -> None:
        if self.sock is not None:
            self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None

    # -- the loop: next -> submit until the end of the window. Latencies and judgements count only inside it,
    # but every acknowledged judgement is kept for the database check.
    def start(self) -> None:
        self.send("GET", self.next_path)

    def answered(self, status: int, payload: bytes) -> None:
        measure_from, deadline = self.window
        finished, result = time.monotonic(), self.result
        if self.method == "GET":
            if self.started >= measure_from:
                result["next_ms"].append((finished - self.started) * 1000)
            if status in (204, 402):
                result["stopped"][str(status)] += 1
                return self.stop()
            if status != 200:
                result["errors"][f"next {status}"] += 1
                return self.start() if finished < deadline else self.stop()
            self.assignment_id = json.loads(payload)["assignment_id"]
            answer = {"choice": self.rng.choice(("first", "second")), "strength": 2,
                      "milliseconds": self.rng.randint(2000, 9000)}
            return self.send("POST", f"/api/assignments/{self.assignment_id}/judgement/", json.dumps(answer).encode())
        if self.started >= measure_from:
            result["submit_ms"].append((finished - self.started) * 1000)
        if status == 201 or (status == 409 and json.loads(payload).get("code") == "already_submitted"):
            result["acknowledged"].append(self.assignment_id)
            if measure_from <= finished <= deadline:  # counted per slice of the measured time
                result["by_slice"][int((finished - measure_from) / SLICE_SECONDS)] += 1
            result["after_warmup"] += measure_from <= finished
        else:
            result["errors"][f"submit {status}"] += 1
        return self.start() if finished < deadline else self.stop()

    def stop(self) -> None:
        self.close()
        self.done = True


def client_process(port: int, campaign: str, tokens: list[str], warmup: float, seconds: float, seed: int, ready,
                   results) -> None:
    result = {"next_ms": [], "submit_ms": [], "acknowledged": [], "by_slice": Counter(), "after_warmup": 0,
              "errors": Counter(), "stopped": Counter()}
    selector = selectors.DefaultSelector()
    ready.wait()
    measure_from = time.monotonic() + warmup
    labelers = [
        Labeler(port=port, token=token, campaign=campaign, rng=random.Random(seed * 100_000 + number),
                window=(measure_from, measure_from + seconds), result=result, selector=selector)
        for number, token in enumerate(tokens)
    ]
    for labeler in labelers:
        labeler.start()
    cpu_started = None
    while not all(labeler.done for labeler in labelers):
        if cpu_started is None and time.monotonic() >= measure_from:
            cpu_started = time.process_time()
        for key, mask in selector.select(timeout=0.1):
            labeler = key.data
            try:
                labeler.on_event(mask)
            except (OSError, ValueError, RuntimeError) as error:  # counted, and the labeler goes on
                result["errors"][f"{labeler.method} {type(error).__name__}"] += 1
                labeler.close()
                labeler.start() if time.monotonic() < labeler.window[1] else labeler.stop()
    result["cpu_seconds"] = time.process_time() - (cpu_started or time.process_time())
    results.put(result)
