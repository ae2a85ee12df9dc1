"""The Python side of the interop tests: the real oslo.messaging as a command-line peer.

Run with the virtualenv that scripts/services builds (``.venv/bin/python``). Every
subcommand takes ``--url URL`` (an oslo transport URL, e.g.
``rabbit://guest:guest@127.0.0.1:5672/``); ``--debug`` sends oslo's logs to stderr at
DEBUG level (default WARNING); ``--config-file PATH`` loads oslo options (for example
``[oslo_messaging_rabbit]``) from an INI file. Output on stdout is one JSON object per
line, except the literal line ``ready``; every line is flushed at once.

``--otel`` (any subcommand) instruments oslo.messaging with
opentelemetry-instrumentation-oslo-messaging, exporting spans to an in-memory exporter
that also prints each finished span as a line:
    {"span": {"name", "kind", "trace_id", "span_id", "parent_span_id", "attributes"}}
(ids in lowercase hex; parent_span_id is null for a root span).

server --url URL --topic T --server S [--exchange E] [--namespace N] [--version V]
       [--executor threading]
    An RPC server on Target(topic=T, server=S, exchange=E) with one endpoint whose
    target is Target(namespace=N, version=V) and whose methods are:
        echo(ctxt, data) -> data
        add(ctxt, a, b) -> a + b
        fail(ctxt, message) raises ValueError(message)
        sleep(ctxt, seconds) sleeps, then returns seconds
        context(ctxt) -> the ctxt dict it received
        relay(ctxt, topic, method, args, server=None) -> the result of calling
            `method` with `args` on Target(topic, server) over the same transport,
            with the ctxt it received
    Prints ``ready`` once started (its queues are declared by then), then one line per
    handled request, before the method runs:
        {"method": "add", "args": {"a": 1, "b": 2}, "server": S, "ctxt": {...}}
    Runs until stdin reaches end of file or SIGTERM/SIGINT, then stops gracefully
    (in-flight requests finish) and exits 0.

call|cast --url URL --topic T [--server S] [--exchange E] [--namespace N] [--version V]
          [--timeout SECONDS] [--call-monitor-timeout SECONDS] [--fanout]
          [--context JSON] [--repeat N] [--allowed-remote-exmods MOD,...]
          METHOD [ARGS_JSON]
    ARGS_JSON is a JSON object of keyword arguments (default {}); the context is a JSON
    object (default {}). ``call`` prints {"result": <the result>} per call; ``cast``
    prints {"sent": true} per cast. ``--repeat N`` sends N times with one client.
    On a failure it prints {"error": {...}} and exits at once:
      - oslo's RemoteError (a class the client may not rebuild):
          {"error": {"class": exc_type, "module": null, "message": value,
                     "remote": true, "traceback": "..."}}            exit 1
      - a re-raised exception (builtins, or a module of --allowed-remote-exmods):
          {"error": {"class": "ValueError", "module": "builtins",
                     "message": <first line of str(e)>, "full": str(e),
                     "mro": ["builtins.ValueError", ...], "remote": true}}   exit 1
        (oslo appends the remote traceback to the message and may rename the class
        with a ``_Remote`` suffix; class and module are given without it.)
      - MessagingTimeout: {"error": {"class": "MessagingTimeout", ...}}     exit 2
      - any other local exception: {"error": {..., "remote": false}}        exit 1

notify --url URL --topic T --publisher-id P --driver messaging|messagingv2
       --priority audit|debug|info|warn|error|critical|sample [--exchange E]
       [--context JSON] [--count N] EVENT_TYPE PAYLOAD_JSON
    Sends N (default 1) notifications through Notifier(driver=..., topics=[T]) and
    prints {"sent": N}. The context is sent as an oslo.context RequestContext, since
    oslo drops plain dict contexts from notifications. ``--exchange`` sets
    control_exchange (where notifications go).

listen --url URL --topic T [--topic T2 ...] [--exchange E] [--pool NAME] [--count N]
       [--timeout SECONDS] [--priorities info,error,...] [--event-type-filter REGEX]
       [--publisher-filter REGEX]
    A notification listener on the topics, with one endpoint handling the given
    priorities (default: all seven) behind a NotificationFilter. Prints ``ready`` once
    its queues exist, then one line per notification:
        {"priority", "publisher_id", "event_type", "payload", "metadata", "ctxt"}
    Exits 0 after N notifications (default: never; notifications handled
    concurrently meanwhile are printed too), 2 when the timeout passes first
    (default: none; it then prints {"timeout": SECONDS, "seen": COUNT}), 0 on
    SIGTERM/SIGINT. Unlike the server it does not watch stdin.

service --config-file INI [--url RPC_URL] [--notify-url NOTIFY_URL] --topic T
        --server S [--publisher-id P] [--driver messaging|messagingv2]
        [--notify-topic NT ...] [--listen-topic LT ...] [--pool NAME]
    One oslo.messaging service on two transports, as in oslo's functional scenario02
    (RPC on RabbitMQ, notifications on Kafka): the RPC transport is [DEFAULT]
    transport_url (or --url), the notification transport [oslo_messaging_notifications]
    transport_url (or --notify-url). It runs
      - an RPC server on Target(topic=T, server=S) with the methods of ``server`` plus
            emit(ctxt, event_type, payload, priority="info") -> {"emitted": event_type}
        which sends that notification through a Notifier on the notification transport
        (publisher P, default S; driver and topics from [oslo_messaging_notifications]
        unless --driver/--notify-topic say otherwise) with the caller's context;
      - a notification listener on the notification transport (topics --listen-topic,
        default [oslo_messaging_notifications] topics; pool --pool; all priorities)
        printing {"notification": {"priority", "publisher_id", "event_type",
        "payload", "metadata", "ctxt"}} per notification;
      - a client: each stdin line is a JSON command
            {"call": METHOD, "topic": T2, "server": S2?, "args": {...}?,
             "context": {...}?, "timeout": SECONDS?}
        made as an RPC call on the RPC transport; it prints {"reply": RESULT} or
        {"reply_error": {...}} (as ``call`` describes errors).
    Prints ``ready`` once the server is started and the listener is consuming, then
    one line per request handled ({"method", ...} as ``server`` does), notification
    received and reply. Stops gracefully at end of stdin or on SIGTERM/SIGINT, exit 0.

raw --url KAFKA_URL --topic T [--topic T2 ...] --count N [--timeout SECONDS]
    Not oslo: reads the Kafka topics from their beginning with a plain confluent-kafka
    consumer (in a consumer group of its own) and prints one line per record:
        {"topic", "partition", "key", "value"}
    where value is the record parsed as JSON (or its text when it is not JSON) and key
    is the record's key as text (or null). Exits 0 after N records, 2 when the
    timeout (default 60 s) passes first, printing {"timeout": SECONDS, "seen": COUNT}.

Kafka (``kafka://`` URLs, oslo's notification-only driver, against tansu): the broker
does not create topics, so ``notify``, ``listen`` and ``service`` create the topics they
produce to or subscribe to (``<topic>.<priority>``, 4 partitions as the Rust driver
makes them; an existing topic is fine) before oslo touches them. oslo cannot configure
the consumer's fetch.wait.max.ms, and tansu answers a fetch only when that expires, so
the peer wraps confluent_kafka.Consumer to set it (10 ms). A listener's ``ready``
means that its consumer has partitions assigned and is fetching from them (so a
notification sent afterwards is received). A kafka URL may carry the Rust driver's
extension query parameters (fetch_wait_max_ms, topic_partitions, ...), which oslo
would refuse: the peer takes fetch_wait_max_ms and topic_partitions from them and
drops the rest. ``notify`` over Kafka waits for the broker to acknowledge every
message and exits 1 (printing {"error": ...}) when one was not delivered. When a topic
cannot be created or a listener is not consuming within 60 s, the reason goes to
stderr and the peer exits 3.
"""

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings

# Deprecation notices of oslo's dependencies (eventlet, the executor argument) would
# drown the peer's stderr, which the tests show when something fails; oslo's own
# problems still reach stderr through logging.
warnings.simplefilter("ignore")

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_messaging.notify import filter as notify_filter  # noqa: E402

PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
REMOTE_POSTFIX = "_Remote"

_out_lock = threading.Lock()


def emit(obj):
    """Writes one line to stdout at once: the tests read it line by line."""
    line = obj if isinstance(obj, str) else json.dumps(obj, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def json_object(text, what):
    value = json.loads(text)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SystemExit(f"{what} must be a JSON object, got {text}")
    return value


# --- kafka ----------------------------------------------------------------------------

# The Rust driver's extension options, which oslo's kafka driver would refuse in a URL.
KAFKA_EXTENSIONS = (
    "fetch_wait_max_ms",
    "commit_before_dispatch",
    "topic_partitions",
    "topic_replication_factor",
    "producer_delivery_timeout",
    "consumer_session_timeout",
    "create_topics",
    "auto_offset_reset",
    "delete_reply_topics",
)
# How long a Kafka listener may take to have its partitions and fetch from them.
KAFKA_READY_LIMIT = 60.0
# How long a Kafka producer may try to deliver one message (librdkafka's default is
# 300 s; oslo does not set it).
KAFKA_DELIVERY_TIMEOUT_MS = 30000


def is_kafka(url):
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0] == "kafka"


class Kafka:
    """What oslo's kafka driver needs around it against tansu: topics created up front,
    the consumer's fetch wait set, listeners known to be consuming, deliveries checked.

    oslo's impl_kafka builds its clients as ``confluent_kafka.Consumer(conf)`` and
    ``confluent_kafka.Producer(conf)``; install() replaces those two module attributes
    with factories that add a few settings to oslo's conf and keep the clients."""

    def __init__(self, url):
        self.fetch_wait_ms = 10
        self.partitions = 4
        self.url = self._strip_extensions(url)
        self.consumers = []  # (consumer, fetch states by (topic, partition))
        self.delivered = 0
        self.failed = []
        self._lock = threading.Lock()

    def _strip_extensions(self, url):
        """The URL without the Rust driver's extension parameters (read into self)."""
        from urllib.parse import parse_qsl, urlencode

        base, sep, query = url.partition("?")
        if not sep:
            return url
        kept = []
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "fetch_wait_max_ms":
                self.fetch_wait_ms = int(value)
            elif key == "topic_partitions":
                self.partitions = int(value)
            elif key not in KAFKA_EXTENSIONS:
                kept.append((key, value))
        return base + ("?" + urlencode(kept) if kept else "")

    def bootstrap(self, conf):
        from oslo_utils import netutils

        parsed = oslo_messaging.TransportURL.parse(conf, self.url)
        hosts = [
            f"{netutils.escape_ipv6(h.hostname)}:{h.port or 9092}"
            for h in parsed.hosts
            if h.hostname
        ]
        return ",".join(hosts) or "127.0.0.1:9092", parsed.virtual_host

    def install(self):
        import confluent_kafka

        real_consumer = confluent_kafka.Consumer
        real_producer = confluent_kafka.Producer

        def consumer(conf):
            conf = dict(conf)
            # NOTE: the reason for the wrapper: oslo has no option for it, and tansu
            # answers a fetch only when fetch.wait.max.ms expires (librdkafka: 500 ms).
            conf["fetch.wait.max.ms"] = self.fetch_wait_ms
            # librdkafka's statistics tell when the consumer really consumes: its group
            # is steady, and every assigned partition is fetching. (They come from the
            # consume() calls of oslo's poll thread; the consumer itself cannot be asked
            # from another thread: assignment() blocks while consume() runs.)
            stats = {}

            def on_stats(text):
                stats["last"] = json.loads(text)

            conf["statistics.interval.ms"] = 100
            conf["stats_cb"] = on_stats
            c = real_consumer(conf)
            with self._lock:
                self.consumers.append(stats)
            return c

        def producer(conf):
            conf = dict(conf)
            conf["message.timeout.ms"] = KAFKA_DELIVERY_TIMEOUT_MS

            def on_delivery(err, msg):
                with self._lock:
                    if err is None:
                        self.delivered += 1
                    else:
                        self.failed.append(f"{msg.topic()}: {err}")

            conf["on_delivery"] = on_delivery
            return real_producer(conf)

        confluent_kafka.Consumer = consumer
        confluent_kafka.Producer = producer

    def ensure_topics(self, conf, topics):
        """Creates the topics that do not exist yet, and waits until they do."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        servers, _ = self.bootstrap(conf)
        admin = AdminClient({"bootstrap.servers": servers})
        wanted = sorted(set(topics))
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=self.partitions, replication_factor=1) for t in wanted],
            operation_timeout=30,
            request_timeout=30,
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise SystemExit(f"cannot create Kafka topic {topic}: {exc}")
        deadline = time.monotonic() + 60
        while True:
            known = admin.list_topics(timeout=30).topics
            missing = [t for t in wanted if t not in known or known[t].error is not None]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"Kafka topics {missing} do not appear in the metadata")
            time.sleep(0.1)

    def _consuming(self):
        """Whether every consumer has partitions and fetches from all of them."""
        with self._lock:
            consumers = list(self.consumers)
        if not consumers:
            return False, "no consumer yet"
        for stats in consumers:
            last = stats.get("last")
            if last is None:
                return False, "no statistics yet"
            group = last.get("cgrp", {})
            assigned = group.get("assignment_size", 0)
            if group.get("join_state") != "steady" or assigned == 0:
                return False, f"consumer group {group}"
            fetching = [
                f"{topic}[{p}]"
                for topic, t in last.get("topics", {}).items()
                for p, part in t.get("partitions", {}).items()
                if int(p) >= 0 and part.get("fetch_state") == "active"
            ]
            if len(fetching) < assigned:
                return False, f"{assigned} partitions assigned, fetching from {fetching}"
        return True, ""

    def wait_consuming(self):
        deadline = time.monotonic() + KAFKA_READY_LIMIT
        while True:
            ok, why = self._consuming()
            if ok:
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the Kafka listener is not consuming after {KAFKA_READY_LIMIT} s: {why}"
                )
            time.sleep(0.05)

    def deliveries(self, expected):
        """None when `expected` messages were delivered, else what went wrong."""
        with self._lock:
            if self.failed:
                return "not delivered: " + "; ".join(self.failed)
            if self.delivered < expected:
                return f"{self.delivered} of {expected} messages delivered"
        return None


def kafka_topics(conf, kafka, topics, priorities, vhost=False):
    """oslo's topic names: <topic>.<priority>[.<vhost>] (its consumer omits the vhost)."""
    _, virtual_host = kafka.bootstrap(conf)
    suffix = [virtual_host] if vhost and virtual_host else []
    return [".".join([t, p] + suffix) for t in topics for p in priorities]


def make_conf(args):
    """The global cfg.CONF: oslo.messaging registers some options (tracing) only there."""
    argv = ["--config-file", args.config_file] if args.config_file else []
    cfg.CONF(argv, project="oslo_peer", default_config_files=[])
    return cfg.CONF


def notification_transport(args, topics):
    """oslo's notification transport for --url with the global conf, and the Kafka
    helper (None for other transports). For a Kafka URL the confluent-kafka wrappers
    are installed first, the URL loses the Rust driver's extensions, and the topics
    ``topics(conf, kafka)`` names are created before oslo touches them."""
    url, kafka = args.url, None
    if is_kafka(url):
        kafka = Kafka(url)
        kafka.install()
        url = kafka.url
    conf = make_conf(args)
    if kafka:
        kafka.ensure_topics(conf, topics(conf, kafka))
    return oslo_messaging.get_notification_transport(conf, url=url), kafka


def stop_event(watch_stdin):
    """An event set on SIGTERM/SIGINT and, with `watch_stdin`, at end of stdin: a test
    stops a server by closing its stdin (or by killing it)."""
    done = threading.Event()

    def on_signal(_signum, _frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def read_stdin():
        try:
            while sys.stdin.readline():
                pass
        except (OSError, ValueError):
            pass
        done.set()

    if watch_stdin:
        threading.Thread(target=read_stdin, daemon=True).start()
    return done


def strip_remote(name):
    if name and name.endswith(REMOTE_POSTFIX):
        return name[: -len(REMOTE_POSTFIX)]
    return name


def describe_error(exc):
    """The JSON form of an exception raised by call/cast (see the module docstring)."""
    if isinstance(exc, oslo_messaging.MessagingTimeout):
        return {
            "class": type(exc).__name__,
            "module": type(exc).__module__,
            "message": str(exc),
            "remote": False,
        }
    if isinstance(exc, oslo_messaging.RemoteError):
        return {
            "class": exc.exc_type,
            "module": None,
            "message": exc.value,
            "remote": True,
            "traceback": exc.traceback,
        }
    cls = type(exc)
    text = str(exc)
    # oslo renames rebuilt classes with a _Remote suffix; built-in classes cannot be
    # renamed, so it appends a newline and the remote traceback to their message.
    remote = cls.__name__.endswith(REMOTE_POSTFIX) or (
        cls.__module__ == "builtins" and "\n" in text
    )
    return {
        "class": strip_remote(cls.__name__),
        "module": strip_remote(cls.__module__),
        "message": text.split("\n", 1)[0],
        "full": text,
        "mro": [f"{c.__module__}.{c.__name__}" for c in cls.__mro__],
        "remote": remote,
    }


# --- server ---------------------------------------------------------------------------


class PeerEndpoint:
    """The methods the Rust tests call; every request is printed before it runs."""

    def __init__(self, server, namespace, version):
        self.server = server
        self.target = oslo_messaging.Target(namespace=namespace, version=version)

    def _record(self, method, ctxt, args):
        emit({"method": method, "args": args, "server": self.server, "ctxt": ctxt})

    def echo(self, ctxt, data):
        self._record("echo", ctxt, {"data": data})
        return data

    def add(self, ctxt, a, b):
        self._record("add", ctxt, {"a": a, "b": b})
        return a + b

    def fail(self, ctxt, message):
        self._record("fail", ctxt, {"message": message})
        raise ValueError(message)

    def sleep(self, ctxt, seconds):
        self._record("sleep", ctxt, {"seconds": seconds})
        time.sleep(seconds)
        return seconds

    def context(self, ctxt):
        self._record("context", ctxt, {})
        return ctxt

    def relay(self, ctxt, topic, method, args, server=None):
        self._record("relay", ctxt, {"topic": topic, "method": method, "args": args})
        target = oslo_messaging.Target(topic=topic, server=server)
        client = oslo_messaging.get_rpc_client(self.transport, target, timeout=60)
        return client.call(ctxt, method, **args)


def cmd_server(args):
    conf = make_conf(args)
    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    target = oslo_messaging.Target(
        topic=args.topic, server=args.server, exchange=args.exchange
    )
    endpoint = PeerEndpoint(args.server, args.namespace, args.version)
    endpoint.transport = transport
    server = oslo_messaging.get_rpc_server(
        transport, target, [endpoint], executor=args.executor
    )
    done = stop_event(watch_stdin=True)
    server.start()
    emit("ready")
    done.wait()
    server.stop()
    server.wait()
    transport.cleanup()
    return 0


# --- call / cast ----------------------------------------------------------------------


def cmd_send(args, is_call):
    conf = make_conf(args)
    exmods = [m for m in (args.allowed_remote_exmods or "").split(",") if m]
    transport = oslo_messaging.get_rpc_transport(
        conf, url=args.url, allowed_remote_exmods=exmods
    )
    target = oslo_messaging.Target(
        topic=args.topic,
        server=args.server,
        exchange=args.exchange,
        namespace=args.namespace,
        version=args.version,
        fanout=args.fanout or None,
    )
    client = oslo_messaging.get_rpc_client(
        transport,
        target,
        timeout=args.timeout,
        call_monitor_timeout=args.call_monitor_timeout,
    )
    ctxt = json_object(args.context, "--context")
    kwargs = json_object(args.args, "ARGS_JSON")
    code = 0
    try:
        for _ in range(args.repeat):
            if is_call:
                emit({"result": client.call(ctxt, args.method, **kwargs)})
            else:
                client.cast(ctxt, args.method, **kwargs)
                emit({"sent": True})
    except oslo_messaging.MessagingTimeout as exc:
        emit({"error": describe_error(exc)})
        code = 2
    except Exception as exc:  # noqa: BLE001 - every failure is reported as JSON
        emit({"error": describe_error(exc)})
        code = 1
    transport.cleanup()
    return code


# --- notify ---------------------------------------------------------------------------


def cmd_notify(args):
    if args.exchange:
        oslo_messaging.set_transport_defaults(control_exchange=args.exchange)
    # oslo's kafka notifier writes to <topic>.<priority>[.<vhost>].
    transport, kafka = notification_transport(
        args,
        lambda conf, kafka: kafka_topics(
            conf, kafka, [args.topic], [args.priority], vhost=True
        ),
    )
    notifier = oslo_messaging.Notifier(
        transport,
        publisher_id=args.publisher_id,
        driver=args.driver,
        topics=[args.topic],
    )
    ctxt = {}
    if args.context is not None:
        from oslo_context import context as oslo_context

        ctxt = oslo_context.RequestContext.from_dict(
            json_object(args.context, "--context")
        )
    payload = json.loads(args.payload)
    send = getattr(notifier, args.priority)
    for _ in range(args.count):
        send(ctxt, args.event_type, payload)
    # For Kafka this flushes the producer: every delivery is settled afterwards.
    transport.cleanup()
    if kafka:
        problem = kafka.deliveries(args.count)
        if problem:
            emit({"error": {"class": "DeliveryFailure", "message": problem}})
            return 1
    emit({"sent": args.count})
    return 0


# --- listen ---------------------------------------------------------------------------


def check_priorities(text):
    priorities = [p.strip().lower() for p in text.split(",") if p.strip()]
    for p in priorities:
        if p not in PRIORITIES:
            raise SystemExit(f"unknown priority {p!r}; known: {', '.join(PRIORITIES)}")
    return priorities


def notification_endpoint(priorities, on_notification, event_type=None, publisher=None):
    """An endpoint with a method per priority (oslo subscribes to those alone) behind a
    NotificationFilter; each notification goes to on_notification(dict)."""

    def handler(priority):
        def handle(self, ctxt, publisher_id, event_type, payload, metadata):
            on_notification(
                {
                    "priority": priority,
                    "publisher_id": publisher_id,
                    "event_type": event_type,
                    "payload": payload,
                    "metadata": metadata,
                    "ctxt": ctxt,
                }
            )
            return oslo_messaging.NotificationResult.HANDLED

        return handle

    methods = {p: handler(p) for p in priorities}
    methods["filter_rule"] = notify_filter.NotificationFilter(
        event_type=event_type, publisher_id=publisher
    )
    return type("PeerNotificationEndpoint", (), methods)()


def cmd_listen(args):
    priorities = check_priorities(args.priorities)
    for pattern in (args.event_type_filter, args.publisher_filter):
        if pattern is not None:
            re.compile(pattern)

    transport, kafka = notification_transport(
        args, lambda conf, kafka: kafka_topics(conf, kafka, args.topic, priorities)
    )
    targets = [
        oslo_messaging.Target(topic=t, exchange=args.exchange) for t in args.topic
    ]
    done = stop_event(watch_stdin=False)
    reached = threading.Event()
    state = {"seen": 0}
    state_lock = threading.Lock()

    def on_notification(line):
        emit(line)
        with state_lock:
            state["seen"] += 1
            if args.count is not None and state["seen"] >= args.count:
                reached.set()
                done.set()

    endpoint = notification_endpoint(
        priorities, on_notification, args.event_type_filter, args.publisher_filter
    )
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [endpoint], executor="threading", pool=args.pool
    )
    # For Kafka this subscribes and polls for 5 s (oslo's KafkaListener).
    listener.start()
    if kafka:
        kafka.wait_consuming()
    emit("ready")
    finished = done.wait(args.timeout)
    code = 0 if finished or reached.is_set() else 2
    if code == 2:
        emit({"timeout": args.timeout, "seen": state["seen"]})
    listener.stop()
    listener.wait()
    transport.cleanup()
    return code


# --- service (hybrid: RPC on one transport, notifications on another) ----------------


class ServiceEndpoint(PeerEndpoint):
    """The server's methods plus emit, which sends a notification."""

    def __init__(self, server, notifier):
        super().__init__(server, None, None)
        self.notifier = notifier

    def emit(self, ctxt, event_type, payload, priority="info"):
        self._record(
            "emit",
            ctxt,
            {"event_type": event_type, "payload": payload, "priority": priority},
        )
        from oslo_context import context as oslo_context

        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        send = getattr(self.notifier, priority)
        send(oslo_context.RequestContext.from_dict(ctxt), event_type, payload)
        return {"emitted": event_type}


def run_command(line, rpc_transport, clients):
    """One stdin command of `service`: an RPC call, answered on stdout."""
    try:
        command = json.loads(line)
        key = (command["topic"], command.get("server"))
        if key not in clients:
            clients[key] = oslo_messaging.get_rpc_client(
                rpc_transport,
                oslo_messaging.Target(topic=key[0], server=key[1]),
            )
        client = clients[key].prepare(timeout=command.get("timeout", 30))
        result = client.call(
            command.get("context") or {}, command["call"], **(command.get("args") or {})
        )
        emit({"reply": result})
    except Exception as exc:  # noqa: BLE001 - every failure is reported as JSON
        emit({"reply_error": describe_error(exc)})


def cmd_service(args):
    rpc_url, kafka = args.url, None
    notify_url = args.notify_url
    if is_kafka(notify_url):
        kafka = Kafka(notify_url)
        notify_url = kafka.url
    conf = make_conf(args)
    rpc_transport = oslo_messaging.get_rpc_transport(conf, url=rpc_url)
    notify_transport = oslo_messaging.get_notification_transport(conf, url=notify_url)
    section = conf.oslo_messaging_notifications
    effective = notify_url or section.transport_url or conf.transport_url
    notify_topics = args.notify_topic or list(section.topics)
    listen_topics = args.listen_topic or list(section.topics)
    if is_kafka(effective):
        # oslo's kafka driver makes its clients lazily: installing now is early enough.
        kafka = kafka or Kafka(effective)
        kafka.install()
        kafka.ensure_topics(
            conf,
            kafka_topics(conf, kafka, listen_topics, PRIORITIES)
            + kafka_topics(conf, kafka, notify_topics, PRIORITIES, vhost=True),
        )
    notifier = oslo_messaging.Notifier(
        notify_transport,
        publisher_id=args.publisher_id or args.server,
        driver=args.driver,
        topics=args.notify_topic or None,
    )
    server = oslo_messaging.get_rpc_server(
        rpc_transport,
        oslo_messaging.Target(topic=args.topic, server=args.server),
        [ServiceEndpoint(args.server, notifier)],
        executor="threading",
    )
    endpoint = notification_endpoint(
        PRIORITIES, lambda line: emit({"notification": line})
    )
    listener = oslo_messaging.get_notification_listener(
        notify_transport,
        [oslo_messaging.Target(topic=t) for t in listen_topics],
        [endpoint],
        executor="threading",
        pool=args.pool,
    )
    done = stop_event(watch_stdin=False)
    server.start()
    listener.start()
    if kafka:
        kafka.wait_consuming()
    emit("ready")

    def read_commands():
        clients = {}
        try:
            for line in sys.stdin:
                if line.strip():
                    run_command(line, rpc_transport, clients)
        except (OSError, ValueError):
            pass
        done.set()

    threading.Thread(target=read_commands, daemon=True).start()
    done.wait()
    listener.stop()
    server.stop()
    listener.wait()
    server.wait()
    notify_transport.cleanup()
    rpc_transport.cleanup()
    return 0


# --- raw (Kafka records as they are on the wire) -------------------------------------


def cmd_raw(args):
    import uuid

    from confluent_kafka import Consumer

    kafka = Kafka(args.url)
    servers, _ = kafka.bootstrap(make_conf(args))
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"oslo-peer-raw-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": kafka.fetch_wait_ms,
        }
    )
    consumer.subscribe(args.topic)
    deadline = time.monotonic() + args.timeout
    seen = 0
    code = 0
    while seen < args.count:
        left = deadline - time.monotonic()
        if left <= 0:
            emit({"timeout": args.timeout, "seen": seen})
            code = 2
            break
        record = consumer.poll(min(left, 1.0))
        if record is None:
            continue
        if record.error():
            logging.warning("kafka: %s", record.error())
            continue
        raw = record.value()
        text = raw.decode("utf-8", "replace") if raw is not None else None
        try:
            value = json.loads(text) if text is not None else None
        except ValueError:
            value = text
        key = record.key()
        emit(
            {
                "topic": record.topic(),
                "partition": record.partition(),
                "key": key.decode("utf-8", "replace") if key is not None else None,
                "value": value,
            }
        )
        seen += 1
    consumer.close()
    return code


# --- tracing --------------------------------------------------------------------------


def install_tracing():
    """OpenTelemetry as an instrumented OpenStack service has it: a tracer provider, the
    oslo.messaging instrumentation (W3C trace context in the message context), and an
    in-memory exporter that also prints every finished span."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.oslo_messaging import OsloMessagingInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    class PrintingExporter(InMemorySpanExporter):
        def export(self, spans):
            result = super().export(spans)
            for span in spans:
                parent = span.parent
                emit(
                    {
                        "span": {
                            "name": span.name,
                            "kind": span.kind.name,
                            "trace_id": format(span.context.trace_id, "032x"),
                            "span_id": format(span.context.span_id, "016x"),
                            "parent_span_id": (
                                format(parent.span_id, "016x") if parent else None
                            ),
                            "attributes": dict(span.attributes or {}),
                        }
                    }
                )
            return result

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PrintingExporter()))
    trace.set_tracer_provider(provider)
    OsloMessagingInstrumentor().instrument(tracer_provider=provider)


# --- command line ---------------------------------------------------------------------


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True, help="oslo transport URL")
    common.add_argument("--config-file", help="oslo configuration file (INI)")
    common.add_argument("--debug", action="store_true", help="oslo logs at DEBUG")
    common.add_argument(
        "--otel", action="store_true", help="trace with OpenTelemetry, print spans"
    )

    top = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = top.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", parents=[common], help="an RPC server")
    server.add_argument("--topic", required=True)
    server.add_argument("--server", required=True)
    server.add_argument("--exchange")
    server.add_argument("--namespace")
    server.add_argument("--version")
    server.add_argument("--executor", default="threading", choices=["threading"])

    for name in ("call", "cast"):
        send = sub.add_parser(name, parents=[common], help=f"an RPC {name}")
        send.add_argument("--topic", required=True)
        send.add_argument("--server")
        send.add_argument("--exchange")
        send.add_argument("--namespace")
        send.add_argument("--version")
        send.add_argument("--timeout", type=float)
        send.add_argument("--call-monitor-timeout", type=float)
        send.add_argument("--fanout", action="store_true")
        send.add_argument("--context", default="{}")
        send.add_argument("--repeat", type=int, default=1)
        send.add_argument("--allowed-remote-exmods", default="")
        send.add_argument("method")
        send.add_argument("args", nargs="?", default="{}")

    notify = sub.add_parser("notify", parents=[common], help="send notifications")
    notify.add_argument("--topic", required=True)
    notify.add_argument("--publisher-id", required=True)
    notify.add_argument(
        "--driver", required=True, choices=["messaging", "messagingv2"]
    )
    notify.add_argument("--priority", required=True, choices=PRIORITIES)
    notify.add_argument("--exchange")
    notify.add_argument("--context")
    notify.add_argument("--count", type=int, default=1)
    notify.add_argument("event_type")
    notify.add_argument("payload")

    listen = sub.add_parser("listen", parents=[common], help="a notification listener")
    listen.add_argument("--topic", required=True, action="append")
    listen.add_argument("--exchange")
    listen.add_argument("--pool")
    listen.add_argument("--count", type=int)
    listen.add_argument("--timeout", type=float)
    listen.add_argument("--priorities", default=",".join(PRIORITIES))
    listen.add_argument("--event-type-filter")
    listen.add_argument("--publisher-filter")

    raw = sub.add_parser("raw", parents=[common], help="Kafka records as they are")
    raw.add_argument("--topic", required=True, action="append")
    raw.add_argument("--count", type=int, required=True)
    raw.add_argument("--timeout", type=float, default=60.0)

    service = sub.add_parser(
        "service", help="RPC server, notifier, listener and client on two transports"
    )
    service.add_argument("--config-file", help="oslo configuration file (INI)")
    service.add_argument("--url", help="RPC transport URL ([DEFAULT] transport_url)")
    service.add_argument(
        "--notify-url",
        help="notification transport URL ([oslo_messaging_notifications] transport_url)",
    )
    service.add_argument("--debug", action="store_true", help="oslo logs at DEBUG")
    service.add_argument("--topic", required=True)
    service.add_argument("--server", required=True)
    service.add_argument("--publisher-id")
    service.add_argument("--driver", choices=["messaging", "messagingv2"])
    service.add_argument("--notify-topic", action="append")
    service.add_argument("--listen-topic", action="append")
    service.add_argument("--pool")
    return top


def main():
    args = parser().parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "otel", False):
        install_tracing()
    commands = {
        "server": cmd_server,
        "call": lambda a: cmd_send(a, is_call=True),
        "cast": lambda a: cmd_send(a, is_call=False),
        "notify": cmd_notify,
        "listen": cmd_listen,
        "service": cmd_service,
        "raw": cmd_raw,
    }
    try:
        code = commands[args.command](args)
    except SystemExit as exc:
        # A refusal (bad argument, a Kafka topic or listener that is not there): the
        # reason goes to stderr, and os._exit below does not wait for oslo's threads.
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
            code = 3
        else:
            code = exc.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    # oslo and kombu may leave non-daemon threads behind; the answer is already out.
    os._exit(code)


if __name__ == "__main__":
    main()
