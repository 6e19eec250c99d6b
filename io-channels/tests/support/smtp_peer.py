"""A loopback SMTP peer for io's email channel tests, on aiosmtpd (PyPI).

Usage: smtp_peer.py PORT OUTDIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASSWORD]

With --auth, every session must authenticate (AUTH PLAIN or LOGIN) as USER with PASSWORD
before MAIL FROM; on a plain connection too (loopback tests of a client's credentials).

Prints "READY" once it accepts connections. Each accepted message is written, byte for byte
as received in DATA, to OUTDIR/<n>.eml, with the envelope in OUTDIR/<n>.rcpt. The recipient's
local part chooses the answer to RCPT TO, so a test can ask for each SMTP outcome:
  busy@...    451 4.3.0 (transient)
  nobody@...  550 5.1.1 (no such mailbox)
  gone@...    551 5.1.6 (user not local)
  badbox@...  553 5.1.3 (mailbox name not allowed)
  reject@...  554 5.7.1 (policy: permanent)
  slow@...    no answer for 60 s (the client times out)
anything else is accepted with 250.
"""
import asyncio
import os
import socket
import ssl
import sys
import logging
import warnings

# aiosmtpd logs a warning about its own use of a deprecated session field on every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)
# --auth on a plain connection is for loopback tests only; aiosmtpd warns about it every time.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

ANSWERS = {
    "busy": "451 4.3.0 Try again later",
    "nobody": "550 5.1.1 No such user here",
    "gone": "551 5.1.6 User not local",
    "badbox": "553 5.1.3 Mailbox name not allowed",
    "reject": "554 5.7.1 Rejected by policy",
}


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "slow":
            await asyncio.sleep(60)
        if local in ANSWERS:
            return ANSWERS[local]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.outdir, "%06d" % self.count)
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(name + ".rcpt", "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        os.rename(name + ".tmp", name + ".eml")
        return "250 2.0.0 Ok: queued as io%06d" % self.count


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then answers 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False)

    return authenticate


def main():
    args = sys.argv[1:]
    auth = None
    if "--auth" in args:
        at = args.index("--auth")
        auth = args[at + 1].split(":", 1)
        del args[at : at + 2]
    port = int(args[0])
    outdir = args[1]
    mode = args[2] if len(args) > 2 else "--plain"
    context = None
    if mode in ("--starttls", "--tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args[3], args[4])
    kwargs = dict(hostname="127.0.0.1", port=port, decode_data=False)
    if auth:
        kwargs.update(
            authenticator=authenticator_for(*auth),
            auth_required=True,
            auth_require_tls=mode != "--plain",
        )
    if mode == "--starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif mode == "--tls":
        kwargs.update(ssl_context=context, server_hostname="localhost")
    controller = Controller(Handler(outdir), **kwargs)
    if mode == "--tls":
        # Controller's readiness probe wraps its socket with the server's own context, which
        # cannot act as a client: probe with a client context instead (verification is the
        # Rust client's business, not the probe's).
        def trigger():
            probe = ssl.create_default_context()
            probe.check_hostname = False
            probe.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", port), 1.0) as raw:
                with probe.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.recv(1024)

        controller._trigger_server = trigger
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
