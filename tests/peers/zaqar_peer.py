#!/usr/bin/env python3
"""The Python side of the Zaqar interop tests (tests/interop_zaqar.rs).

It speaks to the real Zaqar server with the real python-zaqarclient (4.7.0, installed
with the server into <repo>/.venv-zaqar by `scripts/services zaqar`), without Keystone:
the project is the `X-Project-ID` header (zaqarclient's `noauth` backend), and
zaqarclient sends a `Client-ID` of its own.

Subcommands:

  post  --project P --queue Q --event E --payload JSON [--publisher-id ID]
        [--context JSON] [--ttl S] [--url URL]
      Posts one notification body to queue Q, built as oslo.messaging's `messagingv2`
      notifier builds it over the AMQP-style drivers: the inner message (`message_id`
      a uuid4, `publisher_id`, `event_type`, `priority` "INFO", `payload`, `timestamp`
      as `str(datetime.utcnow())`, the context flattened into `_context_<key>` keys and
      a `_unique_id`) serialised into the 2.0 envelope
      {"oslo.version": "2.0", "oslo.message": "<JSON of the inner message>"}.
      Prints {"posted": <message_id>, "queue": Q, "zaqar_ids": [...]}.

  claim --project P --queue Q --count N --timeout S [--url URL]
      Claims messages from Q until N arrived or S seconds passed, deletes each with its
      claim, and prints one JSON line per message: the decoded inner oslo message. Exits
      2 on timeout (after printing what did arrive) and 3 when a body is not a 2.0
      envelope.

The server is `--url` (default: ZAQAR_URL with zaqar:// made http://, else
http://127.0.0.1:8888).
"""

import argparse
import datetime
import json
import os
import sys
import time
import uuid

from zaqarclient.queues.v2 import client as zaqar_client


def default_url():
    url = os.environ.get("ZAQAR_URL", "http://127.0.0.1:8888").rstrip("/")
    for scheme in ("zaqar+https://", "zaqar+http://", "zaqar://"):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            return ("https://" if scheme == "zaqar+https://" else "http://") + rest
    return url


def connect(url, project):
    return zaqar_client.Client(
        url,
        version=2,
        conf={"auth_opts": {"backend": "noauth",
                            "options": {"os_project_id": project}}},
    )


def utcnow_str():
    # oslo: str(timeutils.utcnow()), always with the microseconds.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f")


def oslo_notification(publisher_id, event_type, payload, context):
    """The body oslo.messaging's messagingv2 notifier sends (AMQP-style drivers)."""
    inner = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": utcnow_str(),
    }
    # amqpdriver._send: _add_unique_id, then pack_context (flattened keys).
    inner["_unique_id"] = uuid.uuid4().hex
    for key, value in context.items():
        inner["_context_%s" % key] = value
    return inner, {"oslo.version": "2.0", "oslo.message": json.dumps(inner)}


def post(args):
    payload = json.loads(args.payload)
    context = json.loads(args.context)
    inner, body = oslo_notification(args.publisher_id, args.event, payload, context)
    queue = connect(args.url, args.project).queue(args.queue)
    result = queue.post([{"body": body, "ttl": args.ttl}])
    ids = [r.rsplit("/", 1)[-1] for r in (result or {}).get("resources", [])]
    print(json.dumps({"posted": inner["message_id"], "queue": args.queue,
                      "zaqar_ids": ids}), flush=True)
    return 0


def claim(args):
    queue = connect(args.url, args.project).queue(args.queue, auto_create=False)
    deadline = time.monotonic() + args.timeout
    got = 0
    while got < args.count:
        batch = queue.claim(ttl=60, grace=60, limit=min(args.count - got, 20))
        messages = list(batch)
        for message in messages:
            body = message.body
            message.delete()
            if not (isinstance(body, dict) and body.get("oslo.version") == "2.0"
                    and isinstance(body.get("oslo.message"), str)):
                print("not an oslo 2.0 envelope: %r" % (body,), file=sys.stderr)
                print(json.dumps({"not_an_envelope": body}), flush=True)
                return 3
            print(json.dumps(json.loads(body["oslo.message"])), flush=True)
            got += 1
        if got >= args.count:
            break
        if time.monotonic() >= deadline:
            print("timeout: %d of %d messages on %s within %ss"
                  % (got, args.count, args.queue, args.timeout), file=sys.stderr)
            return 2
        if not messages:
            time.sleep(0.05)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("post", help="post one oslo messagingv2 notification")
    p.add_argument("--url", default=default_url())
    p.add_argument("--project", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--event", required=True)
    p.add_argument("--payload", required=True, help="JSON")
    p.add_argument("--publisher-id", default="compute.zaqar-py1")
    p.add_argument("--context", default='{"user": "alice", "request_id": "req-zaqar-py"}',
                   help="JSON object, flattened into _context_<key>")
    p.add_argument("--ttl", type=int, default=300)
    p.set_defaults(run=post)

    c = sub.add_parser("claim", help="claim, print and delete N notifications")
    c.add_argument("--url", default=default_url())
    c.add_argument("--project", required=True)
    c.add_argument("--queue", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, required=True)
    c.set_defaults(run=claim)

    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
