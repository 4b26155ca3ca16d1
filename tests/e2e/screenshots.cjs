// Screenshots of the running demo in headless Chromium (scripts/screenshots runs this).
// node screenshots.cjs <job.json>; job: {url, tokens, chromium, out_dir, shots: [...]}.
// Each shot: {name, path, kind: "dashboard" | "flow" | "more_info", entity?, wait_text?}.
// Exits 1 (and says why) when a page stays on "Loading…", a dashboard shows an error card,
// or an expected text never appears; the PNGs of the pages that passed are kept.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

let TIMEOUT_MS = 60_000; // job.timeout_ms changes it (tests)

function fail(message) {
  const error = new Error(message);
  error.screenshotFailure = true;
  return error;
}

async function waitForApp(page, what) {
  // The frontend shows "Loading…" until its websocket calls are answered and a panel is drawn.
  try {
    await page.locator("partial-panel-resolver > *").first().waitFor({ timeout: TIMEOUT_MS });
  } catch {
    const text = (await page.locator("body").innerText().catch(() => "")).slice(0, 200);
    throw fail(`${what}: no panel after ${TIMEOUT_MS / 1000} s (stays on "Loading…" or the login page): ${text}`);
  }
}

async function dashboard(page, shot) {
  await waitForApp(page, shot.name);
  const cards = page.locator("hui-view hui-card, hui-view hui-section, hui-view hui-badge");
  try {
    await cards.first().waitFor({ timeout: TIMEOUT_MS });
  } catch {
    throw fail(`${shot.name}: the dashboard view drew no card within ${TIMEOUT_MS / 1000} s`);
  }
  if (shot.wait_text) {
    try {
      await page.getByText(shot.wait_text).first().waitFor({ timeout: TIMEOUT_MS });
    } catch {
      throw fail(`${shot.name}: "${shot.wait_text}" never appeared`);
    }
  }
  await page.waitForTimeout(2000); // charts and images settle
  const errors = page.locator("hui-error-card");
  const count = await errors.count();
  if (count > 0) {
    const texts = [];
    for (let i = 0; i < count; i += 1) {
      texts.push(
        await errors
          .nth(i)
          .evaluate((card) => (card.shadowRoot || card).textContent.replace(/\s+/g, " ").trim())
      );
    }
    throw fail(`${shot.name}: ${count} "Configuration error" card(s): ${texts.join(" | ")}`);
  }
  const warnings = page.locator("hui-warning");
  if ((await warnings.count()) > 0) {
    const warning = await warnings
      .first()
      .evaluate((card) => (card.shadowRoot || card).textContent.replace(/\s+/g, " ").trim());
    throw fail(`${shot.name}: a card warns: ${warning}`);
  }
  return count;
}

async function flow(page, shot) {
  await waitForApp(page, shot.name);
  // Add integration -> Plexus asks "Do you want to set up Plexus?" first.
  const confirm = page.getByRole("button", { name: "OK", exact: true });
  try {
    await confirm.waitFor({ timeout: 10_000 });
    await confirm.click();
  } catch {
    // no confirmation asked: the flow dialog opens at once
  }
  const dialog = page.locator("dialog-data-entry-flow");
  try {
    await dialog.getByText(shot.wait_text).first().waitFor({ timeout: TIMEOUT_MS });
  } catch {
    throw fail(`${shot.name}: the config flow dialog did not show "${shot.wait_text}"`);
  }
  if (shot.click) {
    await dialog.getByText(shot.click).first().click();
    try {
      await dialog.getByText(shot.then_text).first().waitFor({ timeout: TIMEOUT_MS });
    } catch {
      throw fail(`${shot.name}: after "${shot.click}" the dialog did not show "${shot.then_text}"`);
    }
  }
  await page.waitForTimeout(1000); // the dialog's opening animation
}

async function moreInfo(page, shot) {
  await waitForApp(page, shot.name);
  await page.evaluate((entityId) => {
    document.querySelector("home-assistant").dispatchEvent(
      new CustomEvent("hass-more-info", {
        detail: { entityId },
        bubbles: true,
        composed: true,
      })
    );
  }, shot.entity);
  const dialog = page.locator("ha-more-info-dialog");
  try {
    await dialog.getByText(shot.wait_text).first().waitFor({ timeout: TIMEOUT_MS });
  } catch {
    throw fail(`${shot.name}: the more-info dialog of ${shot.entity} did not show "${shot.wait_text}"`);
  }
  await page.waitForTimeout(1500);
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  TIMEOUT_MS = job.timeout_ms || TIMEOUT_MS;
  const browser = await chromium.launch({
    executablePath: job.chromium,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  let failed = false;
  try {
    const context = await browser.newContext({
      viewport: { width: job.width || 1280, height: job.height || 900 },
      colorScheme: "light",
      locale: "en-US",
    });
    // What the frontend keeps after a login: it reads these and skips the login page.
    await context.addInitScript((tokens) => {
      window.localStorage.setItem("hassTokens", JSON.stringify(tokens));
      window.localStorage.setItem("selectedLanguage", JSON.stringify("en"));
    }, job.tokens);
    for (const shot of job.shots) {
      const page = await context.newPage();
      const problems = [];
      page.on("pageerror", (error) => problems.push(String(error)));
      try {
        await page.goto(`${job.url}${shot.path}`, { waitUntil: "domcontentloaded" });
        if (shot.kind === "dashboard") await dashboard(page, shot);
        else if (shot.kind === "flow") await flow(page, shot);
        else if (shot.kind === "more_info") await moreInfo(page, shot);
        else throw fail(`unknown kind ${shot.kind}`);
        const file = path.join(job.out_dir, `${shot.name}.png`);
        await page.screenshot({ path: file, fullPage: Boolean(shot.full_page) });
        console.log(`  ok  ${shot.name}: ${file}`);
      } catch (error) {
        failed = true;
        const file = path.join(job.out_dir, `FAILED-${shot.name}.png`);
        await page.screenshot({ path: file }).catch(() => {});
        console.log(`  FAILED  ${shot.name}: ${error.message} (page as it was: ${file})`);
        for (const problem of problems) console.log(`          page error: ${problem}`);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.log(`screenshots FAILED: ${error.stack || error}`);
  process.exit(1);
});
