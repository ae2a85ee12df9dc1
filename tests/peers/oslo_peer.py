"""The Python side of the interop tests: the real oslo.messaging as a command-line peer.

Run with the virtualenv that scripts/services builds (``.venv/bin/python``). Every
subcommand takes ``--url URL`` (an oslo transport URL, e.g.
``rabbit://guest:guest@127.0.0.1:5672/``); ``--debug`` sends oslo's logs to stderr at
DEBUG level (default WARNING); ``--config-file PATH`` loads oslo options (for example
``[oslo_messaging_rabbit]``) from an INI file. Output on stdout is one JSON object per
line, except the literal line ``ready``; every line is flushed at once.

server --url URL --topic T --server S [--exchange E] [--namespace N] [--version V]
       [--executor threading]
    An RPC server on Target(topic=T, server=S, exchange=E) with one endpoint whose
    target is Target(namespace=N, version=V) and whose methods are:
        echo(ctxt, data) -> data
        add(ctxt, a, b) -> a + b
        fail(ctxt, message) raises ValueError(message)
        sleep(ctxt, seconds) sleeps, then returns seconds
        context(ctxt) -> the ctxt dict it received
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


def make_conf(args):
    """The global cfg.CONF: oslo.messaging registers some options (tracing) only there."""
    argv = ["--config-file", args.config_file] if args.config_file else []
    cfg.CONF(argv, project="oslo_peer", default_config_files=[])
    return cfg.CONF


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


def cmd_server(args):
    conf = make_conf(args)
    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    target = oslo_messaging.Target(
        topic=args.topic, server=args.server, exchange=args.exchange
    )
    endpoint = PeerEndpoint(args.server, args.namespace, args.version)
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
    conf = make_conf(args)
    transport = oslo_messaging.get_notification_transport(conf, url=args.url)
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
    emit({"sent": args.count})
    transport.cleanup()
    return 0


# --- listen ---------------------------------------------------------------------------


def cmd_listen(args):
    priorities = [p.strip().lower() for p in args.priorities.split(",") if p.strip()]
    for p in priorities:
        if p not in PRIORITIES:
            raise SystemExit(f"unknown priority {p!r}; known: {', '.join(PRIORITIES)}")
    for pattern in (args.event_type_filter, args.publisher_filter):
        if pattern is not None:
            re.compile(pattern)

    conf = make_conf(args)
    transport = oslo_messaging.get_notification_transport(conf, url=args.url)
    targets = [
        oslo_messaging.Target(topic=t, exchange=args.exchange) for t in args.topic
    ]
    done = stop_event(watch_stdin=False)
    reached = threading.Event()
    state = {"seen": 0}
    state_lock = threading.Lock()

    def handler(priority):
        def handle(self, ctxt, publisher_id, event_type, payload, metadata):
            emit(
                {
                    "priority": priority,
                    "publisher_id": publisher_id,
                    "event_type": event_type,
                    "payload": payload,
                    "metadata": metadata,
                    "ctxt": ctxt,
                }
            )
            with state_lock:
                state["seen"] += 1
                if args.count is not None and state["seen"] >= args.count:
                    reached.set()
                    done.set()
            return oslo_messaging.NotificationResult.HANDLED

        return handle

    # Only the chosen priorities get methods: oslo subscribes to those alone.
    methods = {p: handler(p) for p in priorities}
    methods["filter_rule"] = notify_filter.NotificationFilter(
        event_type=args.event_type_filter, publisher_id=args.publisher_filter
    )
    endpoint = type("PeerNotificationEndpoint", (), methods)()
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [endpoint], executor="threading", pool=args.pool
    )
    listener.start()
    emit("ready")
    finished = done.wait(args.timeout)
    code = 0 if finished or reached.is_set() else 2
    if code == 2:
        emit({"timeout": args.timeout, "seen": state["seen"]})
    listener.stop()
    listener.wait()
    transport.cleanup()
    return code


# --- command line ---------------------------------------------------------------------


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True, help="oslo transport URL")
    common.add_argument("--config-file", help="oslo configuration file (INI)")
    common.add_argument("--debug", action="store_true", help="oslo logs at DEBUG")

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
    return top


def main():
    args = parser().parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "server":
        code = cmd_server(args)
    elif args.command == "call":
        code = cmd_send(args, is_call=True)
    elif args.command == "cast":
        code = cmd_send(args, is_call=False)
    elif args.command == "notify":
        code = cmd_notify(args)
    else:
        code = cmd_listen(args)
    sys.stdout.flush()
    sys.stderr.flush()
    # oslo and kombu may leave non-daemon threads behind; the answer is already out.
    os._exit(code)


if __name__ == "__main__":
    main()
