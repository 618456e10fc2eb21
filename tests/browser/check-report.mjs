// Opens a syncspec HTML report (index.html) from disk in headless chromium
// with the network off, checks what a reader relies on, and writes a
// full-page screenshot.
//
//   node check-report.mjs INDEX_HTML SCREENSHOT_PNG --backend NAME... [--failure 'BACKEND CASE'...]
//
// --backend names each column the report must have, in order; --failure names
// each failed conformance cell it must have, and no other cell may fail.
// Checks: no console error and no page error; no request of any kind but the
// file itself (every other attempt is blocked and counted, and the context is
// offline as well); the verdict table and the conformance matrix, with each
// failed cell linking to evidence that exists and becomes the :target when
// clicked; the four charts drawn as SVG with a non-zero size; the model check
// and environment sections. The screenshot is written whether or not the
// checks pass, so a failure can be looked at.
//
// The last line printed is the summary: `check-report: ok, N checks passed ...`
// (exit 0) or `check-report: FAILED, K of N checks failed` after one line per
// problem (exit 1). Exit 2 means the page could not be checked at all.

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

const CHROMIUM = process.env.SYNCSPEC_CHROMIUM ?? "/usr/bin/chromium";
// No network on the machines this runs on; the background-networking flags
// keep chromium's own traffic (updates, sync, variations) out of the counts.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const CHARTS = ["chart-percentiles", "chart-p95-per-second", "chart-sweep-accepted", "chart-sweep-p95"];
const SECTIONS = ["verdict", "matrix", "latency", "sweep", "model", "environment"];
// Generous: the machines are small and cargo may be building beside this.
const TIMEOUT_MS = 60_000;

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: "string", multiple: true, default: [] },
    failure: { type: "string", multiple: true, default: [] },
  },
});
if (positionals.length !== 2 || flags.backend.length === 0) {
  console.error("usage: node check-report.mjs INDEX_HTML SCREENSHOT_PNG --backend NAME... [--failure 'BACKEND CASE'...]");
  process.exit(2);
}
const [htmlPath, screenshotPath] = positionals.map((p) => resolve(p));
const backends = flags.backend;
const failures = flags.failure.map((f) => {
  const space = f.lastIndexOf(" ");
  if (space < 1) {
    console.error(`--failure wants 'BACKEND CASE', got ${JSON.stringify(f)}`);
    process.exit(2);
  }
  return { backend: f.slice(0, space), case: f.slice(space + 1) };
});
const fileUrl = pathToFileURL(htmlPath).href;

let checked = 0;
const problems = [];
/** Counts one check and records a problem when it does not hold. */
function check(ok, problem) {
  checked += 1;
  if (!ok) problems.push(problem);
  return ok;
}

/** The URL without its fragment: a same-document navigation is not a request. */
const withoutHash = (url) => url.split("#")[0];
const isTheFile = (url) => withoutHash(url) === fileUrl;

// Everything the page did that it must not, gathered from the moment the
// context exists: several sources, since an offline context fails some
// requests before interception sees them.
const consoleErrors = [];
const pageErrors = [];
// One entry per attempt (a request or a WebSocket), with what each source saw of it.
const attempts = new Map();
const attempt = (key, url, how) => {
  if (isTheFile(url)) return;
  if (!attempts.has(key)) attempts.set(key, { url, seen: [] });
  attempts.get(key).seen.push(how);
};

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
  timeout: TIMEOUT_MS,
});
try {
  const context = await browser.newContext({
    offline: true,
    serviceWorkers: "block",
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isTheFile(url)) return route.continue();
    attempt(route.request(), url, "blocked");
    return route.abort("blockedbyclient");
  });
  context.on("request", (request) => attempt(request, request.url(), request.resourceType()));
  context.on("requestfailed", (request) => attempt(request, request.url(), `failed ${request.failure()?.errorText ?? ""}`.trim()));
  const page = await context.newPage();
  page.on("websocket", (ws) => attempt(ws, ws.url(), "websocket"));
  page.on("console", (message) => {
    if (message.type() === "error") {
      const where = message.location()?.url;
      consoleErrors.push(where ? `${message.text()} (at ${where})` : message.text());
    }
  });
  page.on("pageerror", (error) => pageErrors.push(error.message));

  const response = await page.goto(fileUrl, { waitUntil: "load" });
  check(response === null || response.ok(), `loading ${fileUrl} answered ${response?.status()}`);

  // The DOM, read in one pass so the problems name what was found.
  const dom = await page.evaluate(
    ({ charts, sections }) => {
      const size = (el) => {
        const r = el.getBoundingClientRect();
        return { width: r.width, height: r.height };
      };
      const texts = (selector) => [...document.querySelectorAll(selector)].map((el) => el.getAttribute("data-backend"));
      return {
        scripts: document.scripts.length,
        sections: Object.fromEntries(sections.map((id) => [id, document.getElementById(id) ? size(document.getElementById(id)) : null])),
        verdictTable: document.querySelector("#verdict table") !== null,
        verdictColumns: texts("#verdict table th[data-backend]"),
        matrixColumns: texts("#matrix table th[data-backend]"),
        cells: document.querySelectorAll("#matrix td.cell").length,
        failed: [...document.querySelectorAll("#matrix td.cell.outcome-fail")].map((td) => ({
          backend: td.getAttribute("data-backend"),
          case: td.getAttribute("data-case"),
          href: td.querySelector('a[href^="#ev-"]')?.getAttribute("href") ?? null,
        })),
        charts: Object.fromEntries(
          charts.map((id) => {
            const svg = document.querySelector(`#${id} svg`);
            return [id, svg ? { ...size(svg), shapes: svg.querySelectorAll("*").length } : null];
          }),
        ),
      };
    },
    { charts: CHARTS, sections: SECTIONS },
  );

  check(dom.scripts === 0, `the page has ${dom.scripts} script element(s); the report has none`);
  for (const [id, box] of Object.entries(dom.sections)) {
    if (check(box !== null, `#${id} is missing`)) {
      check(box.width > 0 && box.height > 0, `#${id} renders at ${box.width}×${box.height}`);
    }
  }
  check(dom.verdictTable, "#verdict has no table");
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  check(same(dom.verdictColumns, backends), `#verdict columns are ${JSON.stringify(dom.verdictColumns)}, expected ${JSON.stringify(backends)}`);
  check(same(dom.matrixColumns, backends), `#matrix columns are ${JSON.stringify(dom.matrixColumns)}, expected ${JSON.stringify(backends)}`);
  check(dom.cells > 0 && dom.cells % backends.length === 0, `#matrix has ${dom.cells} td.cell, expected a positive multiple of ${backends.length}`);
  check(
    dom.failed.length === failures.length,
    `#matrix has ${dom.failed.length} failed cell(s) (${dom.failed.map((f) => `${f.backend} ${f.case}`).join(", ") || "none"}), expected ${failures.length}`,
  );
  for (const want of failures) {
    const cell = dom.failed.find((f) => f.backend === want.backend && f.case === want.case);
    if (!check(cell !== undefined, `no failed cell for ${want.backend} ${want.case}`)) continue;
    if (!check(cell.href !== null, `the failed cell ${want.backend} ${want.case} has no a[href^="#ev-"]`)) continue;
    const id = decodeURIComponent(cell.href.slice(1));
    const exists = await page.evaluate((id) => document.getElementById(id) !== null, id);
    if (!check(exists, `the failed cell ${want.backend} ${want.case} links to ${cell.href}, which is not in the page`)) continue;
    const link = page.locator(`#matrix td.cell.outcome-fail[data-backend="${want.backend}"][data-case="${want.case}"] a[href^="#ev-"]`);
    await link.click();
    // Wait on the condition itself, with a deadline, rather than for a while.
    const targeted = await page
      .waitForFunction((id) => document.querySelector(":target")?.id === id, id, { timeout: 10_000 })
      .then(() => true)
      .catch(() => false);
    const target = await page.evaluate(() => document.querySelector(":target")?.id ?? null);
    check(targeted, `clicking ${cell.href} left :target at ${target === null ? "nothing" : `#${target}`}`);
    // Bring the top of the page back for the screenshot.
    await page.evaluate(() => window.scrollTo(0, 0));
  }
  for (const [id, svg] of Object.entries(dom.charts)) {
    if (!check(svg !== null, `#${id} has no svg`)) continue;
    check(svg.width > 0 && svg.height > 0, `#${id} svg renders at ${svg.width}×${svg.height}`);
    check(svg.shapes > 0, `#${id} svg is empty`);
  }

  mkdirSync(dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true });
  await context.close();
} catch (error) {
  console.error(`check-report: could not check ${htmlPath}: ${error.stack ?? error}`);
  await browser.close();
  process.exit(2);
}
await browser.close();

// Gathered only now: a request or an error may come at any point up to here.
check(consoleErrors.length === 0, `console errors: ${consoleErrors.map((e) => JSON.stringify(e)).join("; ")}`);
check(pageErrors.length === 0, `page errors: ${pageErrors.map((e) => JSON.stringify(e)).join("; ")}`);
const attemptList = [...attempts.values()].map((a) => `${a.url} (${a.seen.join(", ")})`);
check(attempts.size === 0, `network requests other than the file: ${attempts.size} attempt(s): ${attemptList.join("; ")}`);

for (const problem of problems) console.log(`problem: ${problem}`);
if (problems.length === 0) {
  console.log(
    `check-report: ok, ${checked} checks passed (${backends.length} backends, ${failures.length} failed cell(s) linked, ` +
      `${CHARTS.length} charts, 0 requests, 0 console errors); screenshot ${screenshotPath}`,
  );
} else {
  console.log(`check-report: FAILED, ${problems.length} of ${checked} checks failed; screenshot ${screenshotPath}`);
  process.exit(1);
}
