// The web console in a real browser (Chromium through playwright-core) against the real app on
// PGlite, with the tiny model and an in-process worker, so jobs really train: sign in, upload
// and validate a file, create a job from it, watch its loss curve grow, chat with a checkpoint
// next to the base model, cancel a job, and see a bad key's error. Every page is screenshotted
// into a temporary folder (printed), and any browser console error fails the test that caused
// it. Skipped, saying why, when no Chromium is installed (set CHROMIUM_PATH).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import type OpenAI from "openai";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { RunningWorker } from "../../worker/worker-loop.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { trainingLines, uploadTraining } from "../support/job-fixtures.js";
import type { TestApp } from "../support/test-app.js";
import { startJobsStack, stopStack } from "../support/test-stack.js";

// page.evaluate() callbacks run in the browser; these names are the page's globals there
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare const localStorage: any;

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (install Debian's chromium, or set CHROMIUM_PATH)`;
const SHOTS = mkdtempSync(join(tmpdir(), "tunehouse-console-shots-"));
const WAIT_MS = 60_000;

describe("web console in Chromium [pglite]", { skip }, () => {
  let db: TestDatabase;
  let app: TestApp;
  let worker: RunningWorker;
  let model: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** console errors of the current test; a test names the ones it expects (a refused key's 401) */
  let consoleErrors: string[] = [];
  let expectedErrors: RegExp[] = [];
  let trainingFileId: string;
  let validationFileId: string;
  let jobId: string;
  let checkpointModel: string;

  const shot = async (name: string) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const status = () => page.locator(".job-page h1 .badge").getAttribute("data-status");

  before(async () => {
    ({ db, app, worker, model } = await startJobsStack(testDatabases()[0]));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(`${msg.text()} (${msg.location().url})`);
    });
    page.on("pageerror", (err) => consoleErrors.push(`uncaught: ${err.message}`));
    page.on("dialog", (dialog) => void dialog.accept());
    console.log(`# console screenshots: ${SHOTS}`);
  });
  after(async () => {
    await browser?.close();
    await stopStack({ worker, app, db });
  });
  beforeEach(() => {
    consoleErrors = [];
    expectedErrors = [];
  });
  afterEach(() => {
    const unexpected = consoleErrors.filter((e) => !expectedErrors.some((re) => re.test(e)));
    assert.deepEqual(unexpected, [], "browser console errors");
  });

  it("refuses a bad key with the server's message", async () => {
    expectedErrors = [/401 \(Unauthorized\)/];
    await page.goto(`${app.origin}/`);
    await page.getByLabel("API key").fill("sk-not-a-real-key-123456");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page
      .getByRole("alert")
      .getByText(/Incorrect API key provided/)
      .waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("tunehouse.apiKey")), null);
    await shot("sign-in-refused");
  });

  it("signs in with a key kept in sessionStorage only", async () => {
    await page.getByLabel("API key").fill(app.apiKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Fine-tuning jobs" }).waitFor();
    await page.getByText("No fine-tuning jobs yet.").waitFor();
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem("tunehouse.apiKey"),
      local: localStorage.length,
    }));
    assert.deepEqual(stored, { session: app.apiKey, local: 0 });
    await shot("jobs-empty");
  });

  it("uploads a file with a progress bar and shows its validation, problems linked to their lines", async () => {
    await page.goto(`${app.origin}/#/files`);
    const bad = `${trainingLines(2)}{"messages":[{"role":"user","content":"no answer"}]}\n${trainingLines(1)}`;
    await page
      .locator('input[type="file"]')
      .setInputFiles({ name: "broken.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(bad) });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await page.locator("#validation").getByText("1 invalid example").waitFor();
    await page.locator("#validation").getByRole("button", { name: "line 3" }).click();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "line-3");

    validationFileId = await uploadTraining(app.client, trainingLines(4, 100), "valid.jsonl");
    await page.goto(`${app.origin}/#/files`);
    await page.locator('input[type="file"]').setInputFiles({
      name: "train.jsonl",
      mimeType: "application/jsonl",
      buffer: Buffer.from(trainingLines(12)),
    });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await page.locator(".file-page").waitFor();
    trainingFileId = (await page.locator(".file-page").getAttribute("data-file"))!;
    await page.locator("#validation").getByText("Every example is valid").waitFor();
    assert.match((await page.locator("#validation").textContent())!, /12 examples, format chat/);
    // the mask preview (preflight): the assistant's answers are trained, the user's words are not,
    // and the chat template's special tokens are marked
    const preview = page.locator("#mask-preview");
    await preview.waitFor();
    const trained = await preview.locator(".seg.trained").allTextContents();
    assert.ok(trained.join("").includes("City 0."), trained.join("|"));
    assert.ok(!trained.join("").includes("Capital"), trained.join("|"));
    assert.ok((await preview.locator(".seg.special").count()) > 0);
    // beside each empty hyperparameter field, what `auto` resolves to
    await page.locator('.job-form label:has(input[name="n_epochs"]) .resolved').waitFor();
    await shot("file");
  });

  it("uploads a large file through the Uploads API in parts, with its md5", async () => {
    // the console's own upload module in the page, with parts of 1 KiB so that a small file takes several
    // (a string, not a function: the test's transpiler would add helpers the page does not have)
    const file = (await page.evaluate(`(async () => {
      const { uploadFile } = await import("/console/lib/upload.js");
      let progressCalls = 0;
      const f = await uploadFile(new File([${JSON.stringify(trainingLines(40))}], "parts.jsonl"), "fine-tune", {
        partBytes: 1024,
        onProgress: () => progressCalls++,
      });
      return { ...f, progressCalls };
    })()`)) as {
      object: string;
      id: string;
      bytes: number;
      validation: { examples: number };
      progressCalls: number;
    };
    assert.equal(file.object, "file");
    assert.equal(file.bytes, Buffer.byteLength(trainingLines(40)));
    assert.equal(file.validation.examples, 40);
    assert.ok(file.progressCalls > 0);
    const content = await (await app.client.files.content(file.id)).text();
    assert.equal(content, trainingLines(40));
  });

  it("creates a job from the file and draws the loss curve as it trains", async () => {
    const form = page.locator(".job-form");
    await form.locator('input[name="suffix"]').fill("console");
    await form.locator('select[name="validation_file"]').selectOption(validationFileId);
    await form.locator('input[name="n_epochs"]').fill("4");
    await form.locator('input[name="batch_size"]').fill("2");
    await form.locator('input[name="learning_rate_multiplier"]').fill("20");
    await form.locator("summary").click();
    await form.locator('input[name="max_seq_length"]').fill("64");
    await form.locator('input[name="warmup_ratio"]').fill("0");
    await form.locator('input[name="metadata"]').fill("team=console");
    await form.getByRole("button", { name: "Create job" }).click();
    await page.locator(".job-page").waitFor();
    jobId = (await page.locator(".job-page").getAttribute("data-job"))!;
    assert.match(jobId, /^ftjob-/);
    const created = await app.client.fineTuning.jobs.retrieve(jobId);
    assert.equal(created.training_file, trainingFileId);
    assert.equal(created.validation_file, validationFileId);
    assert.deepEqual(created.metadata, { team: "console" });

    // the chart's own count of drawn steps grows while the job is still running
    const points = async () => Number(await page.locator("#loss-chart").getAttribute("data-points"));
    let firstSeen = 0;
    for (const until = Date.now() + WAIT_MS; firstSeen === 0; ) {
      const n = await points();
      if (n > 0 && (await status()) === "running") firstSeen = n;
      else
        assert.ok(
          Date.now() < until && !["succeeded", "failed"].includes((await status()) ?? ""),
          `no point drawn while running (status ${await status()})`,
        );
      await page.waitForTimeout(100);
    }
    await page.waitForFunction(
      (n) => Number(document.querySelector("#loss-chart")?.getAttribute("data-points")) > n,
      firstSeen,
    );
    await shot("job-running");
    await page.locator('.job-page h1 .badge[data-status="succeeded"]').waitFor();
    const steps = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data[0]!.step_number;
    await page.waitForFunction(
      (n) => Number(document.querySelector("#loss-chart")?.getAttribute("data-points")) === n,
      steps,
    );
    assert.ok(Number(await page.locator("#lr-chart").getAttribute("data-points")) === steps);
    // training and validation loss both drawn
    assert.match(
      (await page.locator("#loss-chart .u-legend").textContent())!,
      /training loss.*validation loss/,
    );
    await page.locator("#fine-tuned-model").waitFor();
    await page.locator(".checkpoints li").first().waitFor();
    await shot("job");
    // the top of the page (summary and charts), small enough for the README
    await page.evaluate(() => window.scrollTo(0, 0));
    const charts = (await page.locator(".charts").boundingBox())!;
    await page.screenshot({
      path: join(SHOTS, "job-top.png"),
      clip: { x: 0, y: 0, width: 1280, height: Math.ceil(charts.y + charts.height + 8) },
    });
  });

  it("shows the full history after a reload", async () => {
    await page.reload();
    const steps = (await app.client.fineTuning.jobs.checkpoints.list(jobId)).data[0]!.step_number;
    await page.waitForFunction(
      (n) => Number(document.querySelector("#loss-chart")?.getAttribute("data-points")) === n,
      steps,
    );
    await page.getByText("The job has successfully completed").waitFor();
  });

  it("opens a checkpoint in the playground and streams it side by side with the base model", async () => {
    const first = page.locator(".checkpoints li").first();
    checkpointModel = (await first.getAttribute("data-checkpoint"))!;
    await first.getByRole("link", { name: "Chat with this checkpoint" }).click();
    await page.locator('.pane[data-pane="1"] select').waitFor();
    assert.equal(await page.locator('.pane[data-pane="0"] select').inputValue(), model);
    assert.equal(await page.locator('.pane[data-pane="1"] select').inputValue(), checkpointModel);

    const order: string[] = [];
    const chat = (r: { url(): string }) => r.url().endsWith("/v1/chat/completions");
    page.on("request", (r) => chat(r) && order.push(`start ${r.postDataJSON().model}`));
    page.on("requestfinished", (r) => chat(r) && order.push(`end ${r.postDataJSON().model}`));
    page.on(
      "requestfailed",
      (r) => chat(r) && order.push(`failed ${r.postDataJSON().model}: ${r.failure()?.errorText}`),
    );
    await page.getByLabel("Max tokens").fill("24");
    await page.getByLabel("Message").fill("Capital 3?");
    await page.getByLabel("Message").press("Enter");
    await page.waitForFunction(() =>
      [...document.querySelectorAll(".pane")].every(
        (p) => p.getAttribute("data-state") === "done" && Number(p.getAttribute("data-chunks")) > 0,
      ),
    );
    for (const until = Date.now() + WAIT_MS; order.length < 4 && Date.now() < until; )
      await page.waitForTimeout(20);
    // both requests were sent before either answer ended: the two models answered at once
    assert.deepEqual(
      order.slice(0, 2).sort(),
      [`start ${checkpointModel}`, `start ${model}`].sort(),
      order.join(", "),
    );
    assert.deepEqual(
      order.slice(2).map((e) => e.split(" ")[0]),
      ["end", "end"],
      order.join(", "),
    );
    for (const pane of ["0", "1"]) {
      assert.ok(
        (await page.locator(`.pane[data-pane="${pane}"] .msg.assistant .tok`).count()) > 0,
        `pane ${pane}: tokens with logprobs`,
      );
    }
    const token = page.locator('.pane[data-pane="1"] .tok').first();
    await token.hover();
    assert.match((await token.getAttribute("data-tip"))!, /%/);
    await shot("playground");
  });

  it("shows the models with their lineage", async () => {
    await page.goto(`${app.origin}/#/models`);
    const job = page.locator(`.lineage li[data-job="${jobId}"]`);
    await job.waitFor();
    assert.equal(await job.locator(`[data-model="${checkpointModel}"]`).count(), 1);
    await shot("models");
  });

  it("pauses, resumes and cancels a running job", async () => {
    const file = await uploadTraining(app.client, trainingLines(12));
    const long = await app.client.fineTuning.jobs.create({
      model,
      training_file: file,
      suffix: "long",
      method: {
        type: "supervised",
        supervised: { hyperparameters: { n_epochs: 50, batch_size: 2, max_seq_length: 64 } },
      },
    } as OpenAI.FineTuning.JobCreateParams);
    await page.goto(`${app.origin}/#/jobs`);
    await page.locator(`tr[data-job="${long.id}"]`).getByRole("link").click();
    await page.locator('.job-page h1 .badge[data-status="running"]').waitFor();
    await page.getByRole("button", { name: "Pause" }).click();
    await page.locator('.job-page h1 .badge[data-status="paused"]').waitFor();
    await page.getByRole("button", { name: "Resume" }).click();
    // back in the queue (a worker takes it up again from its checkpoint; the job-control tests cover that)
    await page.locator('.job-page h1 .badge:is([data-status="queued"], [data-status="running"])').waitFor();
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.locator('.job-page h1 .badge[data-status="cancelled"]').waitFor();
    assert.equal((await app.client.fineTuning.jobs.retrieve(long.id)).status, "cancelled");
    await page.getByText("Cancel job").waitFor({ state: "detached" });
  });

  it("lists the jobs, filtered by status and metadata", async () => {
    await page.goto(`${app.origin}/#/jobs`);
    await page.locator("tr[data-job]").nth(1).waitFor();
    await page.getByLabel("Status").selectOption("cancelled");
    await page.waitForFunction(() => document.querySelectorAll("tr[data-job]").length === 1);
    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("Metadata").fill("team=console");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForFunction((id) => {
      const rows = document.querySelectorAll("tr[data-job]");
      return rows.length === 1 && rows[0].getAttribute("data-job") === id;
    }, jobId);
    await shot("jobs");
  });

  it("says what is missing for an unknown job", async () => {
    expectedErrors = [/404 \(Not Found\)/];
    await page.goto(`${app.origin}/#/jobs/ftjob-doesnotexist`);
    await page.getByRole("heading", { name: "Not found" }).waitFor();
    // leave the page here, so a late 404 of its requests is counted in this test, not the next
    await page.goto("about:blank");
  });

  it("fits a phone's width", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${app.origin}/#/jobs/${jobId}`);
    await page.waitForFunction(
      () => Number(document.querySelector("#loss-chart")?.getAttribute("data-points")) > 0,
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page wider than the phone by ${overflow}px`);
    await shot("job-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("sends a refused key back to sign-in with a message", async () => {
    expectedErrors = [/401 \(Unauthorized\)/];
    await page.evaluate(() => sessionStorage.setItem("tunehouse.apiKey", "sk-revoked-key-000000"));
    await page.goto(`${app.origin}/#/models`);
    await page.getByText(/The API key was refused: Incorrect API key provided/).waitFor();
    await page.getByLabel("API key").waitFor();
  });
});
