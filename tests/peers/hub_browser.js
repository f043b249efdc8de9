#!/usr/bin/env node
// Two headless Chromium pages chat with each other through the sample hub of `sockway hub`,
// as two people would: both load the chat page at `/` (which loads the official SignalR
// JavaScript client from the server and connects to /chatHub), page 1 sends a message, both
// pages list it, page 2 answers, both list that too (each message once). The page is the SignalR tutorial's:
// inputs #userInput and #messageInput, button #sendButton (disabled until the connection is
// up), list #messagesList with one <li> per message naming the user and the text.
//
// Prints one JSON line per scenario ({"scenario", "ok", "detail" or "error"}), saves a
// screenshot of each page (SCREENSHOT_DIR/hub-chat-1.png and -2.png).
//
// Usage: node hub_browser.js PAGE_URL [SCREENSHOT_DIR]
// Env:   CHROMIUM (default /usr/bin/chromium)
// Exit:  0 on success, 1 with the reason on stderr otherwise.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const crypto = require("crypto");
const { chromium } = require("playwright-core");

const STEP_MS = 20000;
const pageUrl = process.argv[2];
const screenshotDir = process.argv[3] || path.join("target", "browser");

if (!pageUrl) {
  console.error("usage: node hub_browser.js PAGE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

/** The texts of the chat list's items on `page`. */
function listed(page) {
  return page.$$eval("#messagesList li", (items) => items.map((li) => li.textContent));
}

/** Waits until `page` lists an item naming both `user` and `text`. */
async function waitForListed(page, label, user, text) {
  try {
    await page.waitForFunction(
      ([user, text]) =>
        [...document.querySelectorAll("#messagesList li")].some(
          (li) => li.textContent.includes(user) && li.textContent.includes(text),
        ),
      [user, text],
      { timeout: STEP_MS },
    );
  } catch (error) {
    throw new Error(`${label} does not list ${user}: ${text} (it lists ${JSON.stringify(await listed(page))})`);
  }
}

/** Types `user` and `text` on `page` and clicks Send. */
async function send(page, user, text) {
  await page.fill("#userInput", user);
  await page.fill("#messageInput", text);
  await page.click("#sendButton");
}

/** Opens the chat page in a new tab, recording console errors and failed requests. */
async function openChat(context, label, problems, scripts) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  // A 404 is reported on the console without its URL; responses below name it (and a
  // missing /favicon.ico is no fault of the chat).
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      problems.push(`${label} console: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`${label} page error: ${err}`));
  page.on("requestfailed", (req) => problems.push(`${label} request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (res) => {
    if (/signalr(\.min)?\.js/.test(res.url())) scripts.push({ url: res.url(), status: res.status() });
    if (res.status() >= 400 && !res.url().endsWith("/favicon.ico")) {
      problems.push(`${label}: ${res.status()} for ${res.request().method()} ${res.url()}`);
    }
  });
  await page.goto(pageUrl);
  try {
    await page.waitForSelector("#sendButton:not([disabled])", { timeout: STEP_MS });
  } catch (error) {
    throw new Error(`${label}: #sendButton never became enabled (the hub connection did not start)`);
  }
  return page;
}

function report(scenario, detail) {
  console.log(JSON.stringify({ scenario, ok: true, detail }));
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sockway-chromium-"));
  const problems = [];
  const scripts = [];
  let context;
  let scenario = "pages_connect";
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      viewport: { width: 900, height: 600 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 30000,
    });
    const first = await openChat(context, "page 1", problems, scripts);
    const second = await openChat(context, "page 2", problems, scripts);
    const local = scripts.filter((s) => new URL(s.url).origin === new URL(pageUrl).origin && s.status === 200);
    if (local.length < 2) {
      throw new Error(`the pages did not load signalr.js from the server: ${JSON.stringify(scripts)}`);
    }
    report(scenario, { scripts: local.map((s) => new URL(s.url).pathname) });

    scenario = "chat_both_ways";
    const tag = crypto.randomUUID().slice(0, 8);
    const hello = `Hello from page 1 \u2014 h\u00e9ll\u00f6 ${tag}`;
    await send(first, "Alice", hello);
    await waitForListed(first, "page 1", "Alice", hello);
    await waitForListed(second, "page 2", "Alice", hello);
    const answer = `Hi Alice, page 2 here ${tag}`;
    await send(second, "Bob", answer);
    await waitForListed(second, "page 2", "Bob", answer);
    await waitForListed(first, "page 1", "Bob", answer);
    // Once each: a message listed twice would mean a duplicate delivery (or a second
    // connection opened by the page).
    for (const [label, page] of [["page 1", first], ["page 2", second]]) {
      const items = await listed(page);
      for (const text of [hello, answer]) {
        const copies = items.filter((item) => item.includes(text)).length;
        if (copies !== 1) throw new Error(`${label} lists ${JSON.stringify(text)} ${copies} times: ${JSON.stringify(items)}`);
      }
    }
    report(scenario, { page1: await listed(first), page2: await listed(second) });

    scenario = "no_page_errors";
    fs.mkdirSync(screenshotDir, { recursive: true });
    await first.screenshot({ path: path.join(screenshotDir, "hub-chat-1.png"), fullPage: true });
    await second.screenshot({ path: path.join(screenshotDir, "hub-chat-2.png"), fullPage: true });
    if (problems.length) throw new Error(problems.join("; "));
    report(scenario, {});
  } catch (error) {
    console.log(JSON.stringify({ scenario, ok: false, error: error && error.message ? error.message : String(error) }));
    console.error(`hub_browser: FAILED in ${scenario}: ${error && error.stack ? error.stack : error}`);
    if (problems.length) console.error(`hub_browser: also seen: ${problems.join("; ")}`);
    process.exitCode = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main();
