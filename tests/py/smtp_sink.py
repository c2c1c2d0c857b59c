"""A real SMTP server (aiosmtpd) on loopback for the mail tests: it accepts every message,
optionally only after AUTH with one login and password and only after STARTTLS, and writes each
one, decoded, as NNNN.json into a directory:
{"from", "to", "subject", "body", "login", "tls"}.

    python smtp_sink.py --port 2525 --dir /tmp/mail [--login u --password p] [--cert c --key k]

Prints {"ready": true} once it listens; stops on SIGTERM.
"""

import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        login = getattr(session.auth_data, "login", None)
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg.get("subject", "")),
            "body": part.get_content() if part is not None else "",
            "login": login.decode() if isinstance(login, bytes) else login,
            "tls": session.ssl is not None,
        }
        with self.lock:
            self.count += 1
            name = os.path.join(self.directory, f"{self.count:04}.json")
        # Written whole, then renamed: a reader never sees half a message.
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--login")
    ap.add_argument("--password")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.login and auth_data.password.decode() == a.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    controller = Controller(
        Sink(a.dir),
        hostname="127.0.0.1",
        port=a.port,
        authenticator=authenticator if a.login else None,
        auth_required=bool(a.login),
        auth_require_tls=tls is not None,
        tls_context=tls,
        require_starttls=tls is not None,
    )
    controller.start()
    print(json.dumps({"ready": True}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
