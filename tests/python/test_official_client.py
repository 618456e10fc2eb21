"""The official PyPI `convex` client against the syncspec reference server.

`convex.ConvexClient` (the Rust client underneath, over the sync socket) and
`convex.http_client.ConvexHttpClient` (the HTTP API) each run against their
own `syncspec serve --listen 127.0.0.1:0 --test-hooks ...` per test, started
from `$SYNCSPEC_BIN`: queries, mutations, a subscription seeing another
client's write, user errors with their data, the `messages:streamReply` action
(its result, a subscriber seeing the reply grow by whole tokens, its failure
as a ConvexError whose committed tokens stay), identity from HS256 tokens minted
here with the standard library, a forged token refused, and an idle client
outliving the server's idle timeout on one socket (counted with the server's
`Stats` test hook), with a negative control that turns the server's pings off.

Stdlib `unittest` only. Every blocking call runs under a deadline (SIGALRM:
the client's Rust core checks for signals every second while it waits), and
every server is killed in tearDown.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest
from typing import Any, Callable, Dict, List, Optional

try:
    from convex import ConvexClient, ConvexError, ConvexInt64
    from convex.http_client import ConvexHttpClient
except ImportError as e:  # pragma: no cover - the runner checks this first
    raise ImportError(
        f"the PyPI `convex` package is needed ({e}); install it with "
        "`python3 -m pip install -r tests/python/requirements.txt`"
    ) from e

HERE = os.path.dirname(os.path.abspath(__file__))
STEP_S = 10  # deadline for any one wait
START_S = 20  # deadline for a server to print its address
ISSUER = "https://syncspec-python-tests.invalid"
SECRET = secrets.token_hex(24)
KEEPALIVE = ["--ping-interval", "200ms", "--idle-timeout", "1s"]
IDLE_S = 3.0  # three idle timeouts
VERBOSE = bool(os.environ.get("SYNCSPEC_VERBOSE"))


# ---------------------------------------------------------------------------
# Deadlines.


class DeadlineExceeded(Exception):
    """A wait took longer than its deadline."""


def within(seconds: float, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Calls `fn(*args)` and raises DeadlineExceeded if it has not returned
    within `seconds` (plus up to a second: the client's blocking calls look
    at pending signals once a second)."""

    fired: List[bool] = []

    def expire(_signum: int, _frame: Any) -> None:
        fired.append(True)
        raise DeadlineExceeded(f"timed out after {seconds} s: {what}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    except Exception as e:
        # Some of the client's calls turn the handler's exception into a
        # plain Exception carrying its message; name it for what it is.
        if fired and not isinstance(e, DeadlineExceeded):
            raise DeadlineExceeded(f"timed out after {seconds} s: {what}") from e
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def next_matching(sub: Any, pred: Callable[[Any], bool], what: str, seconds: float = STEP_S) -> Any:
    """The first result of a subscription that satisfies `pred`, checking
    every push until the deadline; the failure shows what was pushed."""
    seen: List[Any] = []

    def wait() -> Any:
        while True:
            value = next(sub)
            seen.append(value)
            if pred(value):
                return value

    try:
        return within(seconds, what, wait)
    except DeadlineExceeded as e:
        raise AssertionError(f"{e}; pushed so far: {seen!r}") from None


# ---------------------------------------------------------------------------
# Tokens.


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_hs256(secret: str, claims: Dict[str, Any]) -> str:
    """An HS256 JWT over `claims`, signed with `secret` (what `syncspec serve
    --auth-secret` verifies), built with hmac, hashlib and base64 alone."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def token_for(secret: str, sub: str, name: Optional[str] = None) -> str:
    """A token for `sub` (with `name` if given), valid for an hour."""
    now = int(time.time())
    claims: Dict[str, Any] = {"sub": sub, "iss": ISSUER, "iat": now, "exp": now + 3600}
    if name is not None:
        claims["name"] = name
    return mint_hs256(secret, claims)


def identity(sub: str, name: Optional[str] = None) -> Dict[str, Any]:
    """What `users:me` returns for a token from `token_for`."""
    me = {"subject": sub, "issuer": ISSUER, "tokenIdentifier": f"{ISSUER}|{sub}"}
    if name is not None:
        me["name"] = name
    return me


def fresh(prefix: str) -> str:
    """A fresh name, so no two tests share rows."""
    return f"{prefix}-{secrets.token_hex(6)}"


def reply_prefixes(text: str) -> List[str]:
    """Every body a `messages:streamReply` of `text` may show, in order: its
    whole-token prefixes (tokens split after each space)."""
    tokens = re.findall(r"[^ ]* |[^ ]+$", text)
    return ["".join(tokens[:i]) for i in range(len(tokens) + 1)]


# ---------------------------------------------------------------------------
# The server process.


def server_binary() -> str:
    path = os.environ.get("SYNCSPEC_BIN") or os.path.join(HERE, "../../target/debug/syncspec")
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise AssertionError(
            f"syncspec binary not found at {path}: build it with `cargo build -p syncspec` "
            "or point SYNCSPEC_BIN at a built binary"
        )
    return path


class Server:
    """`syncspec serve --listen 127.0.0.1:0 --test-hooks *args`, with a
    bounded tail of its output for failure messages."""

    def __init__(self, args: List[str]):
        self.proc = subprocess.Popen(
            [server_binary(), "serve", "--listen", "127.0.0.1:0", "--test-hooks", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.tail: collections.deque = collections.deque(maxlen=200)
        first_line: List[str] = []
        got_line = threading.Event()

        def pump(stream: Any, first: bool) -> None:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if first and not got_line.is_set():
                    first_line.append(line)
                    got_line.set()
                self.tail.append(line)
                if VERBOSE:
                    print(f"[server] {line}", flush=True)
            got_line.set()

        self.pumps = [
            threading.Thread(target=pump, args=(stream, first), daemon=True)
            for stream, first in ((self.proc.stdout, True), (self.proc.stderr, False))
        ]
        for thread in self.pumps:
            thread.start()

        if not got_line.wait(START_S) or not first_line:
            self.stop()
            raise AssertionError(f"syncspec serve printed no address within {START_S} s:\n{self.output()}")
        m = re.fullmatch(r"listening on http://(\S+)", first_line[0].strip())
        if not m:
            self.stop()
            raise AssertionError(f"unexpected first line from syncspec serve: {first_line[0]!r}\n{self.output()}")
        self.addr = m.group(1)
        self.url = f"http://{self.addr}"

    def output(self) -> str:
        return "\n".join(self.tail)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            return
        # The pipes reach their end once the process is gone.
        for thread in self.pumps:
            thread.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def control(self, command: Dict[str, Any]) -> Dict[str, Any]:
        """One command on the test-hook socket `/_syncspec/control`."""
        reply = control(self.addr, command)
        if reply.get("ok") is not True:
            raise AssertionError(f"control {command} failed: {reply}")
        return reply

    def stats(self) -> Dict[str, int]:
        """Sync sockets opened since start, and open now."""
        reply = self.control({"type": "Stats"})
        return {"opened": reply["opened"], "open": reply["open"]}


def control(addr: str, command: Dict[str, Any], timeout: float = 5.0) -> Dict[str, Any]:
    """A minimal WebSocket client (RFC 6455) for one request and its reply:
    the standard library has none, and the hook needs nothing more."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET /_syncspec/control HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError(f"control socket closed during the upgrade: {buf!r}")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"control socket upgrade refused: {head!r}")
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])
        )
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if headers.get("sec-websocket-accept") != accept.decode():
            raise AssertionError(f"control socket upgrade without the right accept key: {head!r}")

        payload = json.dumps(command).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        s.sendall(header + mask + masked)

        def read(n: int) -> bytes:
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(4096)
                if not chunk:
                    raise AssertionError("control socket closed before replying")
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        while True:
            b0, b1 = read(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", read(8))
            data = read(length)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                return json.loads(data)
            if opcode == 0x8:
                raise AssertionError(f"control socket closed before replying: {data!r}")


# ---------------------------------------------------------------------------
# Test cases.


class ServerCase(unittest.TestCase):
    """Starts a server of the test's own (so its socket counts are the
    test's alone) and kills it afterwards."""

    server_args: List[str] = ["--auth-secret", SECRET]

    def start(self, args: Optional[List[str]] = None) -> Server:
        server = Server(self.server_args if args is None else args)
        self.addCleanup(server.stop)
        return server

    def setUp(self) -> None:
        self.server = self.start()

    def client(self) -> ConvexClient:
        return within(STEP_S, "ConvexClient()", ConvexClient, self.server.url)

    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return within(STEP_S, what, fn, *args)
        except DeadlineExceeded as e:
            raise AssertionError(f"{e}\nserver output:\n{self.server.output()}") from None
        except ValueError as e:
            if not str(e).startswith("Bad JSON value"):
                raise
            # ConvexHttpClient 0.8.1 takes a plain JSON number only when
            # Python's json parses it as a float: `3.0`, as Convex's backend
            # writes a whole float64 (serde_json), but not `3`.
            raise AssertionError(
                f"{what}: the Python ConvexHttpClient could not decode the answer ({e}); it reads a "
                "float64 only from a JSON number with a fraction or exponent (Convex writes 3.0 as `3.0`), "
                "so a whole float64 answered as `3` never reaches it"
            ) from e

    def convex_error(self, what: str, fn: Callable[..., Any], *args: Any) -> ConvexError:
        """The ConvexError a call must raise."""
        try:
            value = self.call(what, fn, *args)
        except ConvexError as e:
            return e
        except KeyError as e:
            # ConvexHttpClient 0.8.1 calls `raise_for_status()` before it reads
            # the body, so any 4xx/5xx answer, 560 included, sends it down the
            # path that expects `{"code", "message"}`; only a 200 with
            # `{"status": "error", "errorData"}` reaches its ConvexError.
            raise AssertionError(
                f"{what}: the Python ConvexHttpClient could not read the error answer (KeyError {e}); "
                "it reads errorData only from a 200 answer, so a function error answered with "
                "another status (e.g. 560) never reaches it as a ConvexError"
            ) from e
        raise AssertionError(f"{what} succeeded with {value!r}, expected a ConvexError")


class SocketClientTest(ServerCase):
    """`convex.ConvexClient`, over the sync socket."""

    def test_query_and_mutation(self) -> None:
        client = self.client()
        name = fresh("counter")
        first = self.call("counters:increment", client.mutation, "counters:increment", {"name": name})
        second = self.call(
            "counters:increment by 5", client.mutation, "counters:increment", {"name": name, "by": ConvexInt64(5)}
        )
        self.assertIsInstance(first, ConvexInt64)
        self.assertEqual((first, second), (ConvexInt64(1), ConvexInt64(6)))
        total = self.call("counters:get", client.query, "counters:get", {"name": name})
        self.assertEqual(total, ConvexInt64(6))

        value = {"text": "ünï \"q\"", "bytes": b"\x00\x01\xff", "int": ConvexInt64(-(2**63)), "list": [1.5, None, True]}
        echoed = self.call("values:echo", client.query, "values:echo", {"value": value})
        self.assertEqual(echoed, value)
        self.assertIsInstance(echoed["int"], ConvexInt64)

    def test_user_error_carries_its_data(self) -> None:
        client = self.client()
        channel = fresh("empty")
        err = self.convex_error(
            "messages:send with an empty body",
            client.mutation,
            "messages:send",
            {"channel": channel, "author": "a", "body": "   "},
        )
        self.assertEqual(err.data["code"], "EmptyMessage", err.data)
        self.assertEqual(self.call("messages:list", client.query, "messages:list", {"channel": channel}), [])

    def test_subscription_sees_another_clients_write(self) -> None:
        reader, writer = self.client(), self.client()
        channel = fresh("fanout")
        sub = self.call("subscribe", reader.subscribe, "messages:list", {"channel": channel})
        next_matching(sub, lambda v: v == [], "the first, empty messages:list")
        message_id = self.call(
            "messages:send",
            writer.mutation,
            "messages:send",
            {"channel": channel, "author": "w", "body": "from afar"},
        )
        seen = next_matching(
            sub, lambda v: any(m["_id"] == message_id for m in v), "the other client's write in the subscription"
        )
        self.assertEqual([(m["author"], m["body"]) for m in seen], [("w", "from afar")])

    def test_action_streams_a_reply(self) -> None:
        reader, asker = self.client(), self.client()
        channel, bot = fresh("reply"), fresh("bot")
        text = "one two three"
        sub = self.call("subscribe", reader.subscribe, "messages:list", {"channel": channel})
        next_matching(sub, lambda v: v == [], "the first, empty messages:list")
        question = self.call(
            "messages:send", asker.mutation, "messages:send", {"channel": channel, "author": "ada", "body": "news?"}
        )
        result = self.call(
            "messages:streamReply",
            asker.action,
            "messages:streamReply",
            {"channel": channel, "author": bot, "text": text, "tokenIntervalMs": 20},
        )
        self.assertIsInstance(result["id"], str, result)
        self.assertEqual(result, {"id": result["id"], "inReplyTo": question, "tokens": 3.0})

        # The reader's pushes: the reply's body always a whole-token prefix
        # that never shrinks, until the finished full text.
        prefixes = reply_prefixes(text)
        bodies: List[str] = []

        def finished(v: Any) -> bool:
            replies = [m for m in v if m["author"] == bot]
            self.assertLessEqual(len(replies), 1, v)
            if replies:
                bodies.append(replies[0]["body"])
            return any(m["_id"] == result["id"] and not m["streaming"] for m in v)

        seen = next_matching(sub, finished, "the finished reply in the subscription")
        self.assertTrue(all(b in prefixes for b in bodies), f"bodies not whole-token prefixes: {bodies!r}")
        positions = [prefixes.index(b) for b in bodies]
        self.assertEqual(positions, sorted(positions), f"the reply's body shrank: {bodies!r}")
        self.assertEqual(
            [(m["_id"], m["body"], m["streaming"]) for m in seen],
            [(question, "news?", False), (result["id"], text, False)],
        )

    def test_failing_action_is_a_convex_error_and_its_writes_stay(self) -> None:
        client = self.client()
        channel, bot = fresh("failing-reply"), fresh("bot")
        err = self.convex_error(
            "messages:streamReply failing after 2 tokens",
            client.action,
            "messages:streamReply",
            {"channel": channel, "author": bot, "text": "one two three four", "failAfterTokens": 2},
        )
        self.assertEqual(err.data["code"], "UpstreamFailed", err.data)
        self.assertEqual(err.data["tokens"], 2.0, err.data)
        self.assertIsInstance(err.data["message"], str, err.data)
        # An action is no transaction: its two tokens stay, still streaming,
        # and the client's session carries on.
        rows = self.call("messages:list", client.query, "messages:list", {"channel": channel})
        self.assertEqual([(m["author"], m["body"], m["streaming"]) for m in rows], [(bot, "one two ", True)])

    def test_set_auth_identity_reaches_functions(self) -> None:
        client = self.client()
        sub, channel = fresh("alice"), fresh("as-me")
        self.assertIsNone(self.call("users:me", client.query, "users:me", {}))
        err = self.convex_error(
            "messages:sendAsMe without identity",
            client.mutation,
            "messages:sendAsMe",
            {"channel": channel, "body": "who"},
        )
        self.assertEqual(err.data["code"], "Unauthenticated", err.data)

        client.set_auth(token_for(SECRET, sub, name="Alice"))
        self.assertEqual(self.call("users:me", client.query, "users:me", {}), identity(sub, "Alice"))
        message_id = self.call(
            "messages:sendAsMe", client.mutation, "messages:sendAsMe", {"channel": channel, "body": "signed"}
        )
        rows = self.call("messages:list", client.query, "messages:list", {"channel": channel})
        self.assertEqual([(m["_id"], m["author"], m["body"]) for m in rows], [(message_id, "Alice", "signed")])

        # Signing out: no identity again.
        client.clear_auth()
        self.assertIsNone(self.call("users:me after clear_auth", client.query, "users:me", {}))

    def test_set_auth_reruns_identity_dependent_queries(self) -> None:
        client, writer = self.client(), self.client()
        alice, bob = fresh("alice"), fresh("bob")
        for user, title in ((alice, "for alice"), (bob, "for bob 1"), (bob, "for bob 2")):
            self.call("notifications:send", writer.mutation, "notifications:send", {"user": user, "title": title})

        def titles(v: Any) -> List[str]:
            return sorted(i["title"] for i in v["items"])

        mine = self.call("subscribe", client.subscribe, "notifications:mine", {})
        next_matching(mine, lambda v: v == {"count": 0.0, "items": []}, "notifications:mine without identity")
        client.set_auth(token_for(SECRET, alice))
        as_alice = next_matching(mine, lambda v: v["count"] != 0, "notifications:mine as alice")
        self.assertEqual(titles(as_alice), ["for alice"])
        client.set_auth(token_for(SECRET, bob))
        as_bob = next_matching(mine, lambda v: v["count"] == 2, "notifications:mine re-run as bob")
        self.assertEqual(titles(as_bob), ["for bob 1", "for bob 2"])

    def test_forged_token_is_refused(self) -> None:
        client = self.client()
        sub = self.call("subscribe", client.subscribe, "users:me", {})
        next_matching(sub, lambda v: v is None, "users:me without identity")
        self.assertEqual(self.server.stats()["opened"], 1)

        client.set_auth(token_for("not-the-server-secret", fresh("mallory"), name="Mallory"))
        # The server answers AuthError and closes; the client starts over on
        # a new socket with the same token, and is refused again.
        deadline = time.monotonic() + STEP_S
        while time.monotonic() < deadline and self.server.stats()["opened"] < 2:
            time.sleep(0.05)
        self.assertGreaterEqual(self.server.stats()["opened"], 2, "a forged token did not get the socket closed")
        # Meanwhile no push may carry the forged identity.
        try:
            forged = within(2, "a users:me push after a forged token", next, sub)
        except DeadlineExceeded:
            forged = None
        self.assertIsNone(forged, "users:me ran with a forged identity")
        # (Signing out would end the refusals, but the client backs off
        # exponentially between the refused sockets, up to 15 s, so how soon
        # it is served again says more about the client than the server.)


class KeepaliveTest(ServerCase):
    """An idle client and the server's pings."""

    server_args = KEEPALIVE

    def idle_subscriber(self) -> Any:
        client = self.client()
        name = fresh("idle")
        sub = self.call("subscribe", client.subscribe, "counters:get", {"name": name})
        next_matching(sub, lambda v: v == ConvexInt64(0), "the first counters:get")
        return client, name, sub

    def test_idle_client_outlives_the_idle_timeout(self) -> None:
        _client, name, sub = self.idle_subscriber()
        self.assertEqual(self.server.stats(), {"opened": 1, "open": 1})
        time.sleep(IDLE_S)
        self.assertEqual(
            self.server.stats(),
            {"opened": 1, "open": 1},
            "the idle client's socket was replaced while it sat idle past the 1 s idle timeout",
        )
        writer = self.client()
        self.call("counters:increment", writer.mutation, "counters:increment", {"name": name})
        next_matching(sub, lambda v: v == ConvexInt64(1), "the write reaching the idle subscription")

    def test_control_without_pings_the_idle_client_is_cut(self) -> None:
        self.server.stop()
        self.server = self.start([*KEEPALIVE, "--fault", "no-ws-ping"])
        # Held until the end: a dropped client closes its socket for good.
        _client, _name, _sub = self.idle_subscriber()
        deadline = time.monotonic() + IDLE_S + STEP_S
        while time.monotonic() < deadline and self.server.stats()["opened"] < 2:
            time.sleep(0.05)
        self.assertGreaterEqual(
            self.server.stats()["opened"], 2, "with no pings the idle client should be cut at the idle timeout"
        )


class HttpClientTest(ServerCase):
    """`convex.http_client.ConvexHttpClient`, over the HTTP API."""

    def http(self) -> ConvexHttpClient:
        return ConvexHttpClient(self.server.url)

    def test_query_and_mutation(self) -> None:
        http = self.http()
        name = fresh("http-counter")
        self.assertEqual(
            self.call("counters:increment", http.mutation, "counters:increment", {"name": name}), ConvexInt64(1)
        )
        self.assertEqual(
            self.call("counters:increment", http.mutation, "counters:increment", {"name": name, "by": ConvexInt64(2)}),
            ConvexInt64(3),
        )
        total = self.call("counters:get", http.query, "counters:get", {"name": name})
        self.assertIsInstance(total, ConvexInt64)
        self.assertEqual(total, ConvexInt64(3))

    def test_user_error_carries_its_data(self) -> None:
        http = self.http()
        err = self.convex_error(
            "messages:send with an empty body",
            http.mutation,
            "messages:send",
            {"channel": fresh("http-empty"), "author": "a", "body": ""},
        )
        self.assertEqual(err.data["code"], "EmptyMessage", err.data)

    def test_mutation_reaches_a_socket_subscriber(self) -> None:
        reader, http = self.client(), self.http()
        channel = fresh("http-fanout")
        sub = self.call("subscribe", reader.subscribe, "messages:list", {"channel": channel})
        next_matching(sub, lambda v: v == [], "the first, empty messages:list")
        message_id = self.call(
            "messages:send over HTTP",
            http.mutation,
            "messages:send",
            {"channel": channel, "author": "http", "body": "over http"},
        )
        next_matching(sub, lambda v: any(m["_id"] == message_id for m in v), "the HTTP write in the subscription")

    def test_action(self) -> None:
        http = self.http()
        channel, bot, failing = fresh("http-reply"), fresh("bot"), fresh("failing")
        text = "over plain http"
        result = self.call(
            "messages:streamReply over HTTP",
            http.action,
            "messages:streamReply",
            {"channel": channel, "author": bot, "text": text},
        )
        self.assertIsInstance(result["id"], str, result)
        # An empty channel: nothing to reply to.
        self.assertEqual(result, {"id": result["id"], "inReplyTo": None, "tokens": 3.0})

        err = self.convex_error(
            "messages:streamReply over HTTP failing after 1 token",
            http.action,
            "messages:streamReply",
            {"channel": channel, "author": failing, "text": "a b c", "failAfterTokens": 1},
        )
        self.assertEqual(err.data["code"], "UpstreamFailed", err.data)
        self.assertEqual(err.data["tokens"], 1.0, err.data)
        rows = self.call("messages:list", http.query, "messages:list", {"channel": channel})
        self.assertEqual(
            [(m["_id"] == result["id"], m["author"], m["body"], m["streaming"]) for m in rows],
            [(True, bot, text, False), (False, failing, "a ", True)],
        )

    def test_set_auth(self) -> None:
        http = self.http()
        sub, channel = fresh("carol"), fresh("http-as-me")
        self.assertIsNone(self.call("users:me", http.query, "users:me", {}))
        http.set_auth(token_for(SECRET, sub, name="Carol"))
        self.assertEqual(self.call("users:me", http.query, "users:me", {}), identity(sub, "Carol"))
        message_id = self.call(
            "messages:sendAsMe", http.mutation, "messages:sendAsMe", {"channel": channel, "body": "by bearer"}
        )
        rows = self.call("messages:list", http.query, "messages:list", {"channel": channel})
        self.assertEqual([(m["_id"], m["author"]) for m in rows], [(message_id, "Carol")])

        http.clear_auth()
        err = self.convex_error(
            "messages:sendAsMe without auth", http.mutation, "messages:sendAsMe", {"channel": channel, "body": "x"}
        )
        self.assertEqual(err.data["code"], "Unauthenticated", err.data)

        http.set_auth(token_for("not-the-server-secret", sub, name="Carol"))
        with self.assertRaises(Exception) as refused:
            self.call("users:me with a forged token", http.query, "users:me", {})
        self.assertNotIsInstance(refused.exception, ConvexError)
        self.assertTrue(str(refused.exception).startswith("401 "), f"expected a 401, got {refused.exception!r}")


if __name__ == "__main__":
    unittest.main()
