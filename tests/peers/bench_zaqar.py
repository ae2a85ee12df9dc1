"""The Python rows of the Zaqar benchmark (benches/zaqar.rs): python-zaqarclient doing
by hand what the driver does. oslo.messaging has no Zaqar driver.

Run with the virtualenv that ``scripts/services zaqar`` builds (``.venv-zaqar/bin/python``):

    bench_zaqar.py --endpoint http://127.0.0.1:8888 --project bench --payload 100
                   --count 500 --warmup 10 --topic bz-1a2b3c4d-python-100
                   [--rows notify-1,notify-n,e2e] [--concurrency 16] [--e2e-senders 16]
                   [--claim-limit 20] [--poll-interval 0.01] [--idle-poll-interval 0.25]

Every row sends the same body as the driver: oslo's ``messagingv2`` envelope of a
``bench.event`` notification of priority INFO from ``bench.host`` whose payload is
``{"data": <--payload characters>, "t": <send time, ns since the epoch>}``, posted to
the queue ``<topic>-<row>__info`` (a topic of ``[A-Za-z0-9-]`` needs no escaping) with
a TTL of 3600 s, the driver's ``message_ttl``. Each row first does ``--warmup``
operations one at a time, untimed, then ``--count`` timed ones.

- ``notify-1``: ``queue.post`` one at a time, each awaited.
- ``notify-n``: ``queue.post`` from a pool of ``--concurrency`` threads, each with a
  client of its own (zaqarclient's clients are not documented as thread-safe).
- ``e2e``: a claimer thread (claims of ``--claim-limit``, each message deleted with its
  claim id once handled, pacing as the driver's: ``--poll-interval`` after a poll that
  found messages, doubling up to ``--idle-poll-interval`` while the queue stays empty)
  while ``--e2e-senders`` threads post ``--count`` notifications; throughput is the
  count over the time from the first send to the last handled, latency from the start
  of a send to its handling.

Output on stdout, one JSON object per line: first {"zaqarclient": VERSION}, then per row
{"row", "payload", "count", "seconds", "throughput", "p50_ms", "p99_ms"} or
{"row", "error"}. Each row deletes its queue at the end.
"""

import argparse
import concurrent.futures
import datetime
import json
import sys
import threading
import time
import traceback
import uuid
import warnings
from importlib.metadata import version

warnings.simplefilter("ignore")

from zaqarclient.queues import client as zaqar_client  # noqa: E402

# The driver's message_ttl, claim_ttl and claim_grace defaults.
MESSAGE_TTL = 3600
CLAIM_TTL = 300
CLAIM_GRACE = 60
DRAIN_TIMEOUT = 120


def new_client(args):
    conf = {
        "auth_opts": {"backend": "noauth", "options": {"os_project_id": args.project}},
        "client_uuid": str(uuid.uuid4()),
    }
    return zaqar_client.Client(args.endpoint, version=2, conf=conf)


def envelope(data, t):
    """oslo's messagingv2 envelope of one notification, as a JSON value."""
    inner = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "bench.host",
        "event_type": "bench.event",
        "priority": "INFO",
        "payload": {"data": data, "t": t},
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        ),
        "_unique_id": uuid.uuid4().hex,
    }
    return {"oslo.version": "2.0", "oslo.message": json.dumps(inner)}


def post(queue, data):
    queue.post({"ttl": MESSAGE_TTL, "body": envelope(data, time.time_ns())})


def percentiles(latencies):
    latencies = sorted(latencies)
    n = len(latencies)

    def at(q):
        return latencies[min(n * q // 100, n - 1)] * 1000.0

    return at(50), at(99)


def result(count, seconds, latencies):
    if not latencies or seconds <= 0:
        raise RuntimeError("no operation completed")
    p50, p99 = percentiles(latencies)
    return {
        "count": count,
        "seconds": seconds,
        "throughput": count / seconds,
        "p50_ms": p50,
        "p99_ms": p99,
    }


def timed_posts(args, queue_name, workers, data):
    """``--count`` posts from ``workers`` threads (a client each); per-post latencies
    and the elapsed time."""
    local = threading.local()

    def queue():
        q = getattr(local, "queue", None)
        if q is None:
            q = local.queue = new_client(args).queue(queue_name)
        return q

    def one(_):
        q = queue()
        t0 = time.perf_counter()
        post(q, data)
        return time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        # Every thread makes its client (and the queue, by zaqarclient's PUT) before
        # the clock starts.
        barrier = threading.Barrier(workers)
        list(pool.map(lambda _: (queue(), barrier.wait(timeout=60)), range(workers)))
        start = time.perf_counter()
        latencies = list(pool.map(one, range(args.count)))
        elapsed = time.perf_counter() - start
    return latencies, elapsed


def warm_up(args, queue, data):
    for _ in range(args.warmup):
        post(queue, data)


def notify(args, row, workers, data):
    name = f"{args.topic}-{row}__info"
    q = new_client(args).queue(name)
    try:
        warm_up(args, q, data)
        latencies, elapsed = timed_posts(args, name, workers, data)
        return result(len(latencies), elapsed, latencies)
    finally:
        q.delete()


class Claimer:
    """Claims and deletes the messages of a queue, recording each handled one."""

    def __init__(self, args, name):
        self.args = args
        self.queue = new_client(args).queue(name)
        self.handled = 0
        self.samples = []  # (sent ns, handled ns), stamped notifications only
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        wait = None
        try:
            while not self.stop.is_set():
                claim = self.queue.claim(
                    ttl=CLAIM_TTL, grace=CLAIM_GRACE, limit=self.args.claim_limit
                )
                taken = 0
                for message in claim:
                    taken += 1
                    inner = json.loads(message.body["oslo.message"])
                    sent = inner["payload"]["t"]
                    at = time.time_ns()
                    with self.lock:
                        self.samples.append((sent, at))
                        self.handled += 1
                    message.delete()
                if taken:
                    wait = None
                    pause = self.args.poll_interval
                else:
                    wait = (
                        self.args.poll_interval
                        if wait is None
                        else min(wait * 2, self.args.idle_poll_interval)
                    )
                    pause = wait
                self.stop.wait(pause)
        except Exception as e:  # noqa: BLE001 - reported as the row's error
            self.error = f"claimer: {e!r}"

    def wait_for(self, n):
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            with self.lock:
                if self.handled >= n:
                    return
            if self.error:
                raise RuntimeError(self.error)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the claimer handled {self.handled} of {n} within {DRAIN_TIMEOUT} s"
                )
            time.sleep(0.002)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)


def e2e(args, data):
    name = f"{args.topic}-e2e__info"
    q = new_client(args).queue(name)
    claimer = Claimer(args, name)
    try:
        warm_up(args, q, data)
        claimer.wait_for(args.warmup)
        start_ns = time.time_ns()
        timed_posts(args, name, args.e2e_senders, data)
        claimer.wait_for(args.warmup + args.count)
        with claimer.lock:
            timed = [(s, a) for s, a in claimer.samples if s >= start_ns]
        last = max(a for _, a in timed)
        latencies = [(a - s) / 1e9 for s, a in timed]
        return result(len(timed), (last - start_ns) / 1e9, latencies)
    finally:
        claimer.close()
        q.delete()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--payload", type=int, default=100)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--topic", required=True)
    p.add_argument("--rows", default="notify-1,notify-n,e2e")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--e2e-senders", type=int, default=16)
    p.add_argument("--claim-limit", type=int, default=20)
    p.add_argument("--poll-interval", type=float, default=0.01)
    p.add_argument("--idle-poll-interval", type=float, default=0.25)
    args = p.parse_args()

    print(json.dumps({"zaqarclient": version("python-zaqarclient")}), flush=True)
    data = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(args.payload))
    for row in [r.strip() for r in args.rows.split(",") if r.strip()]:
        try:
            if row == "notify-1":
                measured = notify(args, row, 1, data)
            elif row == "notify-n":
                measured = notify(args, row, args.concurrency, data)
            elif row == "e2e":
                measured = e2e(args, data)
            else:
                raise ValueError(f"no row {row!r}")
            print(json.dumps({"row": row, "payload": args.payload, **measured}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported as the row's error
            traceback.print_exc(file=sys.stderr)
            print(json.dumps({"row": row, "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
