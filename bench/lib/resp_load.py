"""Sends one Redis (RESP) command per distinct key, pipelined, and counts
the replies: how bench/run puts exactly N keys into a store to measure its
resident bytes per key.

    python3 resp_load.py PORT COUNT ARG...

Every ARG holding `__KEY__` gets it replaced by the key number, 7 digits
(0000000 to COUNT-1), so `user-__KEY__` names 12-byte keys like the ones
crates/sluice/examples/memory_per_key.rs uses. Prints one JSON object:
{"sent": N, "errors": E, "first_error": "..."|null, "seconds": S}. Works
against anything that speaks RESP and answers each command with one reply
(redis-server, throttlecrab-server's Redis transport).
"""

import json
import socket
import sys
import time

BATCH = 2000


def encode_template(args):
    """The RESP bytes of the command as a %-format with one %07d per key."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode()
        length = len(raw.replace(b"__KEY__", b"0000000"))
        raw = raw.replace(b"%", b"%%").replace(b"__KEY__", b"%(k)07d")
        out.append(b"$%d\r\n" % length + raw + b"\r\n")
    return b"".join(out)


class Replies:
    """Counts complete top-level RESP replies in a stream of bytes."""

    def __init__(self):
        self.buffer = b""
        self.pending = []  # elements still expected by the open arrays
        self.bulk = None  # bytes still expected of a bulk string (with CRLF)
        self.complete = 0
        self.errors = 0
        self.first_error = None

    def _done_one(self):
        while self.pending:
            self.pending[-1] -= 1
            if self.pending[-1] > 0:
                return
            self.pending.pop()
        self.complete += 1

    def feed(self, data):
        buf = self.buffer + data
        pos = 0
        n = len(buf)
        while pos < n:
            if self.bulk is not None:
                if n - pos < self.bulk:
                    break
                pos += self.bulk
                self.bulk = None
                self._done_one()
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            kind = buf[pos : pos + 1]
            line = buf[pos + 1 : end]
            pos = end + 2
            if kind == b"*":
                count = int(line)
                if count > 0:
                    self.pending.append(count)
                else:
                    self._done_one()
            elif kind == b"$":
                length = int(line)
                if length < 0:
                    self._done_one()
                else:
                    self.bulk = length + 2
            elif kind == b"-":
                if not self.pending:
                    self.errors += 1
                    if self.first_error is None:
                        self.first_error = line.decode(errors="replace")
                self._done_one()
            else:  # ':' '+' and RESP3 scalars
                self._done_one()
        self.buffer = buf[pos:]


def main():
    port, count, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    template = encode_template(args)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    replies = Replies()
    started = time.monotonic()
    sent = 0
    while sent < count:
        upto = min(count, sent + BATCH)
        sock.sendall(b"".join(template % {b"k": k} for k in range(sent, upto)))
        sent = upto
        # Keep one batch in flight while the next one is formatted.
        wait_for = sent - BATCH if sent < count else sent
        while replies.complete < wait_for:
            data = sock.recv(1 << 20)
            if not data:
                raise SystemExit("the server closed the connection")
            replies.feed(data)
    sock.close()
    print(
        json.dumps(
            {
                "sent": sent,
                "errors": replies.errors,
                "first_error": replies.first_error,
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
