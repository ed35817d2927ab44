#!/usr/bin/python3
"""A chat over wss://: page, join, broadcast, leave, refusals, Origin, a close_notify at the end.
   client.py TLS_PORT CHAT_LOG [WAY]   (tests/tls/run.sh: through nginx; tests/tls/direct.sh: WAY
   "direct", to chat.h's own TLS). Last line: "N passed, M failed"."""
import asyncio, json, socket, ssl, sys, time, urllib.request
import websockets

port, chat_log = int(sys.argv[1]), sys.argv[2]
way = "directly" if sys.argv[3:] == ["direct"] else "through the proxy"
base = f"localhost:{port}"
tls = ssl.create_default_context()
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE  # self-signed, made by run.sh
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


async def recv_json(ws, want=None, timeout=3):
    """The next JSON message (or the next one for which want(msg) holds)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if want is None or want(msg):
            return msg


def users_are(names):
    return lambda m: m.get("event") == "update-users" and m["usernames"] == names


async def main():
    page = urllib.request.urlopen(f"https://{base}/", context=tls, timeout=3)
    body = page.read().decode()
    check("GET / over https", page.status == 200 and 'id="conversation"' in body, page.status)

    url = f"wss://{base}/start_web_socket?username="
    origin = f"https://{base}"
    async with websockets.connect(url + "alice", ssl=tls, origin=origin) as alice:
        await recv_json(alice, users_are(["alice"]))
        async with websockets.connect(url + "%E5%B0%8F%E6%98%8E", ssl=tls, origin=origin) as bob:
            m = await recv_json(bob, users_are(["alice", "小明"]))
            check("join over wss: both names, in order", m["usernames"] == ["alice", "小明"])
            await recv_json(alice, users_are(["alice", "小明"]))
            await bob.send(json.dumps({"event": "send-message", "message": "你好 over TLS 🦕"}))
            want = {"event": "send-message", "username": "小明", "message": "你好 over TLS 🦕"}
            got_a = await recv_json(alice, lambda m: m.get("event") == "send-message")
            got_b = await recv_json(bob, lambda m: m.get("event") == "send-message")
            tutorial = lambda m: {k: m.get(k) for k in want}  # our additions (id, time) aside
            check("broadcast over wss reaches both", tutorial(got_a) == want and tutorial(got_b) == want and
                  got_a == got_b and isinstance(got_a.get("id"), int), (got_a, got_b))
        m = await recv_json(alice, users_are(["alice"]))
        check("leave over wss updates the list", m["usernames"] == ["alice"])

        async with websockets.connect(url + "alice", ssl=tls, origin=origin) as dup:
            try:
                await asyncio.wait_for(dup.recv(), 3)
                check("duplicate name refused " + way, False, "no close")
            except websockets.ConnectionClosed as e:
                check("duplicate name refused " + way, e.code == 1008 and e.reason == "用户名 alice 已被占用",
                      (e.code, e.reason))

    try:
        async with websockets.connect(url + "mallory", ssl=tls, origin="https://evil.example"):
            check("a cross-site Origin is refused " + way, False, "connected")
    except websockets.InvalidStatusCode as e:
        check("a cross-site Origin is refused " + way, e.status_code == 403, e.status_code)

    # the server ends a connection with a close_notify before its FIN: a clean end of the TLS
    # stream, not a truncation (Python raises SSLEOFError for that)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, tls.wrap_socket(raw) as s:
        s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got, clean = b"", False
        try:
            while chunk := s.recv(4096):
                got += chunk
            clean = True
        except ssl.SSLError as e:
            got += str(e).encode()
        check("the end of a connection is a close_notify " + way, clean and got.startswith(b"HTTP/1.1 404"), got[:80])

    # the server logged the client's address (nginx's X-Forwarded-For, as the trusted proxy)
    log = open(chat_log, encoding="utf-8").read()
    check("the client's address is logged", "join: alice from 127.0.0.1" in log, log[-500:])


asyncio.run(main())
print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
