#!/usr/bin/python3
"""A small Mailpit: `mailpit` serves, `mailpit readyz` checks it is up."""

import email
import email.policy
import json
import os
import signal
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

messages = []  # newest first, as Mailpit lists them
lock = threading.Lock()


def addresses(values):
    return [{"Name": name, "Address": addr} for name, addr in getaddresses(values)]


class Inbox:
    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        sender = addresses([parsed.get("From", envelope.mail_from)])
        message = {
            "ID": uuid.uuid4().hex,
            "MessageID": parsed.get("Message-ID", ""),
            "From": sender[0] if sender else {"Name": "", "Address": ""},
            # Envelope recipients, so Bcc'd ones are listed too (as Mailpit).
            "To": addresses(parsed.get_all("To", [])),
            "Cc": addresses(parsed.get_all("Cc", [])),
            "Bcc": [
                {"Name": "", "Address": rcpt}
                for rcpt in envelope.rcpt_tos
                if rcpt not in str(parsed.get("To", "")) + str(parsed.get("Cc", ""))
            ],
            "Subject": str(parsed.get("Subject", "")),
            "Created": datetime.now(UTC).isoformat(),
            "Size": len(envelope.content),
        }
        with lock:
            messages.insert(0, message)
        return "250 Message accepted"


class Api(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path in ("/readyz", "/livez"):
            return self.answer(200, b"")
        if url.path == "/api/v1/messages":
            query = parse_qs(url.query)
            start = int(query.get("start", ["0"])[0])
            limit = int(query.get("limit", ["50"])[0])
            with lock:
                page = messages[start : start + limit]
                total = len(messages)
            return self.answer(
                200,
                {
                    "total": total,
                    "unread": total,
                    "count": len(page),
                    "messages_count": total,
                    "start": start,
                    "tags": [],
                    "messages": page,
                },
            )
        return self.answer(404, {"error": "not found"})

    def do_DELETE(self):
        if urlsplit(self.path).path == "/api/v1/messages":
            with lock:
                messages.clear()
            return self.answer(200, b"ok")
        return self.answer(404, {"error": "not found"})

    def log_message(self, format, *args):
        pass


def main():
    if sys.argv[1:2] == ["readyz"]:
        with urllib.request.urlopen("http://127.0.0.1:8025/readyz", timeout=3):
            return
    # PID 1 in its container: SIGTERM (docker stop) must end it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Mailpit's own variable for its SMTP address (the server test puts it
    # on 127.0.0.1:25, as a relay on that server).
    host, _, port = os.environ.get("MP_SMTP_BIND_ADDR", "0.0.0.0:1025").rpartition(":")
    smtp = Controller(Inbox(), hostname=host, port=int(port))
    smtp.start()
    print(f"[smtpd] accepting SMTP connections on {host}:{port}", flush=True)
    print("[http] accessible via http://0.0.0.0:8025/", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()


if __name__ == "__main__":
    main()
