// Run once while podlab/ghost is built, in Ghost's directory, in a network namespace of its own
// (loopback only): boots Ghost so that it creates and seeds its database, stops it, then clears the
// seeded images that point at ghost.org, which Ghost would otherwise fetch (for their size) on
// every page. A pod then starts from a normal boot, and nothing in it reaches for the outside.
'use strict';

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { createRequire } = require('node:module');

const BOOT_DEADLINE_MS = 300000;
let ghost = null;

function status(url) {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', () => resolve(0));
    request.setTimeout(5000, () => request.destroy());
  });
}

async function main() {
  const started = Date.now();
  ghost = spawn(process.execPath, ['index.js'], { stdio: 'inherit' });
  const ended = new Promise((resolve) => ghost.on('exit', (code, signal) => resolve({ code, signal })));
  let exited = null;
  ended.then((how) => { exited = how; });
  for (;;) {
    if (exited) throw new Error(`Ghost exited while booting (${JSON.stringify(exited)})`);
    if (Date.now() - started > BOOT_DEADLINE_MS) throw new Error(`Ghost did not answer within ${BOOT_DEADLINE_MS} ms`);
    if ((await status('http://127.0.0.1:2368/')) === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  console.log(`podlab: Ghost answered 200 after ${Date.now() - started} ms (first boot: database created)`);
  ghost.kill('SIGTERM');
  const how = await ended;
  if (how.code !== 0) throw new Error(`Ghost did not shut down cleanly (${JSON.stringify(how)})`);

  const Database = createRequire(path.join(process.cwd(), 'index.js'))('better-sqlite3');
  const database = new Database('content/data/ghost.db');
  const cover = database.prepare("UPDATE settings SET value = NULL WHERE key = 'cover_image'").run();
  const features = database.prepare('UPDATE posts SET feature_image = NULL WHERE feature_image IS NOT NULL').run();
  database.close();
  console.log(`podlab: cleared the cover image (${cover.changes}) and ${features.changes} posts' feature images`);
}

main().catch((error) => {
  console.error(`podlab: ${error.message}`);
  if (ghost && ghost.exitCode === null && ghost.signalCode === null) ghost.kill('SIGKILL');
  process.exit(1);
});
