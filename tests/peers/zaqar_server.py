"""Serves Zaqar's v2 API for the tests: zaqar-server's application in a threaded WSGI
server with a deep accept queue.

zaqar-server serves one request at a time with an accept queue of 5: with a dozen
pollers the kernel drops connection attempts, each costing the client a one-second SYN
retry. Production runs Zaqar under a threaded or multi-process WSGI container; this
does the same with the standard library.

    python zaqar_server.py --config-file zaqar.conf
"""

import socketserver
import sys
from wsgiref import simple_server

from oslo_config import cfg
from oslo_log import log

from zaqar import bootstrap


class ThreadedServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        # One line per request would fill the log; failures are logged by Zaqar.
        pass


def main():
    conf = cfg.CONF
    log.register_options(conf)
    conf(args=sys.argv[1:], project="zaqar", prog="zaqar-server")
    log.setup(conf, "zaqar")
    boot = bootstrap.Bootstrap(conf)
    app = boot.transport.app
    wsgi = conf["drivers:transport:wsgi"]
    httpd = simple_server.make_server(wsgi.bind, wsgi.port, app, ThreadedServer, QuietHandler)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
