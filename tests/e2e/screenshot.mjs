// Screenshots of a realistic conversation against the real ./chat binary:
//   screenshot-desktop.png  1280x800, Alice in English
//   screenshot-phone.png    375x667, 小明 in Chinese
//   screenshot-dark.png     1280x800, Bob in English with the dark colour scheme
// Written to a scratch folder (SCREENSHOT_DIR, else a new one under the system's temporary
// directory), printed at the end; SCREENSHOT_UPDATE=1 writes the committed ones beside this file.
import os from "node:os";
import path from "node:path";
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { HERE, DESKTOP, PHONE, checkSetup, launchBrowser, startChat, ready, join, send, waitUsers, waitMessages } from "./lib.mjs";

const problem = checkSetup();
if (problem) { console.error(`screenshot: ${problem}`); process.exit(1); }

const update = /^(1|yes|true)$/i.test(process.env.SCREENSHOT_UPDATE || "");
const dir = update ? HERE
  : process.env.SCREENSHOT_DIR ? (mkdirSync(process.env.SCREENSHOT_DIR, { recursive: true }), path.resolve(process.env.SCREENSHOT_DIR))
  : mkdtempSync(path.join(os.tmpdir(), "chat-screenshots-"));

const srv = await startChat();
const browser = await launchBrowser();
try {
  const open = async (device, locale, colorScheme = "light") => {
    const ctx = await browser.newContext({ ...device, locale, colorScheme });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => { throw e; });
    await page.goto(srv.url);
    await ready(page);
    return page;
  };
  const alice = await open(DESKTOP, "en-US");
  const ming = await open(PHONE, "zh-CN");
  const bob = await open(DESKTOP, "en-US", "dark");
  await join(alice, "Alice");
  await join(bob, "Bob");
  await join(ming, "小明");
  for (const p of [alice, bob, ming]) await waitUsers(p, ["Alice", "Bob", "小明"]);

  const script = [
    [bob, "Morning! Is the new build on the router yet?"],
    [alice, "Yes — chat.h is up on the MIPS box, page and all 🎉"],
    [ming, "太好了！我在手机上也能聊天 👍"],
    [bob, "Feels instant over Wi-Fi. Reconnects by itself after a restart, too.\nNotes: https://example.com/chat-h/notes"],
    [alice, "小明, how does it look on your phone?"],
    [ming, "很清楚，中文和表情都没问题 🦕"],
  ];
  let n = 0;
  for (const [who, text] of script) {
    await send(who, text, who === bob ? "button" : "enter");
    n++;
    for (const p of [alice, bob, ming]) await waitMessages(p, n);
  }
  for (const p of [alice, bob, ming]) await p.locator("#data").blur();

  const shots = [
    ["screenshot-desktop.png", alice, {}],
    ["screenshot-phone.png", ming, { scale: "css" }],
    ["screenshot-dark.png", bob, {}],
  ];
  for (const [file, page, opts] of shots) {
    const out = path.join(dir, file);
    await page.screenshot({ path: out, type: "png", ...opts });
    console.log(`${update ? path.relative(process.cwd(), out) || file : out}: ${Math.round(statSync(out).size / 1024)} KB`);
  }
  if (!update) console.log(`screenshots in ${dir} (make screenshot UPDATE=1 replaces the committed ones)`);
} finally {
  await browser.close();
  await srv.stop();
}
