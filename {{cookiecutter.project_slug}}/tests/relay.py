"""A TCP relay that a test cuts off, to take a server away from a worker."""

import contextlib
import socket
import threading
from urllib.parse import urlsplit

from tests.conftest import free_port


class Relay:
    """A TCP relay to a server (the database, a broker) that can be cut off:
    while it is cut, the connections through it are closed and new ones
    refused, as a worker sees a server that stopped or a network cut.

    ``url`` is the server's address; ``relay.url`` is the same address
    through the relay."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.target = (parts.hostname, parts.port)
        self.port = free_port()
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@" if credentials else ""
        self.url = parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}").geturl()
        self.sockets = []
        self.restore()

    def restore(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=[self.listener], daemon=True).start()

    def cut(self):
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in [(client, upstream), (upstream, client)]:
                threading.Thread(
                    target=self._pipe, args=[source, sink], daemon=True
                ).start()

    @staticmethod
    def _pipe(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
