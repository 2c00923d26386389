// The reference web client: the whole protocol (docs/protocol.md) as an app should use it.
//
//   connect with ack=1 ─► sync (every (re)connect) ─► conversations ─► open one: history,
//   markRead, presence;  message frames ─► keep (dedupe by messageId) ─► markDelivered
//
// Everything a user or the server wrote is put on the page with textContent, never as
// HTML. The state lives in memory: a reload asks the server again (sync, conversations,
// history), which is what a new device does too.
"use strict";

const params = new URLSearchParams(location.search);
const PAGE_SIZE = Math.min(100, Math.max(1, Number(params.get("pageSize")) || 30)); // history page
const USER_ID = /^[A-Za-z0-9_.@:+=-]{1,128}$/; // the server's rule for user ids
const RANK = { pending: 0, sent: 1, delivered: 2, read: 3 }; // statuses only move forward
const TYPING_EVERY_MS = 3000; // resend typing "start" this often while typing...
const TYPING_SHOWN_MS = 6000; // ...and treat a "start" older than this as stopped
const PRESENCE_EVERY_MS = 15000; // presence is not pushed: poll it for the open conversation
const FRAME_LIMIT = 32 * 1024; // API Gateway closes the socket (1009) on a larger frame: never send one

const state = {
  me: null,
  socket: null,
  connectUrl: null, // the WebSocket URL with who we are, without ack=1
  attempt: 0, // reconnects since the last good connection, for the backoff
  retry: null, // the timer of the next reconnect
  conversations: new Map(), // conversationId -> {id, peerId, unread, updatedAt, lastMessage}
  messages: new Map(), // messageId -> message data: one entry per id, however often it comes
  history: new Map(), // conversationId -> cursor of the next older page, or null at the start
  open: null, // {id, peerId}: the conversation shown; id is null until the first ack names it
  outbox: new Map(), // messageId -> sendMessage frame not yet acknowledged (sent again on reconnect)
  resending: false, // sending the outbox again, one after another
  toConfirm: new Set(), // messageIds to confirm with markDelivered
  confirming: null, // the timer that sends them, a few at once
  typing: new Map(), // conversationId -> time the peer's last "start" came
  lastTypingSent: 0,
  presence: new Map(), // userId -> {online, lastSeen}
  syncing: false,
};

const $ = (id) => document.getElementById(id);

// ---- connecting ----------------------------------------------------------------------

async function boot() {
  let base = params.get("url"); // a deployed stack: wss://<api id>.execute-api.<region>.amazonaws.com/production
  let auth = params.get("url") ? "unknown" : "dev";
  if (!base) {
    // Served by `make local`: it says which auth mode the template has, and its stage.
    const config = await fetch("/@local/config").then((r) => r.json());
    base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/${config.stage}`;
    auth = config.auth;
  }
  const user = params.get("userId");
  const token = params.get("token");
  if (token) return start(base, { token });
  if (user && auth !== "cognito") return start(base, { userId: user }); // (?url= and a stack deployed with auth=dev)
  if (user && auth === "cognito") return start(base, { userId: user, token: await localToken(user) });
  showLogin(base, auth);
}

function showLogin(base, auth) {
  const form = $("login");
  form.hidden = false;
  $("login-token").hidden = auth === "dev" || auth === "cognito";
  $("login-hint").textContent = {
    dev: "Dev mode: you are whoever you say.",
    cognito: "Token mode: the local issuer signs you a token for this user id (like make token).",
    unknown: `Connecting to ${base}. Give a token, or a user id if the stack was deployed with -c auth=dev.`,
  }[auth];
  form.onsubmit = async (event) => {
    event.preventDefault();
    const userId = $("login-user").value.trim();
    const token = $("login-token").value.trim();
    if (!token && !USER_ID.test(userId)) return showError("A user id is 1 to 128 of A-Z a-z 0-9 _ . @ : + = -");
    form.hidden = true;
    if (token) start(base, { token });
    else if (auth === "cognito") start(base, { userId, token: await localToken(userId) });
    else start(base, { userId });
  };
}

async function localToken(userId) {
  const reply = await fetch(`/@local/token?userId=${encodeURIComponent(userId)}`);
  if (!reply.ok) throw new Error(`the local issuer refused: ${await reply.text()}`);
  return (await reply.json()).token;
}

function start(base, { userId, token }) {
  state.me = userId || claimedUser(token);
  const query = token ? `token=${encodeURIComponent(token)}` : `userId=${encodeURIComponent(userId)}`;
  state.connectUrl = `${base}?${query}`;
  $("app").hidden = false;
  $("me").textContent = state.me;
  connect();
}

function claimedUser(token) {
  // Only to show who we are: the server checks the token, and every frame it sends names
  // the real sender. (A token's sub is what the server uses as the user id.)
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    return "?";
  }
}

function connect() {
  clearTimeout(state.retry);
  // ack=1: a message frame is only a delivery attempt; it counts as delivered once we
  // confirm it with markDelivered, so a tab that dies before storing it loses nothing.
  const socket = new WebSocket(`${state.connectUrl}&ack=1`);
  state.socket = socket;
  setStatus("connecting…");
  let opened = false;
  socket.onopen = () => {
    opened = true;
    setStatus("online", true);
    // Always sync on (re)connect: messages sent while we were away, or while this
    // connection's handshake was completing, come only this way.
    state.syncing = true;
    send({ action: "sync" });
    // Unacknowledged sends go again (same messageId, so no duplicate), one at a time, each
    // after the ack of the one before, so the server stores them in the order written.
    state.resending = state.outbox.size > 0;
    resendNext();
    // What another device confirmed while we were away is not in sync, only in history:
    // read each conversation's newest page again when it is (next) opened.
    state.history.clear();
    if (state.open?.id) {
      send({ action: "markRead", conversationId: state.open.id });
      send({ action: "history", conversationId: state.open.id, limit: PAGE_SIZE, requestId: "open" });
    }
  };
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return showError("The server sent something that is not JSON");
    }
    handle(frame);
    render();
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (!opened && !state.attempt) {
      // The browser does not say why a handshake failed: a refused token or user id is one reason.
      showError("Could not connect. Either the server is not reachable, or it refused who you said you are (a bad or expired token).");
    }
    // Back off: 0.5 s, 1, 2, 4 … up to 30 s, with jitter so a fleet does not reconnect in step.
    const delay = Math.min(30000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
    state.attempt += 1;
    setStatus(`offline: reconnecting in ${Math.ceil(delay / 1000)} s`);
    state.retry = setTimeout(connect, delay);
  };
}

addEventListener("online", () => !state.socket && state.connectUrl && connect()); // the network is back: now

function send(frame) {
  if (state.socket?.readyState !== WebSocket.OPEN) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

// ---- what the server sends -----------------------------------------------------------

function handle(frame) {
  const data = frame.data || {};
  switch (frame.type) {
    case "message":
      return receive(data);
    case "ack": // our send is stored; a retry gets the stored status, so keep the highest
      state.outbox.delete(data.messageId);
      if (state.resending) resendNext();
      update(data.messageId, { status: data.status, sentAt: data.sentAt, conversationId: data.conversationId });
      return touch(state.messages.get(data.messageId));
    case "receipt":
      return update(data.messageId, { status: data.status });
    case "read": // we read these on another device
      return readElsewhere(data.conversationId, data.messageIds);
    case "syncComplete":
      state.attempt = 0; // a good connection: the next drop starts the backoff again
      if (data.more) return send({ action: "sync", after: data.next }); // stopped early: continue
      state.syncing = false;
      return send({ action: "conversations", limit: 100, requestId: "list" }); // the unread counts, now settled
    case "messageDeleted":
      return deleted(data);
    case "conversations":
      return listed(data.conversations);
    case "history":
      return paged(data);
    case "typing":
      state.typing.set(data.conversationId, data.state === "start" ? Date.now() : 0);
      return setTimeout(render, TYPING_SHOWN_MS + 50);
    case "presence":
      for (const user of data.users) state.presence.set(user.userId, user);
      return;
    case "error":
      return refused(data);
    default: // API Gateway's own frame when a function fails: {"message": "Internal server error", ...}
      if (frame.message) return showError(`The server failed to handle a frame (${frame.message}).`);
  }
}

function resendNext() {
  const [first] = state.outbox.values();
  state.resending = Boolean(first);
  if (first) send(first);
}

function deleted({ messageId, conversationId }) {
  const message = state.messages.get(messageId);
  const conversation = state.conversations.get(conversationId);
  // a deleted message leaves the unread count (the server's count does the same)
  if (message && !message.isDeleted && message.recipientId === state.me && message.status !== "read" && conversation) {
    conversation.unread = Math.max(0, conversation.unread - 1);
  }
  update(messageId, { isDeleted: true });
  // its words go from every reply quoting it, whether or not we hold the message itself
  for (const reply of state.messages.values()) if (reply.replyToMessageId === messageId) delete reply.replyToContent;
}

function receive(message) {
  const known = state.messages.get(message.messageId);
  keep(message);
  if (message.recipientId === state.me) {
    // Confirm once it is kept (here: in memory). At least once: it may come again, live and
    // from a sync; keep() ignores what it already has, but we confirm each time it comes.
    state.toConfirm.add(message.messageId);
    state.confirming ??= setTimeout(confirm, 50); // one markDelivered for a burst (a sync), not one per message
  }
  const conversation = conversationFor(message);
  if (!known) touch(state.messages.get(message.messageId));
  if (!known && message.recipientId === state.me && RANK[message.status] < RANK.read && !state.syncing) {
    if (isShown(conversation.id)) send({ action: "markRead", messageIds: [message.messageId] });
    else conversation.unread += 1; // (during a sync, the conversations list after it brings the counts)
  }
  if (isShown(conversation.id) && message.senderId !== state.me) state.typing.delete(conversation.id);
}

function confirm() {
  state.confirming = null;
  const ids = [...state.toConfirm].slice(0, 100); // at most 100 per frame
  if (!ids.length || !send({ action: "markDelivered", messageIds: ids })) return; // (unsent: sync brings them again)
  ids.forEach((id) => state.toConfirm.delete(id));
  if (state.toConfirm.size) confirm();
}

function keep(message) {
  const known = state.messages.get(message.messageId);
  if (!known) return state.messages.set(message.messageId, { ...message });
  update(message.messageId, message);
}

function update(messageId, fields) {
  const message = state.messages.get(messageId);
  if (!message) return;
  for (const [key, value] of Object.entries(fields)) {
    if (key === "status" && RANK[value] <= RANK[message.status]) continue; // never move back
    if (key === "isDeleted" && !value) continue;
    if (value !== undefined) message[key] = value;
  }
  if (message.isDeleted) {
    delete message.content; // drop the words wherever they are kept: the message, and replies quoting it
    delete message.replyToContent;
  }
  if (state.open && !state.open.id && message.conversationId && peerOf(message) === state.open.peerId) {
    state.open.id = message.conversationId; // the ack named the pair's conversation
    send({ action: "history", conversationId: message.conversationId, limit: PAGE_SIZE, requestId: "open" });
    pollPresence(); // now that we share a conversation, the server tells us the peer's presence
  }
  if (message.conversationId) conversationFor(message);
}

function readElsewhere(conversationId, ids) {
  const conversation = state.conversations.get(conversationId);
  for (const id of ids) update(id, { status: "read" });
  if (conversation) conversation.unread = Math.max(0, conversation.unread - ids.length);
}

function listed(conversations) {
  for (const c of conversations) {
    const entry = conversationFor({ conversationId: c.conversationId, peer: c.peerId });
    Object.assign(entry, { unread: isShown(c.conversationId) ? 0 : c.unreadCount, updatedAt: c.updatedAt });
    if (c.lastMessage) {
      keep(c.lastMessage);
      entry.lastMessage = state.messages.get(c.lastMessage.messageId);
    }
    if (isShown(c.conversationId) && c.unreadCount) send({ action: "markRead", conversationId: c.conversationId });
  }
}

function paged({ conversationId, messages, next }) {
  messages.forEach(keep);
  state.history.set(conversationId, next || null);
}

function refused({ code, message, messageId }) {
  const words = {
    BAD_REQUEST: "The server could not accept that",
    FORBIDDEN: "Not allowed",
    CONFLICT: "That message id belongs to someone else's message",
    UNKNOWN_ACTION: "The server does not know that action",
    INTERNAL: "The server could not finish; trying again",
  };
  if (code === "INTERNAL" && state.outbox.has(messageId)) {
    // Safe to retry with the same messageId: the server stores and delivers it once.
    setTimeout(() => state.outbox.has(messageId) && send(state.outbox.get(messageId)), 1000);
  } else if (state.outbox.delete(messageId)) {
    update(messageId, { failed: true });
    if (state.resending) resendNext();
  }
  showError(`${words[code] || code}: ${message}`);
}

// ---- conversations and messages ------------------------------------------------------

function peerOf(message) {
  return message.peer || (message.senderId === state.me ? message.recipientId : message.senderId);
}

function conversationFor(message) {
  const id = message.conversationId;
  if (!state.conversations.has(id)) {
    state.conversations.set(id, { id, peerId: peerOf(message), unread: 0, updatedAt: message.sentAt || "" });
  }
  return state.conversations.get(id);
}

function touch(message) {
  // The list shows each conversation's latest message, latest conversation first.
  const conversation = message && message.conversationId && conversationFor(message);
  if (conversation && message.sentAt >= conversation.updatedAt) {
    conversation.lastMessage = message;
    conversation.updatedAt = message.sentAt;
  }
}

function isShown(conversationId) {
  return state.open?.id === conversationId && document.visibilityState === "visible";
}

function openConversation(conversation) {
  state.open = { id: conversation.id, peerId: conversation.peerId };
  if (conversation.id) {
    conversation.unread = 0;
    send({ action: "markRead", conversationId: conversation.id }); // what an app sends when a thread opens
    if (!state.history.has(conversation.id)) {
      send({ action: "history", conversationId: conversation.id, limit: PAGE_SIZE, requestId: "open" });
    }
  }
  pollPresence();
  render();
  $("text").focus();
}

function startConversation(peerId) {
  // The pair's own conversation if we know it (its id starts with dm-), else any with that
  // user, else a new one: the first send leaves conversationId out and the ack names it.
  const withPeer = [...state.conversations.values()].filter((c) => c.peerId === peerId);
  openConversation(withPeer.find((c) => c.id.startsWith("dm-")) || withPeer[0] || { id: null, peerId });
}

function sendText(content) {
  const messageId = crypto.randomUUID();
  const frame = { action: "sendMessage", messageId, recipientId: state.open.peerId, content };
  if (state.open.id) frame.conversationId = state.open.id;
  if (new TextEncoder().encode(JSON.stringify(frame)).length > FRAME_LIMIT) {
    showError("That message is too long to send: make it shorter."); // (the server's own limit is lower)
    return false;
  }
  state.outbox.set(messageId, frame);
  state.messages.set(messageId, {
    messageId, conversationId: state.open.id, peer: state.open.peerId, senderId: state.me,
    recipientId: state.open.peerId, content, status: "pending", sentAt: "~" + new Date().toISOString(),
  });
  send(frame); // if the socket is down, it goes on reconnect
  if (state.open.id) send({ action: "typing", conversationId: state.open.id, state: "stop" });
  state.lastTypingSent = 0;
  return true;
}

function typed() {
  if (!state.open?.id || Date.now() - state.lastTypingSent < TYPING_EVERY_MS) return;
  if (send({ action: "typing", conversationId: state.open.id, state: "start" })) state.lastTypingSent = Date.now();
}

function pollPresence() {
  if (state.open) send({ action: "presence", userIds: [state.open.peerId], requestId: "open" });
}
setInterval(() => (pollPresence(), render()), PRESENCE_EVERY_MS);

// ---- the page ------------------------------------------------------------------------

function setStatus(text, online = false) {
  $("status").textContent = text;
  $("status").className = online ? "online" : "";
}

function showError(text) {
  const box = document.createElement("div");
  box.className = "error";
  box.textContent = text;
  $("errors").append(box);
  setTimeout(() => box.remove(), 8000);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: content is text
  return node;
}

function render() {
  const list = [...state.conversations.values()].sort((a, b) => (b.updatedAt > a.updatedAt ? 1 : -1));
  $("conversations").replaceChildren(
    ...list.map((c) => {
      const item = el("li", "conversation" + (state.open?.id === c.id ? " open" : ""));
      item.dataset.id = c.id;
      item.dataset.peer = c.peerId;
      const last = c.lastMessage;
      item.append(el("span", "peer", c.peerId), el("span", "last", last ? preview(last) : ""));
      if (c.unread) item.append(el("span", "badge", String(c.unread)));
      item.onclick = () => openConversation(c);
      return item;
    }),
  );
  renderThread();
}

function preview(message) {
  if (message.isDeleted) return "message deleted";
  return (message.senderId === state.me ? "You: " : "") + (message.content ?? "");
}

function renderThread() {
  const open = state.open;
  $("composer").hidden = !open;
  if (!open) return;
  $("peer").textContent = open.peerId;
  const seen = state.presence.get(open.peerId);
  $("presence").textContent = !seen ? "" : seen.online ? "online" : seen.lastSeen ? `last seen ${when(seen.lastSeen)}` : "";
  const typingSince = state.typing.get(open.id) || 0;
  $("typing").textContent = Date.now() - typingSince < TYPING_SHOWN_MS ? `${open.peerId} is typing…` : "";

  const shown = [...state.messages.values()]
    .filter((m) => (m.conversationId ? m.conversationId === open.id : m.peer === open.peerId)) // (or not yet acked)
    .sort((a, b) => (a.sentAt > b.sentAt ? 1 : a.sentAt < b.sentAt ? -1 : 0)); // the server's order: sentAt
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const nodes = shown.map(messageNode);
  if (open.id && state.history.get(open.id)) {
    const earlier = el("button", "", "Load earlier messages");
    earlier.id = "earlier";
    earlier.onclick = () =>
      send({ action: "history", conversationId: open.id, limit: PAGE_SIZE, cursor: state.history.get(open.id) });
    nodes.unshift(earlier);
  }
  box.replaceChildren(...nodes);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function messageNode(m) {
  const mine = m.senderId === state.me;
  const node = el("div", `message${mine ? " mine" : ""}${m.isDeleted ? " deleted" : ""}${m.failed ? " failed" : ""}`);
  node.dataset.id = m.messageId;
  if (m.replyToMessageId) node.append(el("div", "meta", `↪ ${m.replyToContent ?? "(deleted)"}`));
  node.append(el("div", "text", m.isDeleted ? "message deleted" : m.content));
  const meta = el("div", "meta", m.sentAt.startsWith("~") ? "" : when(m.sentAt));
  if (mine) {
    // ✓ stored (sent), ✓✓ on a device of theirs (delivered), blue ✓✓ read; ! refused
    const tick = m.failed ? " !" : { pending: " ⌛", sent: " ✓", delivered: " ✓✓", read: " ✓✓" }[m.status];
    const ticks = el("span", `ticks ${m.status}`, tick);
    ticks.title = m.failed ? "not sent" : m.status;
    meta.append(ticks);
  }
  node.append(meta);
  return node;
}

function when(iso) {
  const date = new Date(iso);
  return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

$("composer").onsubmit = (event) => {
  event.preventDefault();
  const content = $("text").value;
  if (!content.trim() || !state.open) return;
  if (sendText(content)) $("text").value = "";
  render();
};
$("text").oninput = typed;
$("start").onsubmit = (event) => {
  event.preventDefault();
  const peerId = $("start-user").value.trim();
  if (!USER_ID.test(peerId)) return showError("A user id is 1 to 128 of A-Z a-z 0-9 _ . @ : + = -");
  if (peerId === state.me) return showError("Start a conversation with someone else");
  $("start-user").value = "";
  startConversation(peerId);
};
document.addEventListener("visibilitychange", () => {
  if (isShown(state.open?.id)) openConversation(state.conversations.get(state.open.id));
});

boot().catch((error) => showError(`Could not start: ${error.message}`));
