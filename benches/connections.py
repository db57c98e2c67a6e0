"""Do all N connections carry load? A loopback asyncio server counts the
requests on each connection while the engine (one thread) runs N VUs
against it; printed: connections seen, how many carried at least one
request, the fewest requests on one, and the engine's peak RSS (VmHWM).
Run: python3 benches/connections.py [N] [SECONDS]   (default 10000, 5)"""

import asyncio
import contextlib
import resource
import subprocess
import sys
import tempfile

ENGINE = "target/release/userflux-engine"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def main(n: int, secs: int) -> None:
    counts: dict[int, int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = id(writer)
        counts[key] = 0
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                counts[key] += 1
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 1000, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        proc = await asyncio.create_subprocess_exec(
            ENGINE,
            "run",
            f"http://127.0.0.1:{port}/",
            "-c",
            str(n),
            "-d",
            f"{secs}s",
            "--threads",
            "1",
            "-q",
            "--runs-dir",
            d,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0
        while proc.returncode is None:
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{proc.pid}/status") as f:
                peak = max(peak, int(f.read().split("VmHWM:")[1].split()[0]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.2)
    server.close()
    carried = [c for c in counts.values() if c > 0]
    print(
        f"{len(counts):,} connections seen, {len(carried):,} carried load, fewest requests on one: "
        f"{min(carried) if carried else 0}, total {sum(counts.values()):,}; engine peak RSS {peak / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000, int(sys.argv[2]) if len(sys.argv) > 2 else 5))
