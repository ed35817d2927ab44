// chat.h client: join, chat, reconnect with backoff, and always say why when something goes wrong.
// The server's limits come from its welcome, never from here; text is inserted as text, never as HTML.
// Nothing is lost or doubled across drops: every message has the server's id, a reconnect asks for
// what came after the newest one seen (since) and takes the name back from its old connection
// (resume), and what the user sends waits in an outbox until its own broadcast comes back.
const $ = (id) => document.getElementById(id);
const zh = /^zh/i.test(navigator.language);
const num = (n) => n.toLocaleString(zh ? "zh-CN" : "en-US");
const T = zh ? {
  idle: "未连接", connecting: "连接中…", connected: "已连接", reconnecting: "重连中…",
  alone: "还没有其他人", empty: "还没有消息", you: "（你）", jump: "新消息 ↓", rename: "换个名字",
  blank: "请输入名字", missing: "服务器没有收到名字", utf8: "名字不是有效的 UTF-8 文本", control: "名字不能包含控制字符",
  taken: (n, alt) => `名字“${n}”已被占用，换成“${alt}”如何？`,
  takenHere: (n, alt) => `你已在另一个标签页中使用“${n}”，这里用“${alt}”如何？`,
  tooLong: (max) => `名字太长：最多 ${num(max)} 字节（一个汉字占 3 字节）`,
  refused: "服务器不接受这个名字，请换一个", reserved: "这个名字被服务器保留，请换一个",
  rate: (r) => `你发送得太快${r ? `（每秒最多 ${num(r)} 条）` : ""}，服务器断开了连接`,
  big: (b, max) => `消息太长：${num(b)} 字节，服务器最多接受 ${num(max)} 字节`,
  bigClosed: "服务器因消息太长拒绝了它，文字已放回输入框",
  full: "聊天室已满", unreachable: "无法连接服务器，或服务器拒绝了连接", lost: "连接已断开",
  ghost: (n) => `你之前的连接仍占用着“${n}”`, shutdown: "服务器正在关闭或重启", ping: "连接没有响应，服务器关闭了它",
  closed: (code) => `服务器关闭了连接（代码 ${code}）`, retryIn: (s) => `${s} 秒后重试`, retrying: "正在重试…",
  sending: "发送中…", gap: "部分消息可能缺失：服务器已不再保存你离开期间的全部消息", replaced: "这个聊天已在别处重新打开",
} : {
  idle: "Offline", connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…",
  alone: "No one else is here yet", empty: "No messages yet", you: " (you)", jump: "New messages ↓", rename: "Change name",
  blank: "Please enter a name", missing: "The server got no name.", utf8: "That name is not valid UTF-8 text.",
  control: "A name cannot contain control characters.",
  taken: (n, alt) => `The name “${n}” is already taken. How about “${alt}”?`,
  takenHere: (n, alt) => `You already use “${n}” in another tab. How about “${alt}” here?`,
  tooLong: (max) => `That name is too long: at most ${num(max)} bytes (letters outside English take 2–4 each).`,
  refused: "The server does not accept this name. Please pick another one.",
  reserved: "This name is reserved by the server. Please pick another one.",
  rate: (r) => `You sent messages too fast${r ? ` (at most ${num(r)} a second)` : ""}, so the server closed the connection.`,
  big: (b, max) => `This message is too long: ${num(b)} bytes, the server takes at most ${num(max)}.`,
  bigClosed: "The server refused that message as too long; the text is back in the box.",
  full: "The room is full.", unreachable: "The server cannot be reached, or it refuses the connection.",
  lost: "The connection was lost.", ghost: (n) => `Your previous connection still holds the name “${n}”.`,
  shutdown: "The server is shutting down or restarting.", ping: "The connection went quiet and the server closed it.",
  closed: (code) => `The server closed the connection (code ${code}).`, retryIn: (s) => `Trying again in ${s} s.`,
  retrying: "Trying again…", sending: "sending…",
  gap: "Some messages may be missing: the server no longer holds everything sent while you were away.",
  replaced: "This chat was opened again somewhere else.",
};

// The server's close reasons this page knows, said in its own words; any other is shown as the server wrote it.
const REASONS = [
  [1008, /^用户名 [^]* 已被占用$/, "taken"],
  [1008, /^username is missing$/, "missing"],
  [1008, /^username is empty$/, "blank"],
  [1008, /^username is too long \(max (\d+) bytes\)$/, "tooLong"],
  [1008, /^username is not valid UTF-8$/, "utf8"],
  [1008, /^username contains control characters$/, "control"],
  [1008, /^username refused/, "refused"],
  [1008, /^username is reserved/, "reserved"],
  [1008, /^too many messages$/, "rate"],
  [1009, /^/, "big"], // "message too big", or any other server's words for the standard code
  [1013, /^room is full/, "full"],
  [1001, /^server shutting down$/, "shutdown"],
  [1001, /^no response to ping$/, "ping"],
  [4001, /^/, "replaced"], // our session was taken over with our own resume token
];
const NAME_PROBLEMS = new Set(["taken", "missing", "blank", "tooLong", "utf8", "control", "refused", "reserved"]);
const MAX_SHOWN = 500;            // message nodes kept in the page; older ones go
const FIRST_RETRY_MS = 500, MAX_RETRY_MS = 10_000, STABLE_MS = 5_000; // backoff; reset after this long joined
const NEAR_BOTTOM_PX = 40;        // "at the bottom" for following new messages
const NAME_KEY = "chat.h name", LIMITS_KEY = "chat.h limits", OUTBOX_KEY = "chat.h outbox";

const log = $("conversation"), input = $("data"), nameIn = $("name"), form = $("form"), aside = document.querySelector("aside");
const encoder = new TextEncoder(), bytes = (s) => encoder.encode(s).length;
// HTML holds the Chinese labels, data-en* the English ones
if (!zh) {
  document.documentElement.lang = "en";
  for (const el of document.querySelectorAll("[data-en]")) el.textContent = el.dataset.en;
  input.placeholder = input.dataset.enPh;
}
const title = document.title;
$("alone").textContent = T.alone;
$("jump").textContent = T.jump;
$("notice-action").textContent = T.rename;
log.dataset.empty = T.empty; // shown by CSS while empty

const load = (store, key) => { try { return window[store].getItem(key); } catch { return null; } };
const save = (store, key, value) => { try { window[store].setItem(key, value); } catch {} };

let myName = "";          // the name this tab joins with
let joinedAs = "";        // the name this tab was in the room with and is reconnecting as ("" after a refusal)
let current = null;       // the connection being made or in use: { ws, opened, joined, joinedAt }
let attempt = 0;          // connection attempts since the last stable one (backoff exponent)
let unopened = 0;         // attempts in a row that failed before the socket opened
let retryTimer = 0, retryAt = 0, tickTimer = 0;
let limits = readLimits(parseJSON(load("sessionStorage", LIMITS_KEY))); // the server's, from its last welcome
let unsent = "";          // the last text handed to the socket, given back if the server finds it too big
let noticeKind = "";      // "connection": goes once joined; "sticky": stays until the next edit or send
let unread = 0;           // messages from others while the tab is hidden
let atBottom = true;      // the conversation follows new messages
let nameEdited = false;   // the user typed in the name field (suggestions no longer replace it)
const elsewhere = new Set(); // names other tabs of this browser are in the room with
let topId = 0;            // the newest message id seen: a reconnect asks for what came after it
let resumeToken = "";     // from the welcome: lets a reconnect take the name from our old connection
const seen = new Set();   // ids of the messages shown (the newest 2 * MAX_SHOWN), so none is shown twice
// what the user sent that has not come back yet, oldest first: { cid, text, at }; kept over a reload
let outbox = (() => { const o = parseJSON(load("sessionStorage", OUTBOX_KEY)); return Array.isArray(o) ? o.filter((e) => typeof e?.cid === "string" && typeof e.text === "string") : []; })();
let lastDay = "";         // the day of the newest message placed, for the separators between days
let queue = [];           // outbox entries still to go out on this connection, paced by pump()
let nextSendAt = 0, pumpTimer = 0;

function parseJSON(text) { try { return JSON.parse(text); } catch { return null; } }
const saveOutbox = () => save("sessionStorage", OUTBOX_KEY, JSON.stringify(outbox));

function readLimits(l) {
  if (!l || typeof l !== "object") return null;
  const n = (v) => (Number.isSafeInteger(v) && v > 0 ? v : 0); // 0: no limit, or not told
  return { max_message: n(l.max_message), max_name: n(l.max_name), max_rate: n(l.max_rate) };
}

function rememberLimits(l) {
  limits = l;
  save("sessionStorage", LIMITS_KEY, JSON.stringify(l));
}

function setState(s) {
  document.body.dataset.s = s;
  $("status").textContent = T[s] + (s === "connected" ? " · " + myName : "");
  // while reconnecting, what is sent waits in the outbox
  $("send").disabled = s !== "connected" && s !== "reconnecting";
}

// --- the notice above the input: why something failed, and when the page tries again -----------

function note(text, kind, action = null) {
  $("notice-text").textContent = text;
  $("notice").hidden = !text;
  noticeKind = text ? kind : "";
  $("notice-action").hidden = !action;
  $("notice-action").onclick = action;
}

function tick() {
  clearTimeout(tickTimer);
  let text = "";
  if (retryAt) {
    text = T.retryIn(Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)));
    tickTimer = setTimeout(tick, 250);
  } else if (current && !current.joined && noticeKind === "connection") text = T.retrying;
  $("countdown").textContent = text;
}

// --- the connection ------------------------------------------------------------------------------

function connect() {
  clearTimeout(retryTimer);
  retryAt = 0;
  setState(joinedAs ? "reconnecting" : "connecting");
  let query = "?username=" + encodeURIComponent(myName);
  if (topId) query += "&since=" + topId;
  if (resumeToken && joinedAs === myName) query += "&resume=" + encodeURIComponent(resumeToken);
  const url = new URL("/start_web_socket" + query, location.href);
  url.protocol = url.protocol.replace("http", "ws");
  const conn = { ws: new WebSocket(url), opened: false, joined: false, joinedAt: 0 };
  current = conn;
  tick();
  conn.ws.onopen = () => { conn.opened = true; };
  conn.ws.onmessage = (e) => { if (current === conn) receive(conn, e.data); };
  conn.ws.onclose = (e) => { if (current === conn) closed(conn, e.code, e.reason); };
}

function receive(conn, text) {
  const data = parseJSON(text);
  if (!data || typeof data !== "object") return;
  if (data.event === "welcome") {
    joined(conn);
    const l = readLimits(data.limits);
    if (l) rememberLimits(l);
    resumeToken = typeof data.resume === "string" ? data.resume : "";
    if (!topId && Number.isSafeInteger(data.id)) topId = data.id; // so even a quiet page can resume
    if (data.missing === true) note(T.gap, "sticky");
    // what has not come back yet goes again, with its cid: the server drops what it already said
    queue = outbox.slice();
    pump();
  } else if (data.event === "update-users" && Array.isArray(data.usernames)) {
    joined(conn);
    showUsers(data.usernames.map(String));
  } else if (data.event === "send-message") {
    const id = Number.isSafeInteger(data.id) && data.id > 0 ? data.id : 0;
    // the server's clock when it says (a replay shows when it was said), else ours
    const time = Number.isFinite(data.time) && Math.abs(data.time) < 8.64e15 ? data.time : Date.now();
    const m = { user: String(data.username), text: String(data.message ?? ""), time };
    if (id > topId) topId = id;
    const mine = m.user === myName && typeof data.cid === "string" ? outbox.findIndex((e) => e.cid === data.cid) : -1;
    if (mine >= 0) {
      queue = queue.filter((e) => e !== outbox[mine]); // already said: not again
      outbox.splice(mine, 1);
      saveOutbox();
    }
    if (id && seen.has(id)) return;
    if (id) {
      seen.add(id);
      if (seen.size > 2 * MAX_SHOWN) seen.delete(seen.values().next().value);
    }
    const pending = mine >= 0 ? log.querySelector(`:scope > .pending[data-cid="${CSS.escape(data.cid)}"]`) : null;
    if (pending) markSent(pending, m);
    else addMessage(m, data.replay !== true);
  } // anything else: a newer server's, ignored
}

// the server took the name: the welcome, or the first user list from a server without one
function joined(conn) {
  if (conn.joined) return;
  conn.joined = true;
  conn.joinedAt = Date.now();
  joinedAs = myName;
  unopened = 0;
  if (noticeKind === "connection") note("", "");
  setState("connected");
  tick();
  tabs?.postMessage({ here: myName, limits });
}

function closed(conn, code, reason) {
  current = null;
  unopened = conn.opened ? 0 : unopened + 1;
  const why = classify(code, reason);
  if (why.kind === "tooLong") rememberLimits({ ...(limits || readLimits({})), max_name: why.max });
  if (why.kind === "taken" && joinedAs === myName) {
    // our own dropped connection may still hold the name until the server notices: keep trying
    note(T.ghost(myName), "connection", () => { stop(); askName(""); });
    return retryLater();
  }
  if (NAME_PROBLEMS.has(why.kind) || (code === 1008 && why.kind === "unknown")) return askName(nameProblem(why, reason));
  if (conn.joined && Date.now() - conn.joinedAt > STABLE_MS) attempt = 0;
  if (why.kind === "replaced") {
    note(T.replaced, "sticky");
    return setState("idle");
  }
  if (why.kind === "big") {
    // the server will never take it: out of the outbox, back into the input
    const k = outbox.findIndex((e) => e.text === unsent);
    if (k >= 0) {
      log.querySelector(`:scope > .pending[data-cid="${CSS.escape(outbox[k].cid)}"]`)?.remove();
      outbox.splice(k, 1);
      saveOutbox();
    }
    if (!input.value) input.value = unsent;
    note(T.bigClosed, "sticky");
  } else if (why.kind === "rate") note(T.rate(limits?.max_rate), "sticky");
  else if (why.kind === "full") note(T.full, "connection");
  else if (why.kind === "shutdown" || why.kind === "ping") note(T[why.kind], "connection");
  else if (reason) note(reason, "connection");
  else if (unopened > 1 || (unopened && !joinedAs)) note(T.unreachable, "connection");
  else if (noticeKind !== "sticky") note(code === 1006 ? T.lost : T.closed(code), "connection");
  retryLater();
}

function classify(code, reason) {
  for (const [c, re, kind] of REASONS) {
    const m = code === c ? re.exec(reason) : null;
    if (m) return { kind, max: m[1] ? Number(m[1]) : 0 };
  }
  return { kind: "unknown", max: 0 };
}

function nameProblem(why, reason) {
  if (why.kind === "unknown") return reason || T.closed(1008);
  if (why.kind !== "taken") return typeof T[why.kind] === "function" ? T[why.kind](why.max) : T[why.kind];
  const alt = variant(myName);
  nameIn.value = alt;
  return (elsewhere.has(myName) ? T.takenHere : T.taken)(myName, alt);
}

// 0.5 s doubling to 10 s, jittered
function retryLater() {
  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt++) * (0.5 + Math.random() / 2);
  retryAt = Date.now() + delay;
  retryTimer = setTimeout(connect, delay);
  setState(joinedAs ? "reconnecting" : "connecting");
  tick();
}

function stop() {
  clearTimeout(retryTimer);
  retryAt = 0;
  const conn = current;
  current = null;
  conn?.ws.close();
  tick();
}

// --- two tabs of one browser: each its own name ------------------------------------------------------

const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("chat.h tabs") : null;
if (tabs) {
  tabs.onmessage = ({ data }) => {
    if (data?.ask && joinedAs) tabs.postMessage({ here: joinedAs, limits });
    if (typeof data?.gone === "string") elsewhere.delete(data.gone);
    if (typeof data?.here !== "string") return;
    elsewhere.add(data.here);
    if (!limits && readLimits(data.limits)) rememberLimits(readLimits(data.limits));
    // suggest a name of our own while the field holds one another tab uses
    if (!nameEdited && !$("join").hidden && nameIn.value.trim() === data.here) {
      nameIn.value = variant(data.here);
      if (document.activeElement === nameIn) nameIn.select();
    }
  };
  tabs.postMessage({ ask: true });
  addEventListener("pagehide", () => { if (joinedAs) tabs.postMessage({ gone: joinedAs }); });
}

// "Alice" -> "Alice 2" (or the next number no other tab of ours uses), within the server's name limit
function variant(name) {
  const m = /^(.*) (\d+)$/su.exec(name);
  const base = m ? m[1] : name;
  for (let k = m ? Number(m[2]) + 1 : 2; ; k++) {
    let chars = [...base], alt = `${base} ${k}`;
    while (limits?.max_name && bytes(alt) > limits.max_name && chars.length) alt = `${chars.slice(0, -1).join("")} ${k}`, chars.pop();
    if (!elsewhere.has(alt)) return alt.trim();
  }
}

// --- the user list ---------------------------------------------------------------------------------

function showUsers(list) {
  $("users").replaceChildren(...list.map((u) => {
    const li = $("user").content.firstElementChild.cloneNode(true);
    li.firstElementChild.textContent = u;
    li.title = u;
    li.dataset.name = u;
    if (u === myName) li.className = "me", li.dataset.you = T.you;
    return li;
  }));
  $("count").textContent = list.length;
  $("alone").hidden = list.length > 1;
  paintUsers();
  fitUsers();
}

// a shortened name can be reached with the keyboard, and shows in full while focused
function fitUsers() {
  for (const li of $("users").children) {
    if (li === document.activeElement) continue;
    const span = li.firstElementChild;
    if (span.scrollWidth > span.clientWidth) li.tabIndex = 0;
    else li.removeAttribute("tabindex");
  }
  aside.classList.toggle("more", aside.scrollWidth - aside.scrollLeft - aside.clientWidth > 1);
}
aside.addEventListener("scroll", fitUsers, { passive: true });

// --- sender colours: a hue from the name, as light or dark as the background needs for 4.5:1 ------

const colours = new Map(); // name + background -> colour
const backs = new Map();   // "me" / "other" / "list" -> background of that place in the current colour scheme
const darkScheme = matchMedia("(prefers-color-scheme: dark)");

function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => (v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const hsl = (h, s, l) => [0, 8, 4].map((n) => {
  const k = (n + h / 30) % 12;
  return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
});

function colourOf(name, back) {
  const key = name + "\n" + back;
  if (colours.has(key)) return colours.get(key);
  let hash = 0x811c9dc5; // FNV-1a
  for (const ch of name) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193);
  const hue = (hash >>> 0) % 360, bg = back.split(",").map(Number), dark = luminance(bg) < 0.3;
  let rgb = dark ? [255, 255, 255] : [0, 0, 0];
  for (let l = dark ? 0.6 : 0.45; l > 0 && l < 1; l += dark ? 0.025 : -0.025) {
    const c = hsl(hue, 0.7, l);
    if (contrast(c, bg) >= 4.6) { rgb = c; break; }
  }
  if (colours.size > 4 * MAX_SHOWN) colours.clear();
  colours.set(key, `rgb(${rgb.join(", ")})`);
  return colours.get(key);
}

function backOf(place, el) {
  if (!backs.has(place)) backs.set(place, (getComputedStyle(el).backgroundColor.match(/\d+(\.\d+)?/g) || [255, 255, 255]).slice(0, 3).join(","));
  return backs.get(place);
}

function paintMessage(div) {
  const span = div.firstElementChild;
  span.style.color = colourOf(span.textContent, backOf(div.classList.contains("me") ? "me" : "other", div));
}

function paintUsers() {
  for (const li of $("users").children) li.style.setProperty("--c", colourOf(li.dataset.name, backOf("list", aside)));
}

darkScheme.addEventListener("change", () => {
  backs.clear();
  for (const div of log.children) paintMessage(div);
  paintUsers();
});

// --- the conversation ------------------------------------------------------------------------------

const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
function toBottom() {
  log.scrollTop = log.scrollHeight;
  atBottom = true;
  $("jump").hidden = true;
}

// a message node: the sender, the time (or "sending…" while pending), the text
function messageNode(user, text) {
  const div = $("message").content.firstElementChild.cloneNode(true);
  const [span, , p] = div.querySelectorAll("span,time,p");
  span.textContent = user; // never innerHTML
  fillText(p, text);
  if (user === myName) div.className = "me";
  return div;
}

function stamp(div, time) {
  const when = new Date(time), el = div.querySelector("time");
  el.dateTime = when.toISOString();
  el.textContent = when.toTimeString().slice(0, 5); // local HH:MM
}

// Confirmed messages go in id order, before the pending ones (which stay at the bottom); a day
// that is not today, or a new day, starts with its date.
function place(div, time) {
  const first = log.querySelector(":scope > .pending");
  const when = new Date(time), day = when.toDateString();
  if (day !== lastDay && (lastDay || day !== new Date().toDateString())) {
    const h = document.createElement("h3");
    h.textContent = when.toLocaleDateString(zh ? "zh-CN" : "en-US", { weekday: "short", year: "numeric", month: "short", day: "numeric" });
    log.insertBefore(h, first);
  }
  lastDay = day;
  log.insertBefore(div, first);
  // at most MAX_SHOWN messages, and no date left without its messages
  while (log.querySelectorAll(":scope > div").length > MAX_SHOWN) {
    log.querySelector(":scope > div").remove();
    while (log.firstElementChild?.tagName === "H3" && log.firstElementChild.nextElementSibling?.tagName !== "DIV") log.firstElementChild.remove();
  }
}

function addMessage(m, live) {
  const follow = nearBottom();
  const div = messageNode(m.user, m.text);
  stamp(div, m.time);
  place(div, m.time);
  paintMessage(div);
  if (follow || (live && m.user === myName)) toBottom();
  else $("jump").hidden = false;
  if (live && m.user !== myName && document.visibilityState === "hidden") unread++, showUnread();
}

// what the user sent, shown at once and marked sent when its own broadcast comes back
function addPending(e) {
  const div = messageNode(myName, e.text);
  div.classList.add("pending");
  div.dataset.cid = e.cid;
  div.querySelector("time").textContent = T.sending;
  log.append(div);
  paintMessage(div);
  toBottom();
}

function markSent(div, m) {
  div.classList.remove("pending");
  delete div.dataset.cid;
  stamp(div, m.time);
  place(div, m.time);
  if (atBottom) toBottom();
}

// http and https links become links (built as nodes); everything else stays text
const LINK = /\bhttps?:\/\/[^\s<>"]+/gi;
function fillText(p, text) {
  let done = 0;
  for (const m of text.matchAll(LINK)) {
    let href = m[0].replace(/[.,;:!?'"»」』。，；：！？、]+$/u, "");
    while (href.endsWith(")") && href.split("(").length < href.split(")").length) href = href.slice(0, -1);
    let url = null;
    try { url = new URL(href); } catch {}
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
    const a = document.createElement("a");
    a.href = url.href;
    a.textContent = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    p.append(text.slice(done, m.index), a);
    done = m.index + href.length;
  }
  p.append(text.slice(done));
}

function showUnread() {
  document.title = unread ? `(${unread}) ${title}` : title;
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") unread = 0, showUnread();
});

log.addEventListener("scroll", () => {
  atBottom = nearBottom();
  if (atBottom) $("jump").hidden = true;
}, { passive: true });
$("jump").onclick = () => { toBottom(); input.focus(); };
// a phone keyboard (or any resize) shrinks the conversation: stay at the bottom if we were there
const keepBottom = () => { if (atBottom) toBottom(); fitUsers(); };
new ResizeObserver(keepBottom).observe(log);
window.visualViewport?.addEventListener("resize", keepBottom);

// --- sending -------------------------------------------------------------------------------------------

// Enter sends, Shift+Enter starts a new line (and Enter that ends an input method's composition does neither)
input.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
  e.preventDefault();
  form.requestSubmit();
});
input.addEventListener("input", () => { if (noticeKind === "sticky") note("", ""); });

// Sends the queue at half the server's rate limit at most, so a burst (the user's, or an outbox
// resent after a reconnect) is never closed for flooding; what waits stays shown as "sending…".
function pump() {
  clearTimeout(pumpTimer);
  const ws = current?.joined ? current.ws : null;
  const gap = limits?.max_rate ? 1000 / Math.max(1, Math.floor(limits.max_rate / 2)) : 0;
  while (queue.length && ws?.readyState === WebSocket.OPEN) {
    const wait = nextSendAt - Date.now();
    if (wait > 0) return void (pumpTimer = setTimeout(pump, wait));
    ws.send(frameOf(queue.shift()));
    nextSendAt = Math.max(nextSendAt, Date.now() - gap) + gap;
  }
}

// a client's id for a message (crypto.getRandomValues also works on a plain-http LAN page)
const newCid = () => [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("");
const frameOf = (e) => JSON.stringify({ event: "send-message", message: e.text, cid: e.cid });

form.onsubmit = (e) => {
  e.preventDefault();
  const text = input.value;
  if (!text.trim() || !joinedAs) return;
  const entry = { cid: newCid(), text, at: Date.now() };
  const frame = frameOf(entry);
  const size = bytes(frame);
  if (limits?.max_message && size > limits.max_message) {
    note(T.big(size, limits.max_message), "sticky");
    return input.focus();
  }
  outbox.push(entry);
  saveOutbox();
  addPending(entry);
  if (current?.joined) queue.push(entry), pump();
  unsent = text;
  input.value = "";
  if (noticeKind === "sticky") note("", "");
  input.focus();
};

// --- the name ----------------------------------------------------------------------------------------

// the name form covers the page, inert meanwhile
function cover(on) {
  $("join").hidden = !on;
  for (const el of document.querySelectorAll("aside,main")) el.inert = on;
}

function askName(why = "") {
  if (joinedAs) tabs?.postMessage({ gone: joinedAs });
  joinedAs = "";
  attempt = unopened = 0;
  if (noticeKind === "connection") note("", "");
  setState("idle");
  $("why").textContent = why;
  nameEdited = false;
  cover(true);
  nameIn.select();
  nameIn.focus();
}

nameIn.addEventListener("input", () => { nameEdited = true; });

$("login").onsubmit = (e) => {
  e.preventDefault();
  const n = nameIn.value.trim();
  // what needs no server to say (its size limit only once it has told us)
  if (!n) return askName(T.blank);
  if (/[\0-\x1f\x7f]/.test(n)) return askName(T.control);
  if (limits?.max_name && bytes(n) > limits.max_name) return askName(T.tooLong(limits.max_name));
  myName = n;
  // typed before a reload and not sent yet: shown now, sent once joined
  if (!log.querySelector(":scope > .pending")) for (const e of outbox) addPending(e);
  save("sessionStorage", NAME_KEY, n); // this tab's name, after a reload
  save("localStorage", NAME_KEY, n);   // a suggestion for new tabs
  cover(false);
  connect();
  input.focus();
};

nameIn.value = load("sessionStorage", NAME_KEY) || load("localStorage", NAME_KEY) || "";
setState("idle");
askName();
