// The UI path, checked in a real browser: `make dev`'s Dagster UI driven in headless Chromium (the system
// package, through playwright-core). Run it with `bash scripts/check_ui.sh`, which installs playwright-core first.
//
// In a temporary DAGSTER_HOME and data directory it runs `smsc-dagster demo`, then `smsc-dagster dev` on free
// ports, and then, as a person would in the UI:
//   1. the global asset lineage shows smsc/sms_history and the delivery tables;
//   2. the sms_history asset page shows its column schema (int_id, status_class, ...) and the demo's last day;
//   3. its metadata plots render;
//   4. the smsc_refresh job's runs and the Overview list the demo's run (it is linked to the code location);
//   5. Materialize… -> partition selection -> three days before the demo's -> Launch backfill; the backfill and
//      its run succeed (polled read-only), and the backfill page says so.
// Screenshots go to ui-check/ (or $UI_CHECK_OUT), with the demo's and dev's logs. Exit status 1 on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SMSC_DAGSTER = process.env.SMSC_DAGSTER || join(ROOT, '.venv', 'bin', 'smsc-dagster');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = resolve(process.env.UI_CHECK_OUT || join(ROOT, 'ui-check'));
const UI_TIMEOUT_MS = 30_000; // one UI element to appear
const DEV_READY_MS = 240_000; // `smsc-dagster dev` to print the UI's address
const BACKFILL_MS = 300_000; // the backfill to finish
const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const DELIVERY_TABLES = ['delivery_daily', 'delivery_by_operator', 'delivery_by_country'];

const started = Date.now();
const screenshots = [];
let dev = null;
let browser = null;
let page = null;

function log(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

function isoDay(day, offset) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + offset);
  return date.toISOString().slice(0, 10);
}

async function shot(name) {
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path });
  screenshots.push(path);
  log(`screenshot ${path}`);
}

async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  } catch (error) {
    throw new Error(`not shown in the UI within ${UI_TIMEOUT_MS / 1000} s: ${what}`);
  }
}

async function settled(locator, what) {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  while ((await locator.count()) > 0) {
    if (Date.now() > deadline) throw new Error(`still loading after ${UI_TIMEOUT_MS / 1000} s: ${what}`);
    await new Promise((ok) => setTimeout(ok, 250));
  }
}

async function graphql(ui, query, variables = {}) {
  // Read-only queries, to wait for the backfill's end; every action goes through the page.
  const response = await fetch(`${ui}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function runDemo(env, dataDir, simPort) {
  log('smsc-dagster demo (temporary DAGSTER_HOME and data directory)');
  const demo = spawnSync(SMSC_DAGSTER, ['demo', '--data-dir', dataDir, '--sim-port', String(simPort)], {
    cwd: ROOT, env, encoding: 'utf-8', timeout: 300_000,
  });
  const output = `${demo.stdout || ''}${demo.stderr || ''}`;
  createWriteStream(join(OUT, 'demo.log')).end(output);
  if (demo.status !== 0) throw new Error(`smsc-dagster demo failed (${demo.status ?? demo.error}):\n${output}`);
  const range = output.match(/materializing (\d{4}-\d{2}-\d{2}) \.\. (\d{4}-\d{2}-\d{2})/);
  const run = output.match(/\(run ([0-9a-f-]{36})\)/);
  if (!range || !run) throw new Error(`unexpected demo output:\n${output}`);
  return { first: range[1], last: range[2], runId: run[1] };
}

function startDev(env, dataDir, uiPort, simPort) {
  log(`smsc-dagster dev --port ${uiPort} --sim-port ${simPort}`);
  const logFile = createWriteStream(join(OUT, 'dev.log'));
  dev = spawn(SMSC_DAGSTER, ['dev', '--port', String(uiPort), '--sim-port', String(simPort), '--data-dir', dataDir], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`smsc-dagster dev printed no UI address in ${DEV_READY_MS / 1000} s`)),
      DEV_READY_MS);
    const onData = (chunk) => {
      logFile.write(chunk);
      output += chunk.toString();
      const found = output.match(/Dagster UI: (http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        ok(found[1]);
      }
    };
    dev.stdout.on('data', onData);
    dev.stderr.on('data', onData);
    dev.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`smsc-dagster dev exited (${code}) before the UI was up:\n${output.slice(-3000)}`));
    });
  });
}

async function stopDev() {
  if (!dev || dev.exitCode !== null || dev.signalCode !== null) return;
  const exited = new Promise((ok) => dev.once('exit', ok));
  dev.kill('SIGINT'); // as Ctrl-C: it stops dagster dev, then the simulator
  const timer = setTimeout(() => dev.kill('SIGKILL'), 90_000);
  await exited;
  clearTimeout(timer);
  log(`smsc-dagster dev stopped (${dev.exitCode ?? dev.signalCode})`);
}

async function checkAssetGraph(ui) {
  log('1. asset graph');
  await page.goto(`${ui}/asset-groups`);
  await visible(page.getByText('Global asset lineage'), 'the global asset lineage page');
  for (const name of ['sms_history', ...DELIVERY_TABLES]) {
    await visible(page.getByText(name, { exact: true }), `asset ${name} in the lineage`);
  }
  await settled(page.getByText(/^Loading/), 'the asset nodes\' status');
  await visible(page.getByText('Materialized'), "the demo's materializations on the graph");
  await shot('01-asset-graph');
}

async function checkHistoryAsset(ui, demo) {
  log('2. smsc/sms_history: column schema');
  await page.goto(`${ui}/assets/smsc/sms_history`);
  await visible(page.getByText('Columns', { exact: true }), 'the Columns section of smsc/sms_history');
  for (const column of ['int_id', 'status_class', 'operator', 'cost']) {
    await visible(page.getByText(column, { exact: true }), `column ${column} in the schema`);
  }
  await visible(page.getByText(demo.last, { exact: true }), `the demo's latest partition ${demo.last}`);
  await shot('02-sms-history-columns');

  log('3. smsc/sms_history: metadata plots');
  await page.getByRole('button', { name: /Plots/ }).click();
  const plot = page.getByText('delivery_rate', { exact: true });
  await visible(plot, 'the delivery_rate plot');
  await plot.first().scrollIntoViewIfNeeded();
  await visible(page.locator('canvas'), 'a rendered chart');
  await shot('03-sms-history-plots');
}

async function checkDemoRunLinked(ui, demo) {
  log("4. the demo's run on the job's Runs page and the Overview");
  await page.goto(`${ui}/locations/smsc_dagster/jobs/smsc_refresh/runs`);
  await visible(page.getByText(demo.runId.slice(0, 8)), `the demo's run ${demo.runId} among smsc_refresh's runs`);
  await shot('04-job-runs');
  await page.goto(`${ui}/overview/activity/timeline`);
  await visible(page.getByText('smsc_refresh'), 'smsc_refresh on the Overview timeline');
  await shot('05-overview');
}

async function launchBackfill(ui, partitions) {
  log(`5. backfill of ${partitions[0]} .. ${partitions[2]} from the asset page`);
  await page.goto(`${ui}/assets/smsc/sms_history`);
  await page.getByRole('button', { name: /Materialize…/ }).first().click();
  const dialog = page.getByRole('dialog').filter({ hasText: 'Launch runs to materialize' });
  await visible(dialog, 'the launch dialog');
  await dialog.getByRole('button', { name: 'Custom', exact: true }).click();
  const input = dialog.getByRole('textbox').first();
  await input.fill(`[${partitions[0]}...${partitions[2]}]`);
  await input.press('Enter');
  await visible(dialog.getByText('3 partitions', { exact: true }), 'a selection of 3 partitions');
  await shot('06-backfill-dialog');
  await dialog.getByRole('button', { name: 'Launch backfill' }).click();
  const toast = page.getByText(/Created backfill/);
  await visible(toast, 'the "Created backfill" notice');
  const id = (await toast.first().innerText()).match(/Created backfill\s+(\S+)/)?.[1];
  if (!id) throw new Error('no backfill id in the notice');
  log(`backfill ${id} created`);
  return id;
}

async function waitForBackfill(ui, id) {
  const query = `query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status partitionNames runs(limit: 10) { runId status } } } }`;
  const deadline = Date.now() + BACKFILL_MS;
  let state = null;
  while (Date.now() < deadline) {
    state = (await graphql(ui, query, { id })).partitionBackfillOrError;
    const runs = state.runs || [];
    const done = !['REQUESTED', 'CANCELING'].includes(state.status) && runs.every((r) => !['QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED'].includes(r.status));
    if (done) break;
    await new Promise((ok) => setTimeout(ok, 2000));
  }
  log(`backfill ${id}: ${state.status}; runs ${JSON.stringify(state.runs)}`);
  await page.goto(`${ui}/runs/b/${id}?tab=runs`);
  await visible(page.getByText(id), 'the backfill page');
  if (state.status !== 'COMPLETED_SUCCESS' || !state.runs.length || state.runs.some((r) => r.status !== 'SUCCESS')) {
    throw new Error(`backfill ${id} did not succeed: ${JSON.stringify(state)}`);
  }
  await visible(page.getByText(/Success|Completed/), 'a successful backfill on its page');
  await shot('07-backfill');
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'smsc-ui-check-'));
  try {
    const home = join(tmp, 'dagster_home');
    const dataDir = join(tmp, 'data');
    mkdirSync(home);
    copyFileSync(join(ROOT, 'dagster_home', 'dagster.yaml'), join(home, 'dagster.yaml')); // run queue and pools
    const env = { ...process.env, DAGSTER_HOME: home };
    delete env.SMSC_API_KEY;
    const [uiPort, simPort] = [await freePort(), await freePort()];

    const demo = runDemo(env, dataDir, simPort);
    log(`demo materialized ${demo.first} .. ${demo.last} in run ${demo.runId}`);
    const ui = await startDev(env, dataDir, uiPort, simPort);
    log(`UI at ${ui}`);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    // The first visit may open Dagster's "Join the Dagster community" dialog: skip it whenever it shows.
    await page.addLocatorHandler(page.getByText('Join the Dagster community'), async () => {
      await page.getByRole('button', { name: 'Skip' }).click();
    });

    await checkAssetGraph(ui);
    await checkHistoryAsset(ui, demo);
    await checkDemoRunLinked(ui, demo);
    const partitions = [-3, -2, -1].map((offset) => isoDay(demo.first, offset));
    const id = await launchBackfill(ui, partitions);
    await waitForBackfill(ui, id);
    log(`UI check passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return 0;
  } catch (error) {
    console.error(`UI check FAILED: ${error.message}`);
    if (page) await shot('failure').catch(() => {});
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopDev();
    rmSync(tmp, { recursive: true, force: true });
    console.log(`screenshots (${screenshots.length}):\n${[...new Set(screenshots)].map((p) => `  ${p}`).join('\n')}`);
    console.log(`logs: ${join(OUT, 'demo.log')}, ${join(OUT, 'dev.log')}`);
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    console.error(`${signal}: stopping`);
    if (browser) await browser.close().catch(() => {});
    await stopDev();
    process.exit(1);
  });
}

process.exitCode = await main();
