"""The site under test: gunicorn as the README deploys it, on 127.0.0.1 and a free port."""

import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.serving.config import PYTHON, BenchConfig, served_tree, server_environment
from bench.serving.profiling import profile_hooks_write


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_start(config: BenchConfig, port: int, profile_dir: str | None) -> subprocess.Popen:
    """Start gunicorn on the code of this checkout (or of `config.tree`) and return once it answers."""
    command = [
        str(Path(PYTHON).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(config.workers), "--worker-class", config.worker_class, "--threads", str(config.threads),
        "--keep-alive", "30", "--backlog", "256", "--log-level", "warning",
    ]
    env = server_environment(config)
    if profile_dir:
        command += ["--config", str(profile_hooks_write(profile_dir))]
        env["BENCH_PROFILE_DIR"] = profile_dir
    tree = served_tree(config)
    env["PYTHONPATH"] = str(tree)
    server = subprocess.Popen(command, cwd=tree, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                # The login page: public, so the probe is not logged as a refused request.
                probe.sendall(b"GET /accounts/login/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if probe.recv(12).startswith(b"HTTP/1."):
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def gunicorn_stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
