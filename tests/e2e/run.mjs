// End-to-end tests of chat.h's page in Debian's Chromium against the real ./chat binary.
//   node run.mjs [SUBSTRING...]   runs the tests whose names contain one of the substrings (all by default)
// One line per test, "ok NAME" or "FAIL NAME: reason"; the last line is "N passed, M failed".
// Every test starts its own server on a free loopback port and its own browser contexts; no test
// sleeps: each waits, at most E2E_WAIT_MS (10 s), for a condition in the page.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  HERE, WAIT, DESKTOP, PHONE, checkSetup, launchBrowser, startChat, startRelay, startFront, startBroker, poll, until, users,
  state, waitUsers, waitMessages, waitState, ready, join, send, messages,
} from "./lib.mjs";

const TEST_TIMEOUT = Number(process.env.E2E_TEST_TIMEOUT_MS) || 90_000;
const BLANK_ZH = "请输入名字"; // the page's own words for a blank name
const CJK = /[\u3000-\u9fff\uff00-\uffef]/;
const WS_DOWN = /WebSocket connection to '.*' failed/; // logged by Chromium while the server is down

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function eq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}
function check(cond, what) {
  if (!cond) throw new Error(what);
}
// the notice above the input: why the page is not connected, or why a message was not sent
const notice = (page) => page.evaluate(() => ({
  text: document.getElementById("notice-text").textContent, countdown: document.getElementById("countdown").textContent,
  shown: !document.getElementById("notice").hidden, state: document.body.dataset.s,
}));
// the limits of the server's welcome frame as the page received it, or null
const welcomeLimits = (page) => {
  for (const s of page.sockets) for (const f of s.received) {
    try { const d = JSON.parse(f); if (d.event === "welcome") return d.limits ?? null; } catch {}
  }
  return null;
};

// What one test owns: its servers and browser contexts, closed after it; and everything that
// went wrong in its pages (console errors, uncaught exceptions, failed or 4xx/5xx requests),
// which fails the test unless allowed.
class Ctx {
  constructor(browser) {
    this.browser = browser;
    this.servers = [];
    this.relays = [];
    this.contexts = [];
    this.problems = [];
    this.allowed = [];
  }
  async server(opts) {
    const s = await startChat(opts);
    this.servers.push(s);
    return s;
  }
  async broker() {
    const b = await startBroker();
    this.relays.push(b); // closed with the relays, before the servers are killed
    return b;
  }
  async relay(srv) {
    const r = await startRelay(srv.port);
    this.relays.push(r);
    return r;
  }
  async front(srv, files) {
    const f = await startFront(srv.port, files);
    this.relays.push(f);
    return f;
  }
  allow(re) { this.allowed.push(re); }
  // A page of srv in a new browser context (a new profile), or in `context` (another tab of that
  // profile). `before(page)` runs before the page is loaded (routes); `wait: false` skips the
  // wait for this page's own script. page.sockets records every WebSocket and its text frames.
  async page(srv, { label = "page", locale = "zh-CN", device = DESKTOP, context, before, wait = true } = {}) {
    let ctx = context;
    if (!ctx) {
      ctx = await this.browser.newContext({ ...device, locale });
      ctx.setDefaultTimeout(WAIT);
      this.contexts.push(ctx);
    }
    const page = await ctx.newPage();
    page.label = label;
    page.responses = [];
    page.sockets = [];
    page.on("websocket", (ws) => {
      const s = { url: ws.url(), received: [], sent: [] };
      page.sockets.push(s);
      ws.on("framereceived", (f) => { if (typeof f.payload === "string") s.received.push(f.payload); });
      ws.on("framesent", (f) => { if (typeof f.payload === "string") s.sent.push(f.payload); });
    });
    const bad = (s) => this.problems.push(`${label}: ${s}`);
    page.on("console", (m) => { if (m.type() === "error") bad(`console error: ${m.text()}`); });
    page.on("pageerror", (e) => bad(`uncaught: ${e.message}`));
    page.on("requestfailed", (r) => bad(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => {
      page.responses.push(r);
      if (r.status() >= 400) bad(`HTTP ${r.status()} for ${r.url()}`);
    });
    if (before) await before(page);
    await page.goto(srv.url);
    if (wait) await ready(page);
    return page;
  }
  unexpected() {
    return this.problems.filter((p) => !this.allowed.some((re) => re.test(p)));
  }
  async close() {
    await Promise.allSettled(this.contexts.map((c) => c.close()));
    await Promise.allSettled(this.relays.map((r) => r.close()));
    await Promise.allSettled(this.servers.map((s) => s.stop("SIGKILL")));
  }
}

// ---------------------------------------------------------------------------------------------

test("page loads with no console error or failed request; stylesheet, title and lang set", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" });
  await a.waitForLoadState("load");
  const got = Object.fromEntries(a.responses.map((r) => [new URL(r.url()).pathname, [r.status(), r.headers()["content-type"]]]));
  eq(Object.keys(got).sort(), ["/", "/public/app.js", "/public/style.css"], "requests the page made");
  check(got["/"][0] === 200 && /^text\/html/.test(got["/"][1]), `/ answered ${got["/"]}`);
  check(got["/public/style.css"][0] === 200 && /^text\/css/.test(got["/public/style.css"][1]), `style.css answered ${got["/public/style.css"]}`);
  check(got["/public/app.js"][0] === 200 && /javascript/.test(got["/public/app.js"][1]), `app.js answered ${got["/public/app.js"]}`);
  // styles only style.css sets: the grid layout, the page background, the blue buttons
  const css = await a.evaluate(() => ({
    display: getComputedStyle(document.body).display,
    background: getComputedStyle(document.body).backgroundColor,
    button: getComputedStyle(document.querySelector("#login button")).backgroundColor,
    joinCard: getComputedStyle(document.getElementById("join")).position,
  }));
  eq(css, { display: "grid", background: "rgb(244, 245, 247)", button: "rgb(58, 92, 204)", joinCard: "fixed" }, "computed styles from style.css");
  eq(await a.title(), "chat.h · Deno 聊天应用程序", "title");
  eq(await a.getAttribute("html", "lang"), "zh-CN", "<html lang>");
  // the script ran: idle status, name form up and focused, send disabled
  eq(await state(a), "idle", "state before joining");
  check(await a.locator("#join").isVisible(), "the name form is not shown");
  eq(await a.evaluate(() => document.activeElement.id), "name", "focused element");
  check(await a.locator("#send").isDisabled(), "send is enabled before joining");
  // and a chat round trip stays clean too
  await join(a, "Alice");
  await send(a, "hello");
  eq(await waitMessages(a, 1), [{ user: "Alice", text: "hello", me: true }], "conversation");
});

test("two users in separate contexts both see both names", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await until(a, "A shows it is alone", () => !document.getElementById("alone").hidden);
  await join(b, "Bob");
  await waitUsers(a, ["Alice", "Bob"], "A's list");
  await waitUsers(b, ["Alice", "Bob"], "B's list");
  // each page marks its own name
  eq(await a.$$eval("#users li", (l) => l.map((li) => li.className)), ["me", ""], "A's own entry marked");
  eq(await b.$$eval("#users li", (l) => l.map((li) => li.className)), ["", "me"], "B's own entry marked");
  eq(await b.$eval("#users .me", (li) => getComputedStyle(li, "::after").content), '"（你）"', "B's (you) mark");
  await until(a, "A no longer says it is alone", () => document.getElementById("alone").hidden);
});

test("two pages on two boards bridged through mosquitto: one user list, every message once, in order, on both", async (t) => {
  const broker = await t.broker();
  const one = await t.server({ args: ["-m", broker.url("e2e"), "-n", "board-1"] });
  const two = await t.server({ args: ["-m", broker.url("e2e"), "-n", "board-2"] });
  const a = await t.page(one, { label: "A" }), b = await t.page(two, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await waitUsers(a, ["Alice", "Bob"], "A's list (board 1)");
  await waitUsers(b, ["Alice", "Bob"], "B's list (board 2)");
  // the same name on the other board is refused in the page's words, as on one board
  const c = await t.page(two, { label: "C" });
  await c.locator("#name").fill("Alice");
  await c.locator("#name").press("Enter");
  await until(c, "C shows a reason", () => document.getElementById("why").textContent !== "");
  eq(await c.textContent("#why"), "名字“Alice”已被占用，换成“Alice 2”如何？", "reason shown to C (board 2) for board 1's Alice");
  await send(a, "from board 1", "enter");
  await waitMessages(b, 1, "B's conversation");
  await send(b, "from board 2", "button");
  for (let i = 1; i <= 5; i++) await send(a, `a${i}`, "enter");
  const want = ["from board 1", "from board 2", "a1", "a2", "a3", "a4", "a5"];
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    const got = await waitMessages(p, 7, `${n}'s conversation`);
    eq(got.map((m) => m.text), want, `${n}'s conversation`);
    eq(got.map((m) => m.user), ["Alice", "Bob", "Alice", "Alice", "Alice", "Alice", "Alice"], `${n}'s senders`);
  }
});

test("messages sent with Enter and with the button reach both pages with the right sender", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await waitUsers(a, ["Alice", "Bob"], "A's list");
  await send(a, "sent with Enter", "enter");
  await waitMessages(b, 1, "B's conversation");
  await send(b, "sent with the button", "button");
  const want = [{ user: "Alice", text: "sent with Enter" }, { user: "Bob", text: "sent with the button" }];
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    const got = await waitMessages(p, 2, `${n}'s conversation`);
    eq(got.map(({ user, text }) => ({ user, text })), want, `${n}'s conversation`);
  }
  eq(await a.locator("#data").inputValue(), "", "A's input after sending");
  eq(await b.evaluate(() => document.activeElement.id), "data", "focus after sending with the button");
});

test("one sender's messages stay in order (20 each from two users at once)", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await waitUsers(a, ["Alice", "Bob"], "A's list");
  // submit the form 20 times in one go, as fast as the page allows
  const burst = (p, who) => p.evaluate((w) => {
    const input = document.getElementById("data"), form = document.getElementById("form");
    for (let i = 1; i <= 20; i++) { input.value = `${w} ${i}`; form.requestSubmit(); }
  }, who);
  await Promise.all([burst(a, "Alice"), burst(b, "Bob")]);
  const seq = (w) => Array.from({ length: 20 }, (_, i) => `${w} ${i + 1}`);
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    const got = await waitMessages(p, 40, `${n}'s conversation`);
    eq(got.length, 40, `${n}'s message count`);
    for (const [w, name] of [["Alice", "Alice"], ["Bob", "Bob"]]) {
      const mine = got.filter((m) => m.user === name).map((m) => m.text);
      eq(mine, seq(w), `${name}'s messages as ${n} shows them`);
    }
  }
});

test("HTML-like text, CJK, emoji and quotes are shown literally and run no script", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  const evil = "<img src=x onerror=window.__xss=1>";
  await join(a, "Alice");
  await join(b, evil); // as a name too: the user list and the sender line
  await waitUsers(a, ["Alice", evil], "A's list");
  const texts = [
    "<img src=x onerror=window.__xss=2>",
    "<script>window.__xss=3</script>",
    "中文：你好，世界！「引号」“双引号” 'single' \"double\" `back`",
    "emoji 🦕🎉👍🏽 👨‍👩‍👧 and \\ backslash",
    "&lt;b&gt; &amp; &#x41; <b>bold?</b>",
  ];
  for (const s of texts.slice(0, 3)) await send(a, s);
  for (const s of texts.slice(3)) await send(b, s, "button");
  const want = texts.map((text, i) => ({ user: i < 3 ? "Alice" : evil, text }));
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    const got = await waitMessages(p, texts.length, `${n}'s conversation`);
    eq(got.map(({ user, text }) => ({ user, text })), want, `${n}'s conversation`);
    eq(await p.locator("#conversation img, #conversation script, #conversation b, #users img").count(), 0, `elements injected in ${n}'s page`);
    eq(await p.evaluate(() => typeof window.__xss), "undefined", `window.__xss in ${n}'s page`);
  }
});

test("a name that needs URL encoding is shown exactly in the other user's list", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  const odd = "a b&c=d#e 名字", odd2 = "1+1=2 100% /?x=&y";
  await join(a, odd);
  await join(b, odd2);
  await waitUsers(b, [odd, odd2], "B's list");
  await waitUsers(a, [odd, odd2], "A's list");
  eq(await a.textContent("#status"), `已连接 · ${odd}`, "A's status line");
  await send(a, "hi");
  const got = await waitMessages(b, 1, "B's conversation");
  eq(got[0].user, odd, "sender shown to B");
});

test("a taken name is explained in the page's words with a suggestion and a new prompt; the first user stays listed once", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  const taken = "Alice 🦕";
  await join(a, taken);
  await b.locator("#name").fill(taken);
  await b.locator("#name").press("Enter");
  // the page lets it through; the server refuses with 1008 and the tutorial's words; the page
  // says it in its own, suggests another name and asks again
  await until(b, "B shows a reason", () => document.getElementById("why").textContent !== "",
    undefined, { show: () => b.textContent("#status") });
  eq(await b.textContent("#why"), `名字“${taken}”已被占用，换成“${taken} 2”如何？`, "reason shown to B");
  check(await b.locator("#why").isVisible(), "the reason is not visible");
  check(await b.locator("#join").isVisible(), "the name form is not shown again");
  const sel = await b.evaluate(() => { const n = document.getElementById("name"); return [document.activeElement.id, n.value, n.selectionStart, n.selectionEnd]; });
  eq(sel, ["name", `${taken} 2`, 0, `${taken} 2`.length], "B's name field: the suggestion, selected");
  eq(await state(b), "idle", "B's state (a refused name is not retried)");
  eq(await b.textContent("#status"), "未连接", "B's status line");
  check(await b.locator("#send").isDisabled(), "B's send button is enabled");
  // B can pick another name; Alice is in the list exactly once
  await join(b, "Bob");
  check(await b.locator("#why").isHidden(), "the reason stays after joining");
  await waitUsers(b, [taken, "Bob"], "B's list");
  await waitUsers(a, [taken, "Bob"], "A's list");
});

test("an empty name gets visible feedback and a new prompt; the first user stays listed once", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  // empty: the required field's own validation stops the form (Chromium shows its bubble)
  await b.evaluate(() => {
    window.__invalid = 0;
    document.getElementById("name").addEventListener("invalid", () => window.__invalid++);
  });
  await b.locator("#name").fill("");
  await b.locator("#name").press("Enter");
  await until(b, "the browser reports the empty name", () => window.__invalid > 0);
  check(await b.evaluate(() => document.getElementById("name").validationMessage !== ""), "no validation message");
  check(await b.locator("#join").isVisible(), "the name form is not shown");
  eq(await b.evaluate(() => document.activeElement.id), "name", "B's focused element");
  // only spaces: the page's own message
  await b.locator("#name").fill("   ");
  await b.locator("#join button").click();
  await until(b, "B shows why", () => document.getElementById("why").textContent !== "");
  eq(await b.textContent("#why"), BLANK_ZH, "message for a blank name");
  check(await b.locator("#why").isVisible(), "the message is not visible");
  check(await b.locator("#join").isVisible(), "the name form is not shown");
  eq(await b.evaluate(() => document.activeElement.id), "name", "B's focused element");
  eq(await state(b), "idle", "B's state");
  await join(b, "Bob");
  await waitUsers(a, ["Alice", "Bob"], "A's list");
});

test("a too-long name gets the server's limit in the page's words and a new prompt; a 64-byte one is accepted", async (t) => {
  const srv = await t.server(); // the default name limit: 64 bytes (CHAT_MAX_NAME)
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  const long = "名".repeat(22); // 22 characters, 66 bytes of UTF-8
  await b.locator("#name").fill(long);
  await b.locator("#name").press("Enter");
  await until(b, "B shows why", () => document.getElementById("why").textContent !== "");
  eq(await b.textContent("#why"), "名字太长：最多 64 字节（一个汉字占 3 字节）", "message for a 66-byte name");
  check(await b.locator("#why").isVisible(), "the message is not visible");
  check(await b.locator("#join").isVisible(), "the name form is not shown");
  const sel = await b.evaluate(() => { const n = document.getElementById("name"); return [document.activeElement.id, n.value.length, n.selectionStart, n.selectionEnd]; });
  eq(sel, ["name", 22, 0, 22], "the name field is focused with the name selected");
  eq(await state(b), "idle", "B's state");
  const max = "名".repeat(21) + "x"; // exactly 64 bytes
  await join(b, max);
  await waitUsers(a, ["Alice", max], "A's list");
});

test("leaving (page or context closed) removes the user from the others' lists within a second", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(b, "Bob");
  await join(c, "Carol");
  await waitUsers(a, ["Alice", "Bob", "Carol"], "A's list");
  await b.close();
  await waitUsers(a, ["Alice", "Carol"], "A's list after Bob's page closed", 1000);
  await c.context().close();
  await waitUsers(a, ["Alice"], "A's list after Carol's context closed", 1000);
  await until(a, "A says it is alone again", () => !document.getElementById("alone").hidden);
});

for (const signal of ["SIGKILL", "SIGTERM"]) {
  test(`after the server restarts (${signal}) on the same port the pages reconnect and chat again`, async (t) => {
    t.allow(WS_DOWN);
    const srv = await t.server();
    const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
    await join(a, "Alice");
    await join(b, "Bob");
    await waitUsers(a, ["Alice", "Bob"], "A's list");
    await srv.stop(signal);
    await waitState(a, "reconnecting", "A after the server went away");
    eq(await a.textContent("#status"), "重连中…", "A's status line");
    // what is typed meanwhile waits in the outbox, shown as sending
    await send(a, "typed while it was down");
    eq(await a.$$eval("#conversation > .pending p", (l) => l.map((p) => p.textContent)), ["typed while it was down"], "A's pending messages");
    await t.server({ port: srv.port });
    for (const [p, n] of [[a, "A"], [b, "B"]]) {
      await until(p, `${n} reconnected`, () => document.body.dataset.s === "connected", undefined,
        { timeout: 2 * WAIT, show: () => p.textContent("#status") });
      await until(p, `${n} sees both names`, () => [...document.querySelectorAll("#users li")].map((li) => li.textContent).sort().join() === "Alice,Bob",
        undefined, { show: () => users(p) });
    }
    await until(a, "A's outbox went out", () => !document.querySelector("#conversation > .pending"));
    await send(a, "after the restart");
    await waitMessages(b, 2, "B's conversation");
    await send(b, "and back", "button");
    for (const [p, n] of [[a, "A"], [b, "B"]]) {
      const got = await waitMessages(p, 3, `${n}'s conversation`);
      eq(got.map((m) => `${m.user}: ${m.text}`), ["Alice: typed while it was down", "Alice: after the restart", "Bob: and back"],
        `${n}'s conversation`);
    }
  });
}

test("with a history file (-H), a kill -9 and restart mid-chat loses nothing: the pages keep every message once, with no gap notice; a newcomer gets them all with their first times", async (t) => {
  t.allow(WS_DOWN);
  const file = path.join(mkdtempSync(path.join(tmpdir(), "chat-e2e-")), "history");
  const srv = await t.server({ args: ["-H", file] });
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  for (const [p, text] of [[a, "before one"], [b, "before two"], [a, "ok"], [b, "ok"]]) await send(p, text);
  await waitMessages(a, 4, "A's conversation");
  await waitMessages(b, 4, "B's conversation");
  const timesBefore = await a.$$eval("#conversation > div time", (l) => l.map((e) => e.dateTime));
  await srv.stop("SIGKILL");
  await waitState(a, "reconnecting", "A after the kill");
  await send(a, "typed while it was down");
  await t.server({ port: srv.port, args: ["-H", file] });
  await send(b, "after the restart");
  const want = ["Alice: before one", "Bob: before two", "Alice: ok", "Bob: ok", "Alice: typed while it was down", "Bob: after the restart"];
  const sorted = want.slice().sort().join();
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    await until(p, `${n} shows all 6`, (k) => document.querySelectorAll("#conversation > div:not(.pending)").length >= k, want.length,
      { timeout: 2 * WAIT, show: async () => (await messages(p)).map((m) => `${m.user}: ${m.text}`) });
    const got = (await messages(p)).map((m) => `${m.user}: ${m.text}`);
    eq(got.length, 6, `${n}'s conversation: ${JSON.stringify(got)}`);
    eq(got.slice(0, 4), want.slice(0, 4), `${n}'s conversation before the kill`);
    eq(got.slice().sort().join(), sorted, `${n}'s conversation, each once`);
    check(await p.locator("#notice").isHidden(), `${n} shows a notice: ${JSON.stringify(await notice(p))}`);
  }
  const c = await t.page(srv, { label: "C" });
  await join(c, "Carol");
  await waitMessages(c, 6, "C's replayed history");
  eq((await messages(c)).map((m) => `${m.user}: ${m.text}`).slice(0, 4), want.slice(0, 4), "C's replayed history");
  eq((await c.$$eval("#conversation > div time", (l) => l.map((e) => e.dateTime))).slice(0, 4), timesBefore, "the first times, kept");
});

test("a dropped connection comes back by itself: no message twice, the ones sent meanwhile once", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  const relay = await t.relay(srv); // A's connection goes through it; the server stays up
  const a = await t.page(relay, { label: "A" }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(c, "Carol");
  await send(a, "one");
  await waitMessages(c, 1, "C's conversation");
  await send(c, "two");
  await waitMessages(a, 2, "A's conversation");
  relay.block(true);
  relay.drop();
  await waitState(a, "reconnecting", "A after its connection dropped");
  await waitUsers(c, ["Carol"], "C's list while A is away");
  await send(c, "while you were away");
  await waitMessages(c, 3, "C's conversation");
  relay.block(false);
  await until(a, "A reconnected", () => document.body.dataset.s === "connected" && document.querySelectorAll("#users li").length === 2,
    undefined, { timeout: 2 * WAIT, show: () => a.textContent("#status") });
  await waitUsers(c, ["Carol", "Alice"], "C's list");
  await send(a, "back");
  await waitMessages(c, 4, "C's conversation");
  const got = await waitMessages(a, 4, "A's conversation");
  eq(got.map((m) => `${m.user}: ${m.text}`), ["Alice: one", "Carol: two", "Carol: while you were away", "Alice: back"], "A's conversation");
});

// A stand-in for a server without resume (an older chat.h): the page's resume token is cut out.
const withoutResume = (page) => page.addInitScript(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native { constructor(url, ...rest) { super(String(url).replace(/&resume=[^&]*/, ""), ...rest); } };
});

test("a reconnect that finds its old connection holding the name takes it over at once: nothing missed, no leave or join seen", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  const relay = await t.relay(srv);
  const a = await t.page(relay, { label: "A" }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(c, "Carol");
  await send(a, "before");
  await waitMessages(c, 1, "C's conversation");
  relay.drop({ ghost: true }); // the server still sees Alice's old connection
  await send(c, "ok");
  await send(c, "ok");
  await until(a, "A is back", () => document.body.dataset.s === "connected" && document.querySelectorAll("#conversation > div").length >= 3,
    undefined, { timeout: 2 * WAIT, show: () => a.textContent("#status") });
  const got = await waitMessages(a, 3, "A's conversation");
  eq(got.map((m) => `${m.user}: ${m.text}`), ["Alice: before", "Carol: ok", "Carol: ok"], "A's conversation");
  check(await a.locator("#notice").isHidden(), `A shows a notice: ${JSON.stringify(await notice(a))}`);
  await send(a, "still me");
  eq((await waitMessages(c, 4, "C's conversation")).map((m) => m.text), ["before", "ok", "ok", "still me"], "C's conversation");
  // C never saw Alice leave: every user list it got holds her, once
  const lists = c.sockets.flatMap((s) => s.received).map((f) => JSON.parse(f)).filter((d) => d.event === "update-users");
  check(lists.length > 0 && lists.every((d) => d.usernames.filter((u) => u === "Alice").length === 1 || !d.usernames.includes("Carol")),
    `C's user lists: ${JSON.stringify(lists.map((d) => d.usernames))}`);
  relay.release();
});

test("without a resume token, a reconnect that finds its old connection still holding the name keeps trying, then gets in", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  const relay = await t.relay(srv);
  const a = await t.page(relay, { label: "A", before: withoutResume }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(c, "Carol");
  await send(a, "before");
  await waitMessages(c, 1, "C's conversation");
  // the browser's side goes; the server still sees Alice's old connection
  const before = relay.accepted();
  relay.drop({ ghost: true });
  await waitState(a, "reconnecting", "A after its connection dropped");
  // the server refuses the name ("taken" by the ghost) at least twice; the page must not give up
  const pageState = () => a.evaluate(() => `${document.body.dataset.s} ${JSON.stringify(document.getElementById("why").textContent)}`);
  await poll("A retried twice", async () => relay.accepted() >= before + 2 && (await state(a)) === "reconnecting", { show: pageState });
  check(await a.locator("#join").isHidden(), `A was asked for a name again: ${await pageState()}`);
  // and says why it is not back yet, with a way out
  await until(a, "A explains the wait", () => document.getElementById("notice-text").textContent === "你之前的连接仍占用着“Alice”"
    && !document.getElementById("notice-action").hidden, undefined, { show: () => notice(a) });
  eq(await a.textContent("#notice-action"), "换个名字", "the notice's button");
  await waitUsers(c, ["Alice", "Carol"], "C's list (the ghost)");
  // the server notices the old connection is gone (as its ping would): A gets in by itself
  relay.release();
  await until(a, "A reconnected", () => document.body.dataset.s === "connected" && document.querySelectorAll("#users li").length === 2,
    undefined, { timeout: 2 * WAIT, show: pageState });
  await waitUsers(c, ["Carol", "Alice"], "C's list");
  await waitUsers(a, ["Carol", "Alice"], "A's list");
  await send(a, "after");
  const got = await waitMessages(c, 2, "C's conversation");
  eq(got.map((m) => `${m.user}: ${m.text}`), ["Alice: before", "Alice: after"], "C's conversation");
  eq((await waitMessages(a, 2, "A's conversation")).map((m) => m.text), ["before", "after"], "A's conversation");
});

test("without a resume token, while its old connection holds the name, \"Change name\" stops the retries and asks for another name", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  const relay = await t.relay(srv);
  const a = await t.page(relay, { label: "A", locale: "en-US", before: withoutResume }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(c, "Carol");
  relay.drop({ ghost: true });
  await until(a, "A explains the wait", () => document.getElementById("notice-text").textContent === "Your previous connection still holds the name “Alice”.",
    undefined, { show: () => notice(a) });
  await a.getByRole("button", { name: "Change name", exact: true }).click();
  check(await a.locator("#join").isVisible(), "the name form is not shown");
  const sel = await a.evaluate(() => { const n = document.getElementById("name"); return [document.activeElement.id, n.value, n.selectionStart, n.selectionEnd]; });
  eq(sel, ["name", "Alice", 0, 5], "the name field: the old name, selected");
  eq(await notice(a), { text: "", countdown: "", shown: false, state: "idle" }, "A's notice and state");
  await join(a, "Alice again");
  await waitUsers(c, ["Alice", "Carol", "Alice again"], "C's list (the ghost, then A)");
  relay.release();
  await waitUsers(c, ["Carol", "Alice again"], "C's list once the ghost is gone");
});

test("a burst of 30 messages goes out paced under the server's rate (-r 20): never closed for flooding, each once, in order", async (t) => {
  const srv = await t.server({ args: ["-r", "20"] });
  const a = await t.page(srv, { label: "A", locale: "en-US" }), c = await t.page(srv, { label: "C" });
  await join(a, "Alice");
  await join(c, "Carol");
  await a.evaluate(() => {
    const input = document.getElementById("data"), form = document.getElementById("form");
    for (let i = 1; i <= 30; i++) { input.value = `burst ${i}`; form.requestSubmit(); }
  });
  const want = Array.from({ length: 30 }, (_, i) => `burst ${i + 1}`);
  await until(c, "C got all 30", (n) => document.querySelectorAll("#conversation > div").length >= n, 30,
    { timeout: 2 * WAIT, show: async () => (await messages(c)).length });
  eq((await messages(c)).map((m) => m.text), want, "C's conversation");
  await until(a, "A's outbox is empty", () => !document.querySelector("#conversation > .pending"));
  eq((await messages(a)).map((m) => m.text), want, "A's conversation");
  eq([a.sockets.length, await state(a)], [1, "connected"], "A's sockets and state");
  check(await a.locator("#notice").isHidden(), `A shows a notice: ${JSON.stringify(await notice(a))}`);
});

test("offline for 10 s: messages sent meanwhile (two identical) and two typed offline are all shown once, in order, with server times", async (t) => {
  t.allow(WS_DOWN);
  t.allow(/ERR_INTERNET_DISCONNECTED/);
  const srv = await t.server();
  const relay = await t.relay(srv); // the network the phone loses
  const a = await t.page(relay, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await send(b, "hello");
  await waitMessages(a, 1, "A's conversation");
  await a.context().setOffline(true);
  relay.block(true);
  relay.drop({ ghost: true }); // its old connection still looks alive to the server
  const offlineSince = Date.now();
  await waitState(a, "reconnecting", "A offline");
  for (const text of ["one", "ok", "ok", "two", "three"]) await send(b, text);
  await waitMessages(b, 6, "B's conversation");
  await send(a, "typed offline");
  await send(a, "ok");
  eq(await a.$$eval("#conversation > .pending p", (l) => l.map((p) => p.textContent)), ["typed offline", "ok"], "A's pending ones");
  // ten seconds and a few failed attempts later, the network is back
  const tried = a.sockets.length;
  await poll("A tried to reconnect while offline for 10 s", () => a.sockets.length >= tried + 2 && Date.now() - offlineSince >= 10_000,
    { timeout: 3 * WAIT, show: () => `${a.sockets.length} sockets after ${Date.now() - offlineSince} ms` });
  await a.context().setOffline(false);
  relay.block(false);
  const want = ["Bob: hello", "Bob: one", "Bob: ok", "Bob: ok", "Bob: two", "Bob: three", "Alice: typed offline", "Alice: ok"];
  for (const [p, n] of [[a, "A"], [b, "B"]]) {
    await until(p, `${n} shows all 8`, (k) => document.querySelectorAll("#conversation > div:not(.pending)").length >= k, want.length,
      { timeout: 3 * WAIT, show: async () => (await messages(p)).map((m) => `${m.user}: ${m.text}`) });
    eq((await messages(p)).map((m) => `${m.user}: ${m.text}`), want, `${n}'s conversation`);
    const times = await p.$$eval("#conversation > div time", (l) => l.map((e) => e.dateTime));
    check(times.every((x) => x && Math.abs(Date.parse(x) - Date.now()) < 10 * 60_000), `${n}'s times: ${JSON.stringify(times)}`);
  }
  eq(await a.$$eval("#conversation > .pending", (l) => l.length), 0, "A's pending ones after reconnecting");
  relay.release();
});

test("a reload while the server cannot be reached keeps the outbox: the typed message is shown as sending, and goes out once back", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  let down = false, live = null; // while down, the page's WebSockets are refused; the page itself still loads
  const route = (page) => page.routeWebSocket(/start_web_socket/, (ws) => {
    if (down) return ws.close();
    live = ws;
    ws.connectToServer();
  });
  const a = await t.page(srv, { label: "A", before: route }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  down = true;
  live.close();
  await waitState(a, "reconnecting", "A cut off");
  await send(a, "kept over a reload");
  await a.reload();
  await ready(a);
  await a.locator("#name").press("Enter"); // the same name, from the tab's storage
  await until(a, "A shows it as sending after the reload", () => [...document.querySelectorAll("#conversation > .pending p")].map((p) => p.textContent).join() === "kept over a reload");
  down = false;
  await until(b, "B gets it", () => [...document.querySelectorAll("#conversation p")].some((p) => p.textContent === "kept over a reload"),
    undefined, { timeout: 2 * WAIT });
  await until(a, "A's outbox is empty", () => !document.querySelector("#conversation > .pending"), undefined, { timeout: 2 * WAIT });
  eq((await messages(b)).map((m) => m.text), ["kept over a reload"], "B's conversation");
  eq((await messages(a)).map((m) => m.text), ["kept over a reload"], "A's conversation");
});

test("a newcomer gets the recent messages", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" });
  await join(a, "Alice");
  for (const s of ["one", "two", "三"]) await send(a, s);
  await waitMessages(a, 3, "A's conversation");
  const b = await t.page(srv, { label: "B" });
  await join(b, "Bob");
  const got = await waitMessages(b, 3, "B's conversation");
  eq(got, ["one", "two", "三"].map((text) => ({ user: "Alice", text, me: false })), "B's conversation");
});

test("your own messages look different from the others'", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await send(a, "mine");
  await waitMessages(b, 1, "B's conversation");
  await send(b, "theirs");
  for (const [p, n, mine] of [[a, "A", 0], [b, "B", 1]]) {
    await waitMessages(p, 2, `${n}'s conversation`);
    const looks = await p.$$eval("#conversation > div", (l) => l.map((d) => {
      const s = getComputedStyle(d), r = d.getBoundingClientRect(), box = d.parentElement.getBoundingClientRect();
      return { bg: s.backgroundColor, align: s.alignSelf, radius: s.borderRadius, left: Math.round(r.left - box.left), right: Math.round(box.right - r.right) };
    }));
    const own = looks[mine], other = looks[1 - mine];
    const differ = ["bg", "align", "radius"].filter((k) => own[k] !== other[k]);
    check(differ.length > 0, `${n}: own and other messages have the same style ${JSON.stringify(own)}`);
    // own on the right, the others' on the left
    check(own.right < own.left && other.left < other.right, `${n}: own message at ${JSON.stringify(own)}, other at ${JSON.stringify(other)}`);
  }
});

test("phone viewport: no horizontal scrolling; the form and the user list are usable", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "phone", device: PHONE });
  const b = await t.page(srv, { label: "B" }), c = await t.page(srv, { label: "C" });
  const noHScroll = async (when) => {
    const w = await a.evaluate(() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]);
    check(w[0] <= w[2] && w[1] <= w[2], `${when}: the page scrolls sideways (scrollWidth ${w[0]}/${w[1]} > innerWidth ${w[2]})`);
  };
  const inView = async (sel) => {
    const box = await a.locator(sel).boundingBox();
    const [w, h] = await a.evaluate(() => [innerWidth, innerHeight]);
    check(box && box.x >= 0 && box.y >= 0 && box.x + box.width <= w + 0.5 && box.y + box.height <= h + 0.5,
      `${sel} is not inside the ${w}x${h} viewport: ${JSON.stringify(box)}`);
  };
  eq(await a.evaluate(() => innerWidth), 375, "layout width (the page's viewport meta)");
  // the name form
  await noHScroll("name form");
  for (const sel of ["#name", "#join button"]) await inView(sel);
  await a.locator("#join button").click({ trial: true }); // visible, enabled, nothing on top
  await a.locator("#name").tap();
  await a.locator("#name").fill("Phone");
  await a.locator("#join button").tap();
  await waitState(a, "connected", "the phone page");
  const long = "W".repeat(64); // unbreakable 64-byte name
  await join(b, long);
  await join(c, "Carol");
  await waitUsers(a, ["Phone", long, "Carol"], "phone's list");
  await send(b, "https://example.com/" + "x".repeat(300)); // one long unbreakable word
  await send(c, "多行的中文消息，".repeat(20));
  // the chat: one column, users above the conversation, everything within the width
  await waitMessages(a, 2, "phone's conversation");
  await noHScroll("with a long name and long messages");
  // the user strip (aside) stays within the width; a list wider than it scrolls inside it
  for (const sel of ["aside", "#data", "#send", "#conversation"]) await inView(sel);
  eq(await a.$eval("aside", (e) => getComputedStyle(e).overflowX), "auto", "the user strip's overflow");
  const [aside, main] = await Promise.all([a.locator("aside").boundingBox(), a.locator("main").boundingBox()]);
  check(aside.y + aside.height <= main.y + 0.5, `the user list is not above the chat: ${JSON.stringify({ aside, main })}`);
  eq(await a.evaluate(() => document.documentElement.scrollHeight <= innerHeight + 1), true, "the page itself fits the height");
  // every user can be brought into view (the strip scrolls by itself, not the page)
  for (let i = 0; i < 3; i++) {
    const li = a.locator("#users li").nth(i);
    await li.scrollIntoViewIfNeeded();
    check(await li.isVisible(), `user ${i} not visible`);
    await li.click({ trial: true });
  }
  await noHScroll("after scrolling the user strip");
  // typing and tapping send
  await a.locator("#data").tap();
  await a.locator("#data").fill("from the phone 📱");
  await a.locator("#send").tap();
  const got = await waitMessages(a, 3, "phone's conversation");
  eq(got[2], { user: "Phone", text: "from the phone 📱", me: true }, "the phone's message");
  await waitMessages(b, 3, "B's conversation");
  await inView("#conversation > div:last-child"); // scrolled to the newest
});

test("keyboard only: name -> join, then message -> send; Enter sends", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(b, "Bob");
  const focused = () => a.evaluate(() => { const e = document.activeElement; return e.id || (e.tagName === "BUTTON" ? e.textContent : e.tagName); });
  eq(await focused(), "name", "focus when the page opens");
  await a.keyboard.type("Kay");
  // the name form is the only thing Tab reaches: the chat behind it is inert
  const order = [];
  for (let i = 0; i < 4; i++) { await a.keyboard.press("Tab"); order.push(await focused()); }
  eq(order, ["加入", "BODY", "name", "加入"], "focus order with Tab from the name (BODY: out of the page)");
  await a.keyboard.press("Enter"); // on the join button
  await waitState(a, "connected", "A");
  eq(await focused(), "data", "focus after joining");
  await a.keyboard.type("typed, Enter");
  await a.keyboard.press("Enter");
  await waitMessages(b, 1, "B's conversation");
  eq(await focused(), "data", "focus after sending with Enter");
  await a.keyboard.type("typed, Tab, Enter");
  await a.keyboard.press("Tab");
  eq(await focused(), "send", "focus after Tab from the message");
  await a.keyboard.press("Enter");
  const got = await waitMessages(b, 2, "B's conversation");
  eq(got.map((m) => `${m.user}: ${m.text}`), ["Kay: typed, Enter", "Kay: typed, Tab, Enter"], "B's conversation");
});

test("the inputs and buttons have accessible names", async (t) => {
  const srv = await t.server();
  for (const [locale, names] of [["zh-CN", ["你的名字", "加入", "消息", "发送"]], ["en-US", ["Your name", "Join", "Message", "Send"]]]) {
    const a = await t.page(srv, { label: locale, locale });
    const role = (r, name) => a.getByRole(r, { name, exact: true });
    eq(await role("textbox", names[0]).evaluate((e) => e.id), "name", `${locale}: textbox "${names[0]}"`);
    eq(await role("button", names[1]).count(), 1, `${locale}: button "${names[1]}"`);
    await join(a, `user-${locale}`);
    eq(await role("textbox", names[2]).evaluate((e) => e.id), "data", `${locale}: textbox "${names[2]}"`);
    eq(await role("button", names[3]).evaluate((e) => e.id), "send", `${locale}: button "${names[3]}"`);
    eq(await a.getByRole("log").evaluate((e) => e.id), "conversation", `${locale}: the conversation's role`);
    const snap = await a.locator("main").ariaSnapshot();
    check(snap.includes(`textbox "${names[2]}"`), `${locale}: accessibility tree of main: ${snap}`);
  }
});

test("en-US locale: English labels and lang=en", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "en", locale: "en-US" });
  eq(await a.getAttribute("html", "lang"), "en", "<html lang>");
  eq(await a.title(), "chat.h · Deno chat app", "title");
  const labels = () => a.evaluate(() => ({
    h1: document.querySelector("h1").textContent,
    join: [document.querySelector("#login h2").textContent, document.querySelector("label[for=name]").textContent, document.querySelector("#login button").textContent],
    online: document.querySelector("aside h2 span").textContent,
    message: [document.querySelector("label[for=data]").textContent, document.getElementById("data").placeholder, document.getElementById("send").textContent],
    status: document.getElementById("status").textContent,
  }));
  eq(await labels(), {
    h1: "🦕 chat.h · Deno chat app", join: ["Join the chat", "Your name", "Join"], online: "Online",
    message: ["Message", "Send a message", "Send"], status: "Offline",
  }, "labels");
  const cjk = await a.evaluate(() => document.body.innerText.match(/[\u3000-\u9fff\uff00-\uffef]+/g));
  eq(cjk, null, "Chinese text left in the English page");
  await join(a, "Ann");
  eq(await a.textContent("#status"), "Connected · Ann", "status line");
  eq(await a.textContent("#alone"), "No one else is here yet", "alone line");
  eq(await a.$eval("#conversation", (e) => getComputedStyle(e, "::before").content), '"No messages yet"', "empty conversation");
});

test("zh-CN locale: the tutorial's Chinese labels", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "zh", locale: "zh-CN" });
  eq(await a.getAttribute("html", "lang"), "zh-CN", "<html lang>");
  eq(await a.title(), "chat.h · Deno 聊天应用程序", "title");
  const labels = await a.evaluate(() => ({
    h1: document.querySelector("h1").textContent,
    join: [document.querySelector("#login h2").textContent, document.querySelector("label[for=name]").textContent, document.querySelector("#login button").textContent],
    online: document.querySelector("aside h2 span").textContent,
    message: [document.querySelector("label[for=data]").textContent, document.getElementById("data").placeholder, document.getElementById("send").textContent],
    status: document.getElementById("status").textContent,
  }));
  eq(labels, {
    h1: "🦕 chat.h · Deno 聊天应用程序", join: ["加入聊天", "你的名字", "加入"], online: "在线用户",
    message: ["消息", "发送消息", "发送"], status: "未连接",
  }, "labels");
  await join(a, "小明");
  eq(await a.textContent("#status"), "已连接 · 小明", "status line");
  eq(await a.textContent("#alone"), "还没有其他人", "alone line");
});

// --- issue 13: two tabs, and every refusal in the page's own words ----------------------------------

test("two tabs of one browser profile both join: the second suggests a name of its own; a reload keeps each tab's name", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "tab 1", locale: "en-US" });
  await join(a, "Alice");
  const b = await t.page(srv, { label: "tab 2", context: a.context() });
  await until(b, "tab 2 suggests a name other than tab 1's", () => document.getElementById("name").value === "Alice 2",
    undefined, { show: () => b.locator("#name").inputValue() });
  await b.locator("#name").press("Enter"); // the suggestion, as it stands
  await waitState(b, "connected", "tab 2");
  for (const [p, n] of [[a, "tab 1"], [b, "tab 2"]]) await waitUsers(p, ["Alice", "Alice 2"], `${n}'s list`);
  await send(b, "from tab 2");
  eq((await waitMessages(a, 1, "tab 1's conversation")).map((m) => `${m.user}: ${m.text}`), ["Alice 2: from tab 2"], "tab 1's conversation");
  // a third tab starts from the last name chosen, which tab 2 holds
  const c = await t.page(srv, { label: "tab 3", context: a.context() });
  await until(c, "tab 3 suggests a free name", () => document.getElementById("name").value === "Alice 3",
    undefined, { show: () => c.locator("#name").inputValue() });
  await c.close();
  // a reload keeps the tab's own name
  await b.reload();
  await ready(b);
  await waitUsers(a, ["Alice"], "tab 1's list after tab 2 reloaded");
  eq(await b.locator("#name").inputValue(), "Alice 2", "tab 2's name field after a reload");
  await b.locator("#name").press("Enter");
  await waitUsers(a, ["Alice", "Alice 2"], "tab 1's list after tab 2 joined again");
  await a.reload();
  await ready(a);
  eq(await a.locator("#name").inputValue(), "Alice", "tab 1's name field after a reload");
});

test("an English page explains a taken name in English (not the server's Chinese) and its suggestion joins", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B", locale: "en-US" });
  await join(a, "Alice");
  await b.locator("#name").fill("Alice");
  await b.locator("#name").press("Enter");
  await until(b, "B shows why", () => document.getElementById("why").textContent !== "", undefined, { show: () => notice(b) });
  const why = await b.textContent("#why");
  eq(why, "The name “Alice” is already taken. How about “Alice 2”?", "reason shown to B");
  check(!CJK.test(why), `Chinese in the English page's reason: ${why}`);
  eq(await state(b), "idle", "B's state");
  await b.locator("#name").press("Enter");
  await waitUsers(a, ["Alice", "Alice 2"], "A's list");
});

// Every close the server documents, from a stand-in server (routeWebSocket), in both languages.
test("every close reason the server gives is said in the page's own words (en, zh); an unknown one as the server wrote it", async (t) => {
  const srv = await t.server();
  const RETRY = { en: /^Trying again in \d+ s\.$/, zh: /^\d+ 秒后重试$/ };
  const cases = [ // code, reason, where the page says it, English, Chinese
    [1008, "用户名 Kay 已被占用", "why", "The name “Kay” is already taken. How about “Kay 2”?", "名字“Kay”已被占用，换成“Kay 2”如何？"],
    [1008, "username is missing", "why", "The server got no name.", "服务器没有收到名字"],
    [1008, "username is empty", "why", "Please enter a name", "请输入名字"],
    [1008, "username is too long (max 32 bytes)", "why", "That name is too long: at most 32 bytes (letters outside English take 2–4 each).", "名字太长：最多 32 字节（一个汉字占 3 字节）"],
    [1008, "username is not valid UTF-8", "why", "That name is not valid UTF-8 text.", "名字不是有效的 UTF-8 文本"],
    [1008, "username contains control characters", "why", "A name cannot contain control characters.", "名字不能包含控制字符"],
    [1008, "username refused", "why", "The server does not accept this name. Please pick another one.", "服务器不接受这个名字，请换一个"],
    [1008, "username is reserved", "why", "This name is reserved by the server. Please pick another one.", "这个名字被服务器保留，请换一个"],
    [1008, "too many messages", "notice", "You sent messages too fast, so the server closed the connection.", "你发送得太快，服务器断开了连接"],
    [1009, "message too big", "notice", "The server refused that message as too long; the text is back in the box.", "服务器因消息太长拒绝了它，文字已放回输入框"],
    [1013, "room is full (1 clients at most)", "notice", "The room is full.", "聊天室已满"],
    [1001, "server shutting down", "notice", "The server is shutting down or restarting.", "服务器正在关闭或重启"],
    [1001, "no response to ping", "notice", "The connection went quiet and the server closed it.", "连接没有响应，服务器关闭了它"],
    [1008, "you are not on the list", "why", "you are not on the list", "you are not on the list"],
    [4000, "something new", "notice", "something new", "something new"],
  ];
  let now = cases[0];
  const standIn = (page) => page.routeWebSocket(/start_web_socket/, (ws) => ws.close({ code: now[0], reason: now[1] }));
  for (const locale of ["en-US", "zh-CN"]) {
    const lang = locale.slice(0, 2);
    const a = await t.page(srv, { label: locale, locale, before: standIn });
    for (const c of cases) {
      now = c;
      const [code, reason, where, en, zh] = c, want = lang === "en" ? en : zh;
      await a.reload();
      await ready(a);
      await a.locator("#name").fill("Kay");
      await a.locator("#name").press("Enter");
      const sel = where === "why" ? "#why" : "#notice-text";
      await until(a, `${locale}, close ${code} "${reason}": the page says why`, (s) => document.querySelector(s).textContent !== "", sel,
        { show: () => notice(a) });
      eq(await a.textContent(sel), want, `${locale}, close ${code} "${reason}"`);
      if (where === "why") {
        check(await a.locator("#join").isVisible(), `${locale}, ${reason}: the name form is not shown`);
      } else {
        check(await a.locator("#notice").isVisible(), `${locale}, ${reason}: the notice is not visible`);
        await until(a, `${locale}, ${reason}: when the page tries again`, (re) => new RegExp(re).test(document.getElementById("countdown").textContent),
          RETRY[lang].source, { show: () => notice(a) });
      }
    }
  }
});

// --- never silent -------------------------------------------------------------------------------------

// Needs the server's 1013 close for a full room (an older server answers the upgrade with 503,
// which a page cannot see: the page then says it cannot reach the server, and this test fails).
test("a full room (-c 1) is explained with a countdown; the page keeps trying and gets in when there is room", async (t) => {
  t.allow(WS_DOWN); // an older server's 503
  const srv = await t.server({ args: ["-c", "1"] });
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B", locale: "en-US" });
  await join(a, "Alice");
  await b.locator("#name").fill("Bob");
  await b.locator("#name").press("Enter");
  const full = () => {
    const text = document.getElementById("notice-text").textContent, when = document.getElementById("countdown").textContent;
    return !document.getElementById("notice").hidden && text === "The room is full." && /^Trying again in \d+ s\.$/.test(when);
  };
  await until(b, "B says the room is full and when it tries again", full, undefined, { show: () => notice(b) });
  check((await state(b)) !== "connected", "B says it is connected");
  check(await b.locator("#join").isHidden(), "B was asked for another name");
  await poll("B tried again", () => b.sockets.length >= 3, { timeout: 2 * WAIT, show: () => b.sockets.length });
  await until(b, "B still says the room is full", full, undefined, { show: () => notice(b) });
  await a.close();
  await until(b, "B got in once Alice left", () => document.body.dataset.s === "connected", undefined,
    { timeout: 2 * WAIT, show: () => notice(b) });
  await waitUsers(b, ["Bob"], "B's list");
  check(await b.locator("#notice").isHidden(), "the notice stayed after B got in");
});

test("a server the page cannot reach is said so with a countdown, never only \"Connecting…\"; the page gets in once it can", async (t) => {
  t.allow(WS_DOWN);
  const srv = await t.server();
  const relay = await t.relay(srv);
  const a = await t.page(relay, { label: "A", locale: "en-US" });
  relay.block(true);
  const before = relay.accepted();
  await a.locator("#name").fill("Alice");
  await a.locator("#name").press("Enter");
  const said = () => !document.getElementById("notice").hidden
    && document.getElementById("notice-text").textContent === "The server cannot be reached, or it refuses the connection."
    && /^Trying again in \d+ s\.$|^Trying again…$/.test(document.getElementById("countdown").textContent);
  await until(a, "A says it cannot reach the server", said, undefined, { show: () => notice(a) });
  await poll("A keeps trying", () => relay.accepted() >= before + 3, { timeout: 2 * WAIT, show: () => relay.accepted() - before });
  await until(a, "A still says it cannot reach the server", said, undefined, { show: () => notice(a) });
  relay.block(false);
  await until(a, "A got in", () => document.body.dataset.s === "connected", undefined, { timeout: 2 * WAIT, show: () => notice(a) });
  check(await a.locator("#notice").isHidden(), "the notice stayed after A got in");
});

// what the page sends: the text and its cid (24 hex digits)
const frameBytes = (text) => Buffer.byteLength(JSON.stringify({ event: "send-message", message: text, cid: "0".repeat(24) }));

// Needs the server's welcome with its limits.
test("a message over the server's limit (from its welcome) stays in the input with the reason and is not sent; one that just fits is", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await poll("A got the server's welcome with its limits", () => welcomeLimits(a)?.max_message > 0,
    { show: () => a.sockets.map((s) => s.received.slice(0, 2)) });
  const max = welcomeLimits(a).max_message;
  // quotes and CJK: the page must count the encoded frame, not the characters
  let over = "";
  while (frameBytes(over) <= max) over += "名\"";
  const sockets = a.sockets.length, sent = a.sockets.at(-1).sent.length;
  await a.locator("#data").fill(over);
  await a.locator("#data").press("Enter");
  await until(a, "A explains", () => /too long/.test(document.getElementById("notice-text").textContent), undefined, { show: () => notice(a) });
  const fmt = (n) => n.toLocaleString("en-US");
  eq(await a.textContent("#notice-text"), `This message is too long: ${fmt(frameBytes(over))} bytes, the server takes at most ${fmt(max)}.`, "A's explanation");
  eq((await a.locator("#data").inputValue()) === over, true, "A's input still holds the message");
  eq([a.sockets.length, a.sockets.at(-1).sent.length, await state(a)], [sockets, sent, "connected"], "sockets, frames sent, state");
  // exactly the limit goes through
  const fits = "x".repeat(max - frameBytes(""));
  await send(a, fits);
  check(await a.locator("#notice").isHidden(), "the explanation stays after a message that fits");
  await until(b, "B gets the message that just fits", (n) => [...document.querySelectorAll("#conversation p")].some((p) => p.textContent.length === n),
    fits.length, { show: () => notice(a) });
  eq([a.sockets.length, await state(a)], [sockets, "connected"], "A's sockets and state after sending");
});

// A stand-in for an older server (or the tutorial's): chat with the welcome frame taken out.
const withoutWelcome = (page) => page.routeWebSocket(/start_web_socket/, (ws) => {
  const server = ws.connectToServer();
  server.onMessage((m) => {
    let d = null;
    try { d = JSON.parse(String(m)); } catch {}
    if (d?.event !== "welcome") ws.send(m);
  });
  server.onClose((code, reason) => ws.close({ code, reason }));
});

test("against a server without the welcome, the page enforces no limit of its own: a message the server finds too big comes back, explained", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US", before: withoutWelcome }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await send(a, "small first");
  const big = "y".repeat(70_000); // over chat's default of 65,536 bytes: only the server says so
  await a.locator("#data").fill(big);
  await a.locator("#data").press("Enter");
  await until(a, "A explains", () => document.getElementById("notice-text").textContent === "The server refused that message as too long; the text is back in the box.",
    undefined, { show: () => notice(a) });
  eq((await a.locator("#data").inputValue()) === big, true, "A's input holds the message again");
  await until(a, "A is back", () => document.body.dataset.s === "connected", undefined, { timeout: 2 * WAIT, show: () => notice(a) });
  await waitUsers(b, ["Bob", "Alice"], "B's list");
  await send(a, "still here");
  const got = await waitMessages(b, 2, "B's conversation");
  eq(got.map((m) => m.text), ["small first", "still here"], "B's conversation");
});

test("the tutorial's own page works against chat.h beside ours (the server's additions ignored)", async (t) => {
  const srv = await t.server();
  // the tutorial's index.html and app.js (tests/e2e/tutorial/, as the Deno tutorial has them), from
  // the same origin as the WebSocket they open
  const file = (f) => readFileSync(path.join(HERE, "tutorial", f));
  const front = await t.front(srv, {
    "/": ["text/html; charset=UTF-8", file("index.html")], "/public/app.js": ["text/javascript", file("app.js")],
    "/public/style.css": ["text/css", ""],
  });
  const tut = await t.page(front, { label: "tutorial", wait: false, before: (p) => p.on("dialog", (d) => d.accept("Tut")) });
  const b = await t.page(srv, { label: "B" });
  await join(b, "Bob");
  await waitUsers(b, ["Tut", "Bob"], "B's list");
  await waitUsers(tut, ["Tut", "Bob"], "the tutorial page's list");
  await tut.locator("#data").fill("hello from the tutorial");
  await tut.locator("#data").press("Enter");
  eq((await waitMessages(b, 1, "B's conversation")).map((m) => `${m.user}: ${m.text}`), ["Tut: hello from the tutorial"], "B's conversation");
  await send(b, "hi Tut");
  await until(tut, "the tutorial page shows B's message", () => [...document.querySelectorAll("#conversation p")].some((p) => p.textContent === "hi Tut"));
});

// --- reading a busy room ----------------------------------------------------------------------------

// n messages from one page as fast as it can send them
const burst = (page, n, prefix) => page.evaluate(([k, w]) => {
  const input = document.getElementById("data"), form = document.getElementById("form");
  for (let i = 1; i <= k; i++) { input.value = `${w} ${i}`; form.requestSubmit(); }
}, [n, prefix]);
// the newest message is wholly inside the conversation's box and the window
const LAST_IN_VIEW = (height) => {
  if (height && innerHeight !== height) return false;
  const log = document.getElementById("conversation"), last = log.lastElementChild;
  if (!last) return false;
  const r = last.getBoundingClientRect(), box = log.getBoundingClientRect();
  return r.top >= box.top - 1 && r.bottom <= box.bottom + 1 && r.bottom <= innerHeight + 1;
};

test("scrolled up, a new message shows a \"new messages\" button instead of moving the view; the button brings the newest into view", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await burst(b, 40, "line");
  await waitMessages(a, 40, "A's conversation");
  await until(a, "A follows the conversation to the newest", LAST_IN_VIEW);
  check(await a.locator("#jump").isHidden(), "the button shows while A is at the bottom");
  await a.locator("#conversation").evaluate((e) => { e.scrollTop = 0; });
  await send(b, "news while reading");
  await waitMessages(a, 41, "A's conversation");
  await until(a, "A shows the new-messages button", () => !document.getElementById("jump").hidden);
  eq(await a.locator("#conversation").evaluate((e) => e.scrollTop), 0, "A's view moved");
  eq(await a.textContent("#jump"), "New messages ↓", "the button's text");
  await a.locator("#jump").click();
  await until(a, "the newest message is in view", LAST_IN_VIEW);
  check(await a.locator("#jump").isHidden(), "the button stays after it was used");
  await send(b, "and more");
  await waitMessages(a, 42, "A's conversation");
  await until(a, "at the bottom again, A follows by itself", LAST_IN_VIEW);
  check(await a.locator("#jump").isHidden(), "the button shows while A is at the bottom");
});

const setHidden = (page, hidden) => page.evaluate((h) => {
  if (h) {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  } else {
    delete document.visibilityState; // back to Document.prototype's
    delete document.hidden;
  }
  document.dispatchEvent(new Event("visibilitychange"));
}, hidden);

test("while the tab is hidden the title counts unread messages from others; seeing the tab clears it", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US" }), b = await t.page(srv, { label: "B" });
  const title = "chat.h · Deno chat app";
  await join(a, "Alice");
  await join(b, "Bob");
  await send(b, "seen");
  await waitMessages(a, 1, "A's conversation");
  eq(await a.title(), title, "title while visible");
  await setHidden(a, true);
  await send(b, "one");
  await send(b, "two");
  await until(a, "A's title counts 2", (w) => document.title === w, `(2) ${title}`, { show: () => a.title() });
  await setHidden(a, false);
  await until(a, "A's title without a count", (w) => document.title === w, title, { show: () => a.title() });
  await send(b, "three");
  await waitMessages(a, 4, "A's conversation");
  eq(await a.title(), title, "title after a message while visible");
});

test("when the viewport shrinks (a phone keyboard opens) the conversation stays at the bottom", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "phone", device: PHONE }), b = await t.page(srv, { label: "B" });
  await join(a, "Phone");
  await join(b, "Bob");
  await burst(b, 30, "message");
  await waitMessages(a, 30, "phone's conversation");
  await until(a, "the phone shows the newest message", LAST_IN_VIEW);
  for (const height of [330, 667, 400]) {
    await a.setViewportSize({ width: 375, height });
    await until(a, `the newest message in view at 375x${height}`, LAST_IN_VIEW, height, {
      show: () => a.evaluate(() => { const l = document.getElementById("conversation"); return [innerHeight, l.scrollTop, l.scrollHeight, l.clientHeight]; }),
    });
  }
});

test("user list: a 64-character name ends in an ellipsis, whole on hover and keyboard focus; it counts who is online; the phone strip shows it scrolls", async (t) => {
  const srv = await t.server();
  const p = await t.page(srv, { label: "phone", device: PHONE, locale: "en-US" });
  await join(p, "Pat");
  const mask = () => p.$eval("aside", (e) => getComputedStyle(e).maskImage);
  eq(await mask(), "none", "the strip's edge with nothing to scroll");
  const a = await t.page(srv, { label: "A", locale: "en-US" });
  await join(a, "Ann");
  const long = "Maximilian".repeat(6) + "Wolf"; // 64 characters
  const b = await t.page(srv, { label: "B" });
  await join(b, long);
  await waitUsers(a, ["Pat", "Ann", long], "A's list");
  eq(await a.textContent("#count"), "3", "A's count of users online");
  const look = await a.$$eval("#users li", (l) => l.map((li) => {
    const s = li.firstElementChild;
    return { cut: s.scrollWidth > s.clientWidth, overflow: getComputedStyle(s).textOverflow, title: li.title, focusable: li.hasAttribute("tabindex") && li.tabIndex === 0 };
  }));
  eq(look[2], { cut: true, overflow: "ellipsis", title: long, focusable: true }, "the long name");
  eq(look[1], { cut: false, overflow: "ellipsis", title: "Ann", focusable: false }, "a short name");
  // the keyboard reaches it (the first thing Tab finds from the top) and shows it whole
  await a.locator("h1").click();
  await a.keyboard.press("Tab");
  eq(await a.evaluate(() => document.activeElement.title), long, "focused after one Tab");
  check(await a.$eval("#users li:nth-child(3) span", (s) => s.scrollWidth <= s.clientWidth), "the focused name is still cut");
  // the phone strip: a faded edge while names are off to the side, none at the end
  await waitUsers(p, ["Pat", "Ann", long], "phone's list");
  eq(await p.textContent("#count"), "3", "phone's count");
  await until(p, "the strip shows it scrolls", () => getComputedStyle(document.querySelector("aside")).maskImage !== "none");
  await p.$eval("aside", (e) => { e.scrollLeft = e.scrollWidth; });
  await until(p, "the strip scrolled to its end has no faded edge", () => getComputedStyle(document.querySelector("aside")).maskImage === "none");
});

test("http and https links are clickable (new tab, noopener noreferrer); other schemes and markup stay text", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  const texts = [
    "docs: https://example.com/a?b=1&c=(2). and http://ok.test/x, not javascript:alert(1) nor ftp://files.test or data:text/html,hi",
    "<a href=\"javascript:alert(1)\">x</a> https://e.test/\"onmouseover=alert(1) 看https://例子.测试/路径。",
  ];
  for (const s of texts) await send(b, s);
  await waitMessages(a, 2, "A's conversation");
  const links = await a.$$eval("#conversation p", (ps) => ps.map((p) => ({
    text: p.textContent,
    links: [...p.querySelectorAll("a")].map((l) => [l.getAttribute("href"), l.textContent, l.target, l.rel, l.attributes.length]),
    other: p.querySelectorAll(":not(a)").length,
  })));
  const l = (href, text) => [href, text, "_blank", "noopener noreferrer", 3];
  eq(links, [
    { text: texts[0], links: [l("https://example.com/a?b=1&c=(2)", "https://example.com/a?b=1&c=(2)"), l("http://ok.test/x", "http://ok.test/x")], other: 0 },
    { text: texts[1], links: [l("https://e.test/", "https://e.test/"), l("https://xn--fsqu00a.xn--0zwm56d/%E8%B7%AF%E5%BE%84", "https://例子.测试/路径")], other: 0 },
  ], "messages and their links");
});

// contrast of every visible text in the page against what is behind it (WCAG 2 ratios)
const contrasts = (page, sels) => page.evaluate((list) => {
  const rgba = (c) => { const v = (c.match(/[\d.]+/g) || []).map(Number); return v.length === 3 ? [...v, 1] : v.length === 4 ? v : [0, 0, 0, 0]; };
  const lum = (c) => c.slice(0, 3).map((v) => (v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const back = (el) => { for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor); if (c[3] === 1) return c; } return [255, 255, 255, 1]; };
  const out = [];
  for (const sel of list) for (const el of document.querySelectorAll(sel)) {
    if (!el.getClientRects().length || !el.textContent.trim()) continue;
    const bg = back(el), f = rgba(getComputedStyle(el).color);
    const fg = f.slice(0, 3).map((v, i) => v * f[3] + bg[i] * (1 - f[3]));
    const [x, y] = [lum(fg), lum(bg)].sort((p, q) => q - p);
    out.push({ sel, text: el.textContent.slice(0, 20), color: getComputedStyle(el).color, ratio: Math.round(((x + 0.05) / (y + 0.05)) * 100) / 100 });
  }
  return out;
}, sels);
const TEXTS = ["#conversation span", "#conversation p", "#conversation a", "#conversation time", "aside h2 span", "#count", "#users li span",
  "h1", "#status", "#data", "#send", "#notice-text"];

test("senders get their own colours, 4.5:1 against their bubble in the light and the dark scheme; all text readable in both", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US" });
  const names = ["Alice", "Bob", "Carol", "小明", "Dave", "Eve"];
  await join(a, names[0]);
  for (const n of names.slice(1)) {
    const p = await t.page(srv, { label: n });
    await join(p, n);
    await send(p, `hello from ${n}, see https://example.com/${n}`);
  }
  await send(a, "and me");
  await waitMessages(a, names.length, "A's conversation");
  for (const scheme of ["light", "dark"]) {
    await a.emulateMedia({ colorScheme: scheme });
    await until(a, `the ${scheme} scheme applies`, (dark) => (getComputedStyle(document.body).backgroundColor === "rgb(244, 245, 247)") !== dark,
      scheme === "dark", { show: () => a.evaluate(() => getComputedStyle(document.body).backgroundColor) });
    // the names are painted for the scheme they are seen in
    let all = [];
    await poll(`${scheme}: all text has 4.5:1`, async () => (all = await contrasts(a, TEXTS)).every((c) => c.ratio >= 4.5),
      { show: () => all.filter((c) => c.ratio < 4.5) });
    check(all.filter((c) => c.sel === "#conversation span").length === names.length, `${scheme}: names measured ${JSON.stringify(all)}`);
    const colours = await a.$$eval("#conversation > div:not(.me) span", (l) => l.map((s) => getComputedStyle(s).color));
    eq(new Set(colours).size, colours.length, `${scheme}: distinct sender colours ${JSON.stringify(colours)}`);
  }
});

test("Shift+Enter starts a new line, Enter sends; the keyboard focus is visible but light", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  const ring = (sel) => a.$eval(sel, (e) => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]);
  await a.keyboard.press("Tab");
  eq(await a.evaluate(() => document.activeElement.textContent), "加入", "focused after Tab from the name");
  eq(await ring("#login button"), ["solid", "2px"], "the Join button's focus ring");
  await a.keyboard.press("Shift+Tab");
  await join(a, "Alice");
  await join(b, "Bob");
  eq(await a.evaluate(() => document.activeElement.tagName), "TEXTAREA", "the message box");
  await a.keyboard.type("line one");
  await a.keyboard.press("Shift+Enter");
  await a.keyboard.type("line two");
  eq(await a.locator("#data").inputValue(), "line one\nline two", "A's input after Shift+Enter");
  await a.keyboard.press("Enter");
  eq((await waitMessages(b, 1, "B's conversation"))[0].text, "line one\nline two", "B's message");
  eq(await a.locator("#data").inputValue(), "", "A's input after Enter");
  await a.keyboard.press("Tab");
  eq(await a.evaluate(() => document.activeElement.id), "send", "focused after Tab from the message");
  eq(await ring("#send"), ["solid", "2px"], "the Send button's focus ring");
  // the mouse gives no ring
  await a.keyboard.press("Shift+Tab");
  await a.locator("#send").click();
  eq((await ring("#send"))[0], "none", "the Send button's ring after a click");
});

// --- the page's code -------------------------------------------------------------------------------------

test("a long-running tab keeps at most 500 messages in the page", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A" }), b = await t.page(srv, { label: "B" });
  await join(a, "Alice");
  await join(b, "Bob");
  await burst(b, 520, "m");
  await until(a, "A shows the newest 500", () => {
    const l = document.querySelectorAll("#conversation > div");
    return l.length === 500 && l[499].querySelector("p").textContent === "m 520";
  }, undefined, { show: () => a.evaluate(() => document.querySelectorAll("#conversation > div").length) });
  eq(await a.$eval("#conversation > div p", (p) => p.textContent), "m 21", "A's oldest message");
});

test("the page's script: strict comparisons only, and nothing kept on its WebSocket objects", async (t) => {
  const srv = await t.server();
  const src = await (await fetch(srv.url + "public/app.js")).text();
  const code = src.replace(/\/\*[^]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
  const loose = code.split("\n").filter((l) => /(^|[^=!<>])==(?!=)|!=(?!=)/.test(l));
  eq(loose, [], "lines of app.js with == or !=");
  const watch = (p) => p.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) { super(...args); window.__sockets.push(this); }
    };
  });
  const a = await t.page(srv, { label: "A", before: watch });
  await join(a, "Alice");
  await send(a, "hi");
  await waitMessages(a, 1, "A's conversation");
  eq(await a.evaluate(() => window.__sockets.map((s) => Object.keys(s))), [[]], "properties the page put on its WebSocket");
});

// Needs the server (example_main.c) to reserve the name "server".
test("a name the server reserves (\"server\") is refused in the page's words", async (t) => {
  const srv = await t.server();
  const a = await t.page(srv, { label: "A", locale: "en-US" });
  await a.locator("#name").fill("server");
  await a.locator("#name").press("Enter");
  await until(a, "A shows why", () => document.getElementById("why").textContent !== "", undefined, { show: () => state(a) });
  eq(await a.textContent("#why"), "This name is reserved by the server. Please pick another one.", "reason shown to A");
});

// ---------------------------------------------------------------------------------------------

const only = process.argv.slice(2);
const selected = only.length ? tests.filter((x) => only.some((s) => x.name.includes(s))) : tests;
let passed = 0, failed = 0;
const oneLine = (e) => String(e?.message ?? e).split("\n").filter((l) => l.trim())[0] ?? String(e);
const flat = (s) => s.replace(/\s*\n\s*/g, " ");

const setup = Number(process.versions.node.split(".")[0]) < 20
  ? `playwright-core needs Node.js 20 or newer, this is ${process.version}` : checkSetup();
let browser = null;
if (setup) {
  console.log(`FAIL setup: ${setup}`);
  failed++;
} else {
  try {
    browser = await launchBrowser();
  } catch (e) {
    console.log(`FAIL setup: Chromium did not start: ${oneLine(e)}`);
    failed++;
  }
}
const t0 = Date.now();
if (browser) {
  for (const { name, fn } of selected) {
    const t = new Ctx(browser);
    let timer;
    try {
      await Promise.race([
        fn(t),
        new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`test took over ${TEST_TIMEOUT} ms`)), TEST_TIMEOUT); }),
      ]);
      const bad = t.unexpected();
      if (bad.length) throw new Error(flat(bad.join("; ")));
      console.log(`ok ${name}`);
      passed++;
    } catch (e) {
      const more = t.unexpected();
      console.log(`FAIL ${name}: ${oneLine(e)}${more.length && !oneLine(e).includes(flat(more[0])) ? ` [also: ${flat(more.join("; "))}]` : ""}`);
      failed++;
    } finally {
      clearTimeout(timer);
      await t.close();
    }
  }
  await Promise.race([browser.close(), new Promise((r) => setTimeout(r, WAIT))]);
}
if (process.env.E2E_TIME) console.error(`e2e: ${selected.length} tests in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0); // stdout to a pipe or file is synchronous on Linux: nothing is lost
