"""The Python oslo.messaging rows of the RabbitMQ benchmark (benches/rabbit.rs).

Run with the virtualenv that scripts/services builds (``.venv/bin/python``):

    bench_oslo.py --url rabbit://guest:guest@127.0.0.1:5672/ --payload 100
                  --seconds 3 --warmup 1 --topic bench_x
                  [--rows calls-1,calls-64,casts-1,casts-256,notify-1,notify-256]
                  [--max-ops N]

oslo's client against oslo's server on the same broker: the RPC server (executor
``threading``, one endpoint ``echo(ctxt, data) -> data``) on Target(topic=T,
server="bench") and the notification listener on topic ``T_n`` run in a child process,
as a separate service would; the callers are threads of this process sharing one
transport, as the threads of one service would. The argument is ``data``, a string of
``--payload`` characters.

Each row runs its callers for ``--warmup`` seconds, then measures for ``--seconds``
(calls and casts and notifications that start in that window are timed; a caller
stops after ``--max-ops`` operations when given). Casts and notifications are timed on
the sending side; a row ends only when the child has received everything sent.

Output on stdout, one JSON object per line: first {"oslo.messaging": VERSION}, then per
row {"row", "payload", "workers", "count", "seconds", "throughput", "p50_ms", "p99_ms",
"note"} or {"row", "error"}; last {"reply_queue": NAME}, the client's reply queue,
which oslo leaves to expire and the caller deletes.
"""

import argparse
import json
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
import warnings
from importlib.metadata import version

# Deprecation notices of oslo's dependencies would drown stderr, which the benchmark
# shows when a row fails.
warnings.simplefilter("ignore")

from oslo_config import cfg  # noqa: E402

import oslo_messaging  # noqa: E402

SERVER = "bench"
CALL_TIMEOUT = 60
DRAIN_TIMEOUT = 120
# oslo's send connections come from a pool of rpc_conn_pool_size (30): more threads
# than that wait for a connection, so they add little but contention.
POOL_SIZE = 30


def conf():
    """The global cfg.CONF: oslo.messaging registers some options only there."""
    cfg.CONF([], project="bench_oslo", default_config_files=[])
    return cfg.CONF


def serve(url, topic, counter, ready, stop):
    """The child process: RPC server and notification listener until ``stop``."""
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    c = conf()

    def count():
        with counter.get_lock():
            counter.value += 1

    class Echo:
        def echo(self, ctxt, data):
            count()
            return data

    class Listener:
        def info(self, ctxt, publisher_id, event_type, payload, metadata):
            count()

    rpc = oslo_messaging.get_rpc_transport(c, url=url)
    server = oslo_messaging.get_rpc_server(
        rpc,
        oslo_messaging.Target(topic=topic, server=SERVER),
        [Echo()],
        executor="threading",
    )
    notifications = oslo_messaging.get_notification_transport(c, url=url)
    listener = oslo_messaging.get_notification_listener(
        notifications,
        [oslo_messaging.Target(topic=topic + "_n")],
        [Listener()],
        executor="threading",
    )
    server.start()
    listener.start()
    ready.set()
    stop.wait()
    # Both stop first, so their poll loops wind down together.
    for s in (server, listener):
        s.stop()
    for s in (server, listener):
        s.wait()
    rpc.cleanup()
    notifications.cleanup()


def drive(workers, op, warmup, seconds, max_ops):
    """Runs ``op`` from ``workers`` threads; returns (latencies, elapsed, sent, errors)."""
    start = time.perf_counter()
    window = start + warmup
    end = window + seconds
    results = [([], window, 0)] * workers
    errors = []

    def worker(i):
        latencies, last, done = [], window, 0
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= end or (max_ops and done >= max_ops):
                    break
                op()
                t1 = time.perf_counter()
                if t0 >= window:
                    latencies.append(t1 - t0)
                    last = t1
                done += 1
        except Exception as e:  # reported as the row's error
            errors.append(f"{type(e).__name__}: {e}")
        results[i] = (latencies, last, done)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = sorted(x for r in results for x in r[0])
    last = max(r[1] for r in results)
    sent = sum(r[2] for r in results)
    return latencies, last - window, sent, errors


def drain(counter, expected):
    """Waits until the child has received ``expected`` messages in all."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while counter.value < expected:
        if time.monotonic() >= deadline:
            return f"the consumer got {counter.value} of {expected} messages"
        time.sleep(0.005)
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--payload", type=int, default=100)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--topic", required=True)
    p.add_argument(
        "--rows", default="calls-1,calls-64,casts-1,casts-256,notify-1,notify-256"
    )
    p.add_argument("--max-ops", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps({"oslo.messaging": version("oslo.messaging")}), flush=True)

    # spawn, not fork: the child must not inherit this process's connections or threads.
    mp = multiprocessing.get_context("spawn")
    counter = mp.Value("q", 0)
    ready, stop = mp.Event(), mp.Event()
    child = mp.Process(target=serve, args=(args.url, args.topic, counter, ready, stop))
    child.start()
    if not ready.wait(60):
        child.terminate()
        sys.exit("the oslo server process did not start")

    c = conf()
    rpc = oslo_messaging.get_rpc_transport(c, url=args.url)
    client = oslo_messaging.get_rpc_client(
        rpc, oslo_messaging.Target(topic=args.topic), timeout=CALL_TIMEOUT
    )
    notifications = oslo_messaging.get_notification_transport(c, url=args.url)
    notifier = oslo_messaging.Notifier(
        notifications,
        publisher_id="bench.host",
        driver="messagingv2",
        topics=[args.topic + "_n"],
    )
    data = "".join(
        "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(args.payload)
    )

    def call():
        if len(client.call({}, "echo", data=data)) != len(data):
            raise ValueError("echo returned a different payload")

    ops = {
        "calls": call,
        "casts": lambda: client.cast({}, "echo", data=data),
        "notify": lambda: notifier.info({}, "bench.event", {"data": data}),
    }
    code = 1
    try:
        for row in args.rows.split(","):
            kind, workers = row.split("-")
            workers = int(workers)
            before = counter.value
            latencies, elapsed, sent, errors = drive(
                workers, ops[kind], args.warmup, args.seconds, args.max_ops
            )
            error = errors[0] if errors else None
            if not error and kind != "calls":
                error = drain(counter, before + sent)
            if not error and not latencies:
                error = "no operation completed in the measured window"
            if error:
                print(json.dumps({"row": row, "error": error}), flush=True)
                continue
            n = len(latencies)
            print(
                json.dumps(
                    {
                        "row": row,
                        "payload": args.payload,
                        "workers": workers,
                        "count": n,
                        "seconds": elapsed,
                        "throughput": n / elapsed if elapsed > 0 else 0.0,
                        "p50_ms": latencies[n * 50 // 100] * 1000,
                        "p99_ms": latencies[min(n * 99 // 100, n - 1)] * 1000,
                        "note": (
                            f"{workers} threads share {POOL_SIZE} connections"
                            if workers > POOL_SIZE
                            else None
                        ),
                    }
                ),
                flush=True,
            )
        code = 0
    except Exception:
        traceback.print_exc()
    finally:
        stop.set()
        child.join(30)
        if child.is_alive():
            child.terminate()
        # oslo never deletes its reply queue (it expires after 30 minutes): the caller
        # of this script does.
        reply_q = getattr(rpc._driver, "_reply_q", None)
        print(json.dumps({"reply_queue": reply_q}), flush=True)
        # Closing the 30 pooled connections one by one takes seconds; the broker drops
        # them as well when the process ends.
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
