// The page in Debian's Chromium over https:// and wss:// served by chat.h's own TLS (issue 16):
// ./chat-tls --cert --key with a self-signed certificate (ignoreHTTPSErrors), two users chat, one
// leaves; every request of the page is https, the socket is wss, nothing goes wrong in the page.
//   cd tests/e2e && CHAT_BIN=../../chat-tls node ../tls/e2e.mjs CERT KEY     (tests/tls/direct.sh)
// Last line: "N passed, M failed".
import { DESKTOP, checkSetup, launchBrowser, startChat, waitUsers, waitMessages, join, send } from "../e2e/lib.mjs";

const [cert, key] = process.argv.slice(2);
let passed = 0, failed = 0;
const setup = checkSetup();
if (setup || !cert || !key) {
  console.log(`FAIL setup: ${setup || "usage: e2e.mjs CERT KEY"}`);
  process.exit(1);
}
const browser = await launchBrowser();
const srv = await startChat({ args: ["--cert", cert, "--key", key] });
const problems = [], requests = [], sockets = [];
try {
  if (!srv.url.startsWith("https://")) throw new Error(`the server says ${srv.url}`);
  const pages = [];
  for (const name of ["alice", "bob"]) {
    const ctx = await browser.newContext({ ...DESKTOP, ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.on("console", (m) => { if (m.type() === "error") problems.push(`${name}: console: ${m.text()}`); });
    page.on("pageerror", (e) => problems.push(`${name}: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    page.on("requestfailed", (r) => problems.push(`${name}: ${r.url()} failed: ${r.failure()?.errorText}`));
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(srv.url);
    await join(page, name);
    pages.push(page);
  }
  await waitUsers(pages[0], ["alice", "bob"], "alice's list");
  await send(pages[1], "你好 over wss 🦕");
  for (const page of pages) {
    const got = await waitMessages(page, 1);
    const last = got[got.length - 1];
    if (last.user !== "bob" || last.text !== "你好 over wss 🦕") throw new Error(`got ${JSON.stringify(last)}`);
  }
  await pages[1].context().close();
  await waitUsers(pages[0], ["alice"], "alice's list after bob left");
  const plain = requests.filter((u) => !u.startsWith("https://"));
  if (plain.length) throw new Error(`requests not over https: ${plain.join(", ")}`);
  if (!sockets.length || sockets.some((u) => !u.startsWith("wss://"))) throw new Error(`sockets: ${sockets.join(", ")}`);
  if (problems.length) throw new Error(problems.join("; "));
  console.log(`ok the page over https, its socket over wss (${requests.length} requests, ${sockets.length} sockets): join, a message both ways, a leave`);
  passed++;
} catch (e) {
  console.log(`FAIL the page over https and wss: ${String(e?.message ?? e).split("\n")[0]}`);
  failed++;
} finally {
  await srv.stop();
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
