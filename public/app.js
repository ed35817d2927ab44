// chat.h client: join, chat, reconnect after drops
const $ = (id) => document.getElementById(id);
const zh = /^zh/i.test(navigator.language);
const T = zh
  ? { idle: "未连接", connecting: "连接中…", connected: "已连接", reconnecting: "重连中…",
      alone: "还没有其他人", empty: "还没有消息", you: "（你）", bad: "名字需 1–64 字节，不含控制字符" }
  : { idle: "Offline", connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…",
      alone: "No one else is here yet", empty: "No messages yet", you: " (you)", bad: "Name: 1–64 bytes, no control characters" };

const log = $("conversation"), input = $("data"), nameIn = $("name"), KEY = "chat.h name";
// HTML holds the Chinese labels, data-en* the English ones
if (!zh) {
  document.documentElement.lang = "en";
  for (const el of document.querySelectorAll("[data-en]")) el.textContent = el.dataset.en;
  input.placeholder = input.dataset.enPh;
}
$("alone").textContent = T.alone;
log.dataset.empty = T.empty; // shown by CSS while empty
let name, ws, tries = 0, lost = 0, seen = [];

function setState(s) {
  document.body.dataset.s = s;
  $("status").textContent = T[s] + (s == "connected" ? " · " + name : "");
  $("send").disabled = s != "connected";
}

function connect() {
  setState(tries ? "reconnecting" : "connecting");
  const url = new URL("/start_web_socket?username=" + encodeURIComponent(name), location.href);
  url.protocol = url.protocol.replace("http", "ws");
  const sock = (ws = new WebSocket(url));
  sock.r = []; // until the first user list: the server's replay
  sock.onopen = () => {
    sock.t = Date.now();
    setState("connected");
  };
  sock.onmessage = (e) => {
    let d;
    try { d = JSON.parse(e.data); } catch { return; }
    if (d?.event == "update-users") replay(sock), showUsers(d.usernames.map(String));
    if (d?.event == "send-message") {
      const m = [String(d.username), String(d.message ?? "")];
      sock.r ? sock.r.push(m) : addMessage(...m);
    }
  };
  sock.onclose = (e) => {
    if (sock != ws) return;
    ws = null;
    if (!sock.r) lost = Date.now();
    // refused: ask again; but within 70 s of a drop our ghost may hold the name: retry
    if (e.code == 1008 && (!sock.r || Date.now() - lost > 7e4)) {
      tries = lost = 0;
      setState("idle");
      return askName(e.reason || T.bad);
    }
    // other drops: 0.5 s doubling to 10 s, jittered; reset only after 5 s up
    if (Date.now() - sock.t > 5e3) tries = 0;
    setTimeout(connect, Math.min(1e4, 500 * 2 ** tries++) * (0.5 + Math.random() / 2));
    setState("reconnecting");
  };
}

function showUsers(list) {
  $("users").replaceChildren(...list.map((u) => {
    const li = $("user").content.firstElementChild.cloneNode();
    li.textContent = u;
    if (u == name) li.className = "me", li.dataset.you = T.you;
    return li;
  }));
  $("alone").hidden = list.length > 1;
}

// skip the start of a replay that is already shown (a reconnect)
function replay(sock, r = sock.r || []) {
  let k = Math.min(r.length, seen.length);
  while (k && JSON.stringify(seen.slice(-k)) != JSON.stringify(r.slice(0, k))) k--;
  r.slice(k).forEach((m) => addMessage(...m));
  sock.r = null;
}

function addMessage(user, text) {
  seen.push([user, text]);
  // autoscroll only when at the bottom
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const m = $("message").content.firstElementChild.cloneNode(true);
  const [span, time, p] = m.querySelectorAll("span,time,p");
  span.textContent = user; // never innerHTML
  p.textContent = text;
  time.textContent = new Date().toTimeString().slice(0, 5); // local HH:MM
  if (user == name) m.className = "me";
  log.append(m);
  if (stick || user == name) log.scrollTop = log.scrollHeight;
}

$("form").onsubmit = (e) => {
  e.preventDefault();
  if (!input.value.trim() || ws?.readyState != 1) return;
  ws.send(JSON.stringify({ event: "send-message", message: input.value }));
  input.value = "";
  input.focus();
};

// the name form covers the page, inert meanwhile
function cover(on) {
  $("join").hidden = !on;
  for (const el of document.querySelectorAll("aside,main")) el.inert = on;
}

function askName(why = "") {
  $("why").textContent = why;
  cover(true);
  nameIn.select();
  nameIn.focus();
}

$("login").onsubmit = (e) => {
  e.preventDefault();
  const n = nameIn.value.trim();
  // the server's own limits, to answer at once
  if (!n || new TextEncoder().encode(n).length > 64 || /[\0-\x1f\x7f]/.test(n)) return askName(T.bad);
  name = n;
  try { localStorage[KEY] = n; } catch {} // pre-fill next time
  cover(false);
  connect();
  input.focus();
};

try { nameIn.value = localStorage[KEY] || ""; } catch {}
setState("idle");
askName();
