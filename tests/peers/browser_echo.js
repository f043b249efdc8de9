#!/usr/bin/env node
// Drives the `sockway echo` test page in headless Chromium, as a user would:
// load the page, check the URL box points at this server's /ws, Connect, see the
// HTTP version the socket arrived over, Send a message, see the echo in the
// Communication Log, Close Socket, see code 1000. Saves a screenshot and prints
// the log as JSON lines, plus {"kind":"http-version",...}. An https:// page may
// use a self-signed certificate (certificate errors are ignored for this run).
//
// Usage: node browser_echo.js PAGE_URL [SCREENSHOT_PATH] [--compressible] [--map-host NAME]
//                               [--ws-url URL] [--http1]
//   --compressible   also echo a large, very compressible text
//   --ws-url URL     connect the page to this WebSocket URL (another server, such as the
//                    event-loop echo) instead of the page's own /ws
//   --map-host NAME  Chromium resolves NAME to 127.0.0.1 (a page at https://NAME:PORT/
//                    then sends NAME as its TLS server name, SNI)
//   --http1          Chromium offers no HTTP/2 (ALPN http/1.1 only): the page and its socket
//                    arrive over HTTP/1.1 even where the server speaks HTTP/2
// Env:   CHROMIUM (default /usr/bin/chromium)
// Exit:  0 on success, 1 with a message on stderr otherwise.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const pageUrl = process.argv[2];
const screenshot = process.argv[3] || path.join("target", "browser", "echo.png");
const STEP_MS = 10000;
const mapHostAt = process.argv.indexOf("--map-host");
const mapHost = mapHostAt > 0 ? process.argv[mapHostAt + 1] : null;
const wsUrlAt = process.argv.indexOf("--ws-url");
const wsUrl = wsUrlAt > 0 ? process.argv[wsUrlAt + 1] : null;
const http1 = process.argv.includes("--http1");

if (!pageUrl) {
  console.error("usage: node browser_echo.js PAGE_URL [SCREENSHOT_PATH]");
  process.exit(2);
}

async function logRows(page) {
  return page.$$eval("#log tr", (rows) =>
    rows.map((row) => ({
      kind: row.querySelector(".kind")?.textContent ?? "",
      data: row.querySelector(".data")?.textContent ?? "",
    })),
  );
}

async function waitForLog(page, kind, needle) {
  await page.waitForFunction(
    ([kind, needle]) =>
      [...document.querySelectorAll("#log tr")].some(
        (row) =>
          row.querySelector(".kind")?.textContent === kind &&
          (row.querySelector(".data")?.textContent ?? "").includes(needle),
      ),
    [kind, needle],
    { timeout: STEP_MS },
  );
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sockway-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1000, height: 640 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--ignore-certificate-errors",
        ...(mapHost ? [`--host-resolver-rules=MAP ${mapHost} 127.0.0.1`] : []),
        ...(http1 ? ["--disable-http2"] : []),
      ],
      ignoreHTTPSErrors: true,
      timeout: 30000,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_MS);
    const consoleErrors = [];
    page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(msg.text()));
    page.on("pageerror", (err) => consoleErrors.push(String(err)));

    await page.goto(pageUrl);
    const expectedUrl = new URL("/ws", pageUrl).href.replace(/^http/, "ws");
    const urlBox = await page.inputValue("#url");
    if (urlBox !== expectedUrl) {
      throw new Error(`URL box shows ${urlBox}, expected ${expectedUrl}`);
    }
    if (wsUrl) await page.fill("#url", wsUrl);
    const initialState = (await page.textContent("#state")).trim();
    if (initialState !== "Closed") throw new Error(`initial state ${initialState}`);

    await page.click("#connect");
    await waitForLog(page, "open", "connected to");
    await page.waitForFunction(() => document.getElementById("state").textContent === "Open");
    // The page learns the HTTP version from its own server, which knows only its own sockets.
    if (!wsUrl) {
      await page.waitForFunction(() => /^HTTP\/\d/.test(document.getElementById("http").textContent));
    }
    const httpVersion = wsUrl ? "other server" : (await page.textContent("#http")).trim();
    console.log(JSON.stringify({ kind: "http-version", data: httpVersion }));

    const message = "Hello from Chromium \u2014 h\u00e9ll\u00f6 w\u00f6rld";
    await page.fill("#message", message);
    await page.click("#send");
    await waitForLog(page, "send", message);
    await waitForLog(page, "receive", message);

    // --compressible: also echo a large, very compressible text (used with a server that
    // negotiates permessage-deflate, to see compressed traffic both ways).
    if (process.argv.includes("--compressible")) {
      const big = "compress me, compress me, compress me. ".repeat(500);
      await page.fill("#message", big);
      await page.click("#send");
      await waitForLog(page, "receive", big.slice(0, 40));
    }

    await page.click("#close");
    await waitForLog(page, "close", "code 1000");
    await page.waitForFunction(() => document.getElementById("state").textContent === "Closed");

    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });

    for (const row of await logRows(page)) console.log(JSON.stringify(row));
    if (consoleErrors.length) {
      throw new Error(`page errors: ${consoleErrors.join("; ")}`);
    }
    console.log(`browser_echo: ok, screenshot at ${screenshot}`);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`browser_echo: FAILED: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
