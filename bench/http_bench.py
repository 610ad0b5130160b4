"""HTTP server benchmark: keep-alive, pipelined POSTs of a small JSON body against an echo app on 127.0.0.1.

    python bench/http_bench.py [--connections 64] [--pipeline 8] [--requests 200000] [--duration 10]
                               [--loop uvloop|asyncio] [--eager] [--router] [--json]

The server (``smppgw.http.HttpServer`` with an app that answers 200 with the request body) runs in a subprocess on
one core; this process is the client: every connection writes ``--pipeline`` requests in one write, reads their
responses (counted by length: all responses are alike), and repeats until ``--requests`` in total or
``--duration`` seconds. Reports requests/s and the server process's CPU time per request (user + system, from
/proc, so Linux only) — the figure that does not depend on how fast the client is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

BODY = b'{"to":"+79161234567","from":"MFO-Zaim","text":"Your code 482913","client_ref":"a1b2c3"}'
REQUEST = (
    b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t0k3n\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop  # noqa: PLC0415 - optional, only when asked

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# ---------------------------------------------------------------------------------------------------- server side


def serve(args: argparse.Namespace) -> None:
    from smppgw.http import HttpServer, Request, Response, Router  # noqa: PLC0415

    async def echo(request: Request) -> Response:
        return Response(200, request.body)

    async def echo_routed(request: Request, params: dict[str, str]) -> Response:
        return Response(200, request.body)

    async def main() -> None:
        if args.router:
            router = Router()
            router.add("POST", "/v1/messages", echo_routed)
            server = HttpServer(router, eager_handlers=args.eager)
        else:
            server = HttpServer(echo, eager_handlers=args.eager)
        await server.start("127.0.0.1", 0)
        print(server.port, flush=True)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(sys.stdin.fileno(), lambda: done.done() or done.set_result(None))  # parent closes stdin
        await done
        loop.remove_reader(sys.stdin.fileno())
        await server.close(1.0)
        print(json.dumps(server.stats.snapshot()), flush=True)

    loop = _new_loop(args.loop)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------------------- client side


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _connection(port: int, pipeline: int, budget: list[int], deadline: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    batch = REQUEST * pipeline
    response_len = 0
    done = 0
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            n = min(pipeline, budget[0])
            budget[0] -= n
            writer.write(batch if n == pipeline else REQUEST * n)
            if not response_len:  # learn the (constant) response size from the first answer
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                response_len = len(head) + length
                await reader.readexactly(length + response_len * (n - 1))
            else:
                await reader.readexactly(response_len * n)
            done += n
    finally:
        writer.close()
        await writer.wait_closed()
    return done


async def load(args: argparse.Namespace, port: int, pid: int) -> dict[str, float]:
    budget = [args.requests]
    cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
    deadline = time.monotonic() + args.duration
    clients = [_connection(port, args.pipeline, budget, deadline) for _ in range(args.connections)]
    counts = await asyncio.gather(*clients)
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds(pid) - cpu0
    total = sum(counts)
    return {
        "requests": total,
        "seconds": round(elapsed, 3),
        "req_per_s": round(total / elapsed),
        "server_cpu_us_per_req": round(cpu / total * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pipeline", type=int, default=8, help="requests per write on each connection")
    parser.add_argument("--requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--duration", type=float, default=10.0, help="or after this many seconds")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the server's event loop")
    parser.add_argument("--eager", action="store_true", help="HttpServer(eager_handlers=True)")
    parser.add_argument("--router", action="store_true", help="route through smppgw.http.Router")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    cmd = [sys.executable, __file__, "--serve", "--loop", args.loop]
    cmd += ["--eager"] * args.eager + ["--router"] * args.router
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        result = _new_loop("uvloop").run_until_complete(load(args, port, proc.pid))
        proc.stdin.close()
        stats = json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    errors = stats["responses_5xx"] + stats["responses_4xx"] + stats["parse_errors"]
    config = {k: getattr(args, k) for k in ("connections", "pipeline", "loop", "eager", "router")}
    if args.json:
        print(json.dumps({**config, **result, "server_errors": errors}))
    else:
        print(f"config: {config}")
        print(
            f"{result['requests']} requests in {result['seconds']} s: {result['req_per_s']} req/s, "
            f"server CPU {result['server_cpu_us_per_req']} µs/req, errors {errors}"
        )


if __name__ == "__main__":
    main()
