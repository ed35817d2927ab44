// Screenshots of a realistic conversation against the real ./chat binary:
//   screenshot-desktop.png  1280x800, Alice in English
//   screenshot-phone.png    375x667, 小明 in Chinese
// A third user, Bob, chats from a context that is not photographed.
import path from "node:path";
import { statSync } from "node:fs";
import { HERE, DESKTOP, PHONE, checkSetup, launchBrowser, startChat, ready, join, send, waitUsers, waitMessages } from "./lib.mjs";

const problem = checkSetup();
if (problem) { console.error(`screenshot: ${problem}`); process.exit(1); }

const srv = await startChat();
const browser = await launchBrowser();
try {
  const open = async (device, locale) => {
    const ctx = await browser.newContext({ ...device, locale });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => { throw e; });
    await page.goto(srv.url);
    await ready(page);
    return page;
  };
  const alice = await open(DESKTOP, "en-US");
  const ming = await open(PHONE, "zh-CN");
  const bob = await open(DESKTOP, "en-US");
  await join(alice, "Alice");
  await join(bob, "Bob");
  await join(ming, "小明");
  for (const p of [alice, bob, ming]) await waitUsers(p, ["Alice", "Bob", "小明"]);

  const script = [
    [bob, "Morning! Is the new build on the router yet?"],
    [alice, "Yes — chat.h is up on the MIPS box, page and all 🎉"],
    [ming, "太好了！我在手机上也能聊天 👍"],
    [bob, "Feels instant over Wi-Fi. Reconnects by itself after a restart, too."],
    [alice, "小明, how does it look on your phone?"],
    [ming, "很清楚，中文和表情都没问题 🦕"],
  ];
  let n = 0;
  for (const [who, text] of script) {
    await send(who, text, who === bob ? "button" : "enter");
    n++;
    for (const p of [alice, bob, ming]) await waitMessages(p, n);
  }
  for (const p of [alice, ming]) await p.locator("#data").blur();

  const out = (f) => path.join(HERE, f);
  await alice.screenshot({ path: out("screenshot-desktop.png"), type: "png" });
  await ming.screenshot({ path: out("screenshot-phone.png"), type: "png", scale: "css" });
  for (const f of ["screenshot-desktop.png", "screenshot-phone.png"])
    console.log(`${path.relative(process.cwd(), out(f)) || f}: ${Math.round(statSync(out(f)).size / 1024)} KB`);
} finally {
  await browser.close();
  await srv.stop();
}
