"""Serves Keystone's API for the tests: keystone's WSGI application (what
keystone.wsgi.api gives a WSGI container) in a threaded WSGI server with a deep accept
queue, as tests/peers/zaqar_server.py serves Zaqar.

Keystone ships no server of its own (production runs it under uWSGI or mod_wsgi); the
standard library's serves one request at a time, and Zaqar's token validations, the
driver's token requests and the tests' would queue behind each other.

    python keystone_server.py --config-file keystone.conf --bind 127.0.0.1 --port 5000
"""

import argparse
import os
import socketserver
import sys
from wsgiref import simple_server


class ThreadedServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        # One line per request would fill the log; failures are logged by Keystone.
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    # Where keystone's application reads its configuration from (keystone.server.flask
    # core._get_config_files): a directory and the files in it.
    path = os.path.abspath(args.config_file)
    os.environ["OS_KEYSTONE_CONFIG_DIR"] = os.path.dirname(path)
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = os.path.basename(path)
    # Keystone parses the command line too (oslo.config), and knows none of the above.
    sys.argv[1:] = []

    from keystone.server import wsgi

    app = wsgi.initialize_public_application()
    httpd = simple_server.make_server(args.bind, args.port, app, ThreadedServer, QuietHandler)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
