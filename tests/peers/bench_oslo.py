"""The Python oslo.messaging rows of the RabbitMQ and Kafka benchmarks (benches/rabbit.rs,
benches/kafka.rs).

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

With a ``kafka://`` URL (benches/kafka.rs) the rows are oslo's Kafka notifier and
listener, the only parts oslo's Kafka driver has:

    bench_oslo.py --url kafka://127.0.0.1:9092/ --payload 100 --seconds 5 --warmup 1
                  --topic bench_x --rows e2e-4,drain [--fetch-wait-ms 10]
                  [--linger-ms 5] [--partitions 4]
                  [--drain-topic T --drain-count N] [--max-ops N]

``e2e-N``: a listener (executor ``threading``, in a child process, its own consumer
group) on ``T_n.info`` (created with ``--partitions``) while N threads of this process
send notifications whose payload is ``{"data": ..., "t": <send time, ns since the
epoch>}``; reported are the notifications sent in the window, over the time until the
last of them was handled, and the latency from send to handler. oslo's notifier does not
wait for delivery. ``drain``: a listener in a new group consumes the ``--drain-count``
notifications already in ``--drain-topic``.info (from the earliest offset, which oslo
does not offer: patched below), timed from the first handled to the last (oslo's
listener drops the first notification it polls, so it handles one fewer).

oslo's Kafka driver has no option for the consumer's ``fetch.wait.max.ms``, and tansu
answers a fetch only when it expires (librdkafka's default: 500 ms), so the Consumer
oslo builds gets ``--fetch-wait-ms`` through a wrapper, as every consumer of the
benchmark does. The producer's ``linger.ms`` is oslo's ``producer_batch_timeout``.
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


# --- kafka ----------------------------------------------------------------------------

KAFKA_READY_LIMIT = 60.0


def kafka_install(fetch_wait_ms, earliest):
    """Wraps the confluent_kafka.Consumer that oslo's impl_kafka builds (it calls
    ``confluent_kafka.Consumer(conf)`` on the module) to set what oslo cannot."""
    import confluent_kafka

    real = confluent_kafka.Consumer

    def consumer(conf):
        conf = dict(conf)
        # NOTE: oslo has no option for it; tansu answers a fetch only when it expires.
        conf["fetch.wait.max.ms"] = fetch_wait_ms
        if earliest:
            # NOTE: the drain row reads what was sent before it joined; oslo always
            # starts a new group at the end ('latest').
            conf["default.topic.config"] = {"auto.offset.reset": "earliest"}
        return real(conf)

    confluent_kafka.Consumer = consumer


def kafka_conf(url, linger_ms):
    """cfg.CONF with oslo's Kafka options registered and the producer's linger set."""
    from oslo_messaging._drivers.kafka_driver import kafka_options

    c = conf()
    kafka_options.register_opts(c, oslo_messaging.TransportURL.parse(c, url))
    c.set_override("producer_batch_timeout", linger_ms / 1000.0, group="oslo_messaging_kafka")
    return c


def kafka_create_topic(url, topic, partitions):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    servers = url.split("://", 1)[1].split("/", 1)[0]
    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=30,
        request_timeout=30,
    )
    for future in futures.values():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + 60
    while True:
        known = admin.list_topics(timeout=30).topics
        if topic in known and known[topic].error is None:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topic {topic} does not appear in the metadata")
        time.sleep(0.1)


def kafka_listen(url, topic, pool, fetch_wait_ms, earliest, counter, probes, ready, pipe):
    """A child process: a notification listener on ``topic``.info in group ``pool``
    until told to stop; answers "samples" (send and handling times of stamped
    notifications) and "span" (count, first and last handling time) on ``pipe``."""
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    kafka_install(fetch_wait_ms, earliest)
    c = conf()
    samples = []
    span = []

    class Listener:
        def info(self, ctxt, publisher_id, event_type, payload, metadata):
            now = time.time_ns()
            if payload.get("probe"):
                with probes.get_lock():
                    probes.value += 1
                return
            t = payload.get("t")
            if t:
                samples.append((t, now))
            mono = time.perf_counter()
            if span:
                span[1] = mono
            else:
                span.extend([mono, mono])
            with counter.get_lock():
                counter.value += 1

    transport = oslo_messaging.get_notification_transport(c, url=url)
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic)],
        [Listener()],
        executor="threading",
        pool=pool,
    )
    listener.start()
    ready.set()
    while True:
        command = pipe.recv()
        if command == "samples":
            pipe.send(list(samples))
        elif command == "span":
            pipe.send((counter.value, list(span)))
        else:
            break
    listener.stop()
    listener.wait()
    transport.cleanup()
    pipe.send("stopped")


class KafkaChild:
    """A kafka_listen child process and its counters."""

    def __init__(self, args, topic, earliest):
        mp = multiprocessing.get_context("spawn")
        self.counter = mp.Value("q", 0)
        self.probes = mp.Value("q", 0)
        ready = mp.Event()
        self.pipe, child_end = mp.Pipe()
        pool = f"{topic}_py_{os.getpid()}_{time.time_ns()}"
        self.process = mp.Process(
            target=kafka_listen,
            args=(args.url, topic, pool, args.fetch_wait_ms, earliest, self.counter,
                  self.probes, ready, child_end),
        )
        self.process.start()
        if not ready.wait(KAFKA_READY_LIMIT):
            self.close()
            raise RuntimeError("the oslo listener process did not start")

    def ask(self, command):
        self.pipe.send(command)
        return self.pipe.recv()

    def close(self):
        try:
            self.pipe.send("stop")
            if self.pipe.poll(30):
                self.pipe.recv()
        except (OSError, EOFError):
            pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()


def kafka_e2e(args, workers, data):
    """The e2e row: a listener in a child process, ``workers`` notifier threads here."""
    topic = args.topic + "_n"
    kafka_create_topic(args.url, topic + ".info", args.partitions)
    child = KafkaChild(args, topic, earliest=False)
    try:
        c = kafka_conf(args.url, args.linger_ms)
        transport = oslo_messaging.get_notification_transport(c, url=args.url)
        notifier = oslo_messaging.Notifier(
            transport, publisher_id="bench.host", driver="messagingv2", topics=[topic]
        )
        # The group starts at the end once it has its partitions: probe until a
        # notification arrives, so that everything measured is received.
        deadline = time.monotonic() + KAFKA_READY_LIMIT
        while child.probes.value == 0:
            if time.monotonic() > deadline:
                return {"error": "the oslo listener received nothing within 60 s"}
            notifier.info({}, "bench.probe", {"probe": 1})
            time.sleep(0.1)
        start_ns = time.time_ns()
        window_ns = start_ns + int(args.warmup * 1e9)
        end_ns = window_ns + int(args.seconds * 1e9)

        def send():
            notifier.info({}, "bench.event", {"data": data, "t": time.time_ns()})

        _, _, sent, errors = drive(workers, send, args.warmup, args.seconds, args.max_ops)
        if errors:
            return {"error": errors[0]}
        error = drain(child.counter, sent)
        if error:
            return {"error": error}
        samples = child.ask("samples")
        transport.cleanup()
    finally:
        child.close()
    latencies = sorted((r - s) / 1e9 for s, r in samples if window_ns <= s < end_ns)
    last = max((r for s, r in samples if window_ns <= s < end_ns), default=window_ns)
    elapsed = (last - window_ns) / 1e9
    if not latencies or elapsed <= 0:
        return {"error": "no notification handled in the measured window"}
    n = len(latencies)
    return {
        "count": n,
        "seconds": elapsed,
        "throughput": n / elapsed,
        "p50_ms": latencies[n * 50 // 100] * 1000,
        "p99_ms": latencies[min(n * 99 // 100, n - 1)] * 1000,
        "note": f"{workers} sender threads",
    }


def kafka_drain(args):
    """The drain row: a listener in a new group handles what --drain-topic holds."""
    if not args.drain_topic:
        return {"error": "no --drain-topic"}
    child = KafkaChild(args, args.drain_topic, earliest=True)
    # NOTE: oslo's KafkaListener polls once when it is created ("to ensure topics are
    # created") and drops what that poll returns: one notification of the topic is
    # never handled.
    expected = args.drain_count - 1
    try:
        error = drain(child.counter, expected)
        count, span = child.ask("span")
    finally:
        child.close()
    if error:
        return {"error": error}
    if count < 2 or len(span) < 2 or span[1] <= span[0]:
        return {"error": f"{count} notifications handled: no rate"}
    return {
        "count": count,
        "seconds": span[1] - span[0],
        "throughput": (count - 1) / (span[1] - span[0]),
        "p50_ms": None,
        "p99_ms": None,
        "note": None,
    }


def kafka_main(args):
    print(json.dumps({"oslo.messaging": version("oslo.messaging")}), flush=True)
    # Here too: the notifier's process builds no consumer, but stays consistent.
    kafka_install(args.fetch_wait_ms, earliest=False)
    data = "".join(
        "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(args.payload)
    )
    code = 1
    try:
        for row in args.rows.split(","):
            kind, _, workers = row.partition("-")
            try:
                if kind == "e2e":
                    result = kafka_e2e(args, int(workers or 1), data)
                elif kind == "drain":
                    result = kafka_drain(args)
                else:
                    result = {"error": f"no Kafka row {row}"}
            except Exception as e:  # reported as the row's error
                traceback.print_exc()
                result = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps({"row": row, "payload": args.payload, **result}), flush=True)
        code = 0
    except Exception:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


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
    # Kafka only.
    p.add_argument("--fetch-wait-ms", type=int, default=10)
    p.add_argument("--linger-ms", type=float, default=0.0)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--drain-topic")
    p.add_argument("--drain-count", type=int, default=0)
    args = p.parse_args()
    if args.url.startswith("kafka://"):
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        kafka_main(args)
        return
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
