// Screenshot of a live meridian dashboard after it has polled in real time (docs/dashboard.png
// is made with it). Chromium's --screenshot runs the page on virtual time, where the polls
// come back to back and rates read ~0; this drives headless chromium over the DevTools protocol
// instead and waits for real.
//
//   node --experimental-websocket scripts/dashboard_screenshot.mjs URL OUT.png [SECONDS]
//
// Needs node >= 20 and Debian's chromium (scripts/install-deps.sh).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, out, seconds = "20"] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: dashboard_screenshot.mjs URL OUT.png [SECONDS]");
  process.exit(2);
}
const wait = Number(seconds) * 1000;
const profile = mkdtempSync(join(tmpdir(), "meridian-shot-"));
const chrome = spawn("chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
  "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
// Whatever happens, the browser does not outlive the guard.
const guard = setTimeout(() => finish("timed out", 1), wait + 60_000);

let finishing = false;
function finish(message, code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(guard);
  if (message) console.error(message);
  // The profile goes once chromium is gone (it writes to it until then).
  const done = () => {
    rmSync(profile, { recursive: true, force: true });
    process.exit(code);
  };
  if (chrome.exitCode !== null || chrome.signalCode !== null) return done();
  chrome.once("exit", done);
  chrome.kill("SIGKILL");
}

const endpoint = await new Promise((resolve) => {
  let text = "";
  chrome.stderr.on("data", (chunk) => {
    text += chunk;
    const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  chrome.on("exit", () => finish("chromium exited:\n" + text, 1));
});

const ws = new WebSocket(endpoint);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
let next = 0;
const pending = new Map();
ws.onmessage = (ev) => {
  const msg = JSON.parse(ev.data);
  const p = pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.error) p.reject(new Error(JSON.stringify(msg.error))); else p.resolve(msg.result);
};
function send(method, params = {}, sessionId) {
  const id = ++next;
  ws.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

try {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  await send("Emulation.setDeviceMetricsOverride",
    { width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false }, sessionId);
  await send("Page.navigate", { url }, sessionId);
  await new Promise((r) => setTimeout(r, wait));
  const { data } = await send("Page.captureScreenshot", { format: "png" }, sessionId);
  writeFileSync(out, Buffer.from(data, "base64"));
  finish(`wrote ${out}`, 0);
} catch (err) {
  finish(String(err), 1);
}
