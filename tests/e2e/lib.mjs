// Shared by run.mjs and screenshot.mjs: the real ./chat binary on an ephemeral loopback port,
// Debian's Chromium through playwright-core, and bounded waits on the page's own state.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHAT_BIN = process.env.CHAT_BIN
  ? path.resolve(process.env.CHAT_BIN)
  : path.resolve(HERE, "../../chat");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// every wait is bounded by this (generous: a loaded 2-core machine still makes it)
export const WAIT = Number(process.env.E2E_WAIT_MS) || 10_000;

// servers still running, killed if the runner dies
const live = new Set();
process.on("exit", () => { for (const p of live) p.kill("SIGKILL"); });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function spawnChat(port, args) {
  return new Promise((resolve, reject) => {
    const argv = ["-p", String(port), "-b", "127.0.0.1", "-q", ...args];
    const proc = spawn(CHAT_BIN, argv, { stdio: ["ignore", "pipe", "pipe"] });
    live.add(proc);
    let out = "", err = "", done = false;
    const exited = new Promise((r) => proc.once("exit", (code, sig) => { live.delete(proc); r(code ?? sig); }));
    const fail = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill("SIGKILL");
      reject(new Error(`${path.basename(CHAT_BIN)} ${argv.join(" ")}: ${why}${err.trim() ? ` (stderr: ${err.trim().split("\n").pop()})` : ""}`));
    };
    const timer = setTimeout(() => fail(`no "Listening at" line within ${WAIT} ms`), WAIT);
    proc.on("error", (e) => fail(e.message));
    exited.then((how) => fail(`exited (${how}) before listening`));
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d) => { err = (err + d).slice(-2000); });
    proc.stdout.setEncoding("utf8");
    // stdout is drained for the server's whole life (its join/leave lines), so it never blocks
    proc.stdout.on("data", (d) => {
      if (done) return;
      out += d;
      const m = /Listening at (https?):\/\/127\.0\.0\.1:(\d+)/.exec(out); // https: a TLS build with --cert
      if (!m) return;
      done = true;
      clearTimeout(timer);
      const port = Number(m[2]);
      resolve({
        proc, port, url: `${m[1]}://127.0.0.1:${port}/`, exited,
        // SIGTERM: graceful (close 1001 to everyone); SIGKILL: the process just vanishes
        async stop(signal = "SIGTERM") {
          if (proc.exitCode !== null || proc.signalCode !== null) return exited;
          proc.kill(signal);
          const t = setTimeout(() => proc.kill("SIGKILL"), WAIT);
          const how = await exited;
          clearTimeout(t);
          return how;
        },
      });
    });
  });
}

// Starts Debian's mosquitto (the MQTT broker of "More than one board") on a free loopback port,
// with its own configuration in a temporary directory; close() stops it and removes the directory.
export async function startBroker() {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const os = await import("node:os");
  const dir = mkdtempSync(path.join(os.tmpdir(), "chat-e2e-mqtt-"));
  const port = await new Promise((resolve, reject) => {
    const s = net.createServer().once("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  // as root mosquitto would become user mosquitto, who cannot write in this directory
  const root = typeof process.getuid === "function" && process.getuid() === 0 ? "user root\n" : "";
  writeFileSync(path.join(dir, "mosquitto.conf"),
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n${root}`);
  const proc = spawn("mosquitto", ["-c", path.join(dir, "mosquitto.conf")], { stdio: "ignore" });
  live.add(proc);
  const exited = new Promise((r) => proc.once("exit", () => { live.delete(proc); r(); }));
  proc.once("error", () => {});
  const until = Date.now() + WAIT;
  for (;;) { // up once it accepts a connection
    const up = await new Promise((r) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); r(true); }).once("error", () => r(false));
    });
    if (up) break;
    if (Date.now() > until || proc.exitCode !== null) {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error("mosquitto did not start (apt-get install mosquitto)");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: (prefix) => `mqtt://127.0.0.1:${port}/${prefix}`,
    async close() {
      proc.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Starts ./chat on 127.0.0.1 (port 0: a free one). A fixed port may still be held for a moment
// by the process that just died, so that case retries, within WAIT.
export async function startChat({ port = 0, args = [] } = {}) {
  const until = Date.now() + WAIT;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await spawnChat(port, args);
    } catch (e) {
      if (!port || Date.now() + delay > until) throw e;
      await new Promise((r) => setTimeout(r, delay)); // back-off between bind attempts
    }
  }
}

export function checkSetup() {
  if (!existsSync(CHAT_BIN)) return `no chat binary at ${CHAT_BIN} (run make, or set CHAT_BIN)`;
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  return null;
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

// Waits (bounded) until fn(arg) is truthy in the page; on time-out says what was awaited and,
// if `show` is given, what the page had instead.
export async function until(page, what, fn, arg, { timeout = WAIT, show } = {}) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    let got = "";
    if (show) got = `; got ${JSON.stringify(await show().catch((x) => `? (${x.message.split("\n")[0]})`))}`;
    throw new Error(`${what}: not within ${timeout} ms${got}${/Timeout/.test(e.message) ? "" : ` (${e.message.split("\n")[0]})`}`);
  }
}

export const users = (page) => page.$$eval("#users li", (l) => l.map((li) => li.textContent));
export const messages = (page) => page.$$eval("#conversation > div", (l) => l.map((d) => ({
  user: d.querySelector("span").textContent,
  text: d.querySelector("p").textContent,
  me: d.classList.contains("me"),
})));
export const state = (page) => page.evaluate(() => document.body.dataset.s);

export function waitUsers(page, want, what = "user list", timeout) {
  return until(page, `${what} is ${JSON.stringify(want)}`,
    (w) => JSON.stringify([...document.querySelectorAll("#users li")].map((li) => li.textContent)) === w,
    JSON.stringify(want), { timeout, show: () => users(page) });
}

// until the conversation holds at least n messages; returns them all
export async function waitMessages(page, n, what = "conversation") {
  await until(page, `${what} has ${n} messages`,
    (k) => document.querySelectorAll("#conversation > div").length >= k, n,
    { show: async () => (await messages(page)).map((m) => `${m.user}: ${m.text}`) });
  return messages(page);
}

export async function waitState(page, s, what = "page") {
  await until(page, `${what} is ${s}`, (x) => document.body.dataset.s === x, s,
    { show: () => page.evaluate(() => `${document.body.dataset.s} (${document.getElementById("status").textContent})`) });
}

// the page's script has run: the status line is filled and the name form is up
export function ready(page) {
  return until(page, "the page script ran", () => document.body.dataset.s && document.getElementById("status").textContent);
}

export async function join(page, name) {
  await page.locator("#name").fill(name);
  await page.locator("#name").press("Enter");
  await waitState(page, "connected", `page of ${name}`);
  await until(page, `${name} is in their own user list`,
    (n) => [...document.querySelectorAll("#users li")].some((li) => li.textContent === n), name,
    { show: () => users(page) });
}

export async function send(page, text, how = "enter") {
  await page.locator("#data").fill(text);
  if (how === "button") await page.locator("#send").click();
  else await page.locator("#data").press("Enter");
  // the page clears the input once the message is handed to the socket
  await until(page, `input cleared after sending ${JSON.stringify(text.slice(0, 40))}`,
    () => document.getElementById("data").value === "");
}

// A TCP relay on 127.0.0.1 in front of a server, to cut the browser's connections while the
// server keeps running. drop() closes both sides of every relayed connection (the server sees the
// client go at once); drop({ ghost: true }) closes only the browser's side and keeps the server's
// open and silent, as when a phone changes networks and the server has not noticed yet;
// release() then closes those. block(true) turns new connections away until block(false).
export function startRelay(targetPort) {
  return new Promise((resolve, reject) => {
    const pairs = new Set();
    let blocked = false, accepted = 0;
    const server = net.createServer((down) => {
      accepted++;
      if (blocked) return down.destroy();
      const up = net.connect(targetPort, "127.0.0.1");
      const pair = { down, up };
      pairs.add(pair);
      const end = () => { pairs.delete(pair); down.destroy(); up.destroy(); };
      down.on("error", end); up.on("error", end);
      down.on("close", () => { if (!pair.ghost) end(); });
      up.on("close", end);
      down.pipe(up); up.pipe(down);
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = server.address().port;
      resolve({
        port, url: `http://127.0.0.1:${port}/`,
        accepted: () => accepted,
        block(on) { blocked = on; },
        drop({ ghost = false } = {}) {
          for (const p of pairs) {
            if (p.ghost) continue;
            if (!ghost) { p.down.destroy(); p.up.destroy(); continue; }
            p.ghost = true;
            p.down.unpipe(p.up); p.up.unpipe(p.down);
            p.up.resume(); // the server's writes go nowhere
            p.down.destroy();
          }
        },
        release() { for (const p of pairs) if (p.ghost) p.up.destroy(); },
        close() {
          for (const p of pairs) { p.down.destroy(); p.up.destroy(); }
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

// Polls a condition in this process (e.g. a relay's count), bounded like the page waits.
export async function poll(what, fn, { timeout = WAIT, show } = {}) {
  const end = Date.now() + timeout;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeout} ms${show ? `; got ${JSON.stringify(await show())}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// An HTTP front on 127.0.0.1 that serves other pages' files itself (files: path -> [type, body])
// and passes WebSocket requests (/start_web_socket...) to a chat server: another page, such as
// the tutorial's own, from the same origin as the chat it talks to. Other paths: 204.
export function startFront(targetPort, files) {
  return new Promise((resolve, reject) => {
    const socks = new Set();
    const server = net.createServer((down) => {
      socks.add(down);
      down.on("close", () => socks.delete(down));
      down.on("error", () => down.destroy());
      let head = Buffer.alloc(0);
      const onData = (d) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        down.off("data", onData);
        const target = head.subarray(0, end).toString("latin1").split(" ")[1] || "/";
        if (target.startsWith("/start_web_socket")) {
          const up = net.connect(targetPort, "127.0.0.1", () => { up.write(head); down.pipe(up); up.pipe(down); });
          socks.add(up);
          up.on("close", () => { socks.delete(up); down.destroy(); });
          up.on("error", () => down.destroy());
          down.on("close", () => up.destroy());
          return;
        }
        const [type, body] = files[target.split("?")[0]] || ["text/plain", null];
        const b = body === null ? Buffer.alloc(0) : Buffer.from(body);
        down.end(`HTTP/1.1 ${body === null ? "204 No Content" : "200 OK"}\r\nContent-Type: ${type}\r\nContent-Length: ${b.length}\r\nConnection: close\r\n\r\n${b.toString("latin1")}`, "latin1");
      };
      down.on("data", onData);
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = server.address().port;
      resolve({
        port, url: `http://127.0.0.1:${port}/`,
        close() {
          for (const s of socks) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}
