"""Time from starting userflux-engine to its first request arriving at a
server: a loopback listener in this script, the engine started with
subprocess, the clock read on each side (Popen's fork+exec included).
Run: python3 benches/startup.py [ROUNDS]   (needs target/release/userflux-engine)"""

import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ENGINE = "target/release/userflux-engine"


def once() -> float:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        p = subprocess.Popen(
            [
                ENGINE,
                "run",
                f"http://127.0.0.1:{port}/",
                "-c",
                "64",
                "-d",
                "1s",
                "--threads",
                "1",
                "-q",
                "--runs-dir",
                d,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = None
        while first is None:
            for key, _ in sel.select(timeout=5):
                if key.fileobj is srv:
                    conn, _ = srv.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                elif key.fileobj.recv(4096):
                    first = time.monotonic()
                    break
        p.kill()
        p.wait()
    return (first - t0) * 1000


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    times = [once() for _ in range(rounds)]
    print(
        f"first request {statistics.median(times):.1f} ms after start (median of {rounds}; min {min(times):.1f}, "
        f"max {max(times):.1f})"
    )
