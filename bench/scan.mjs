import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { scanRepository } from '../dist/core/scan.js';

const FOLDERS = 20;
const RUNS = 5;
// The product goals are for 10,000 files on 2 cores; the 1,000-file rows scale them linearly.
const GOALS_MS = { cold: { 1000: 30, 10000: 300 }, warm: { 1000: 6, 10000: 60 } };

/** Scan timings on generated repositories of 1,000 and 10,000 small files: cold (no cache), warm (no change). */
export async function benchScan() {
  const rows = [];
  for (const fileCount of [1000, 10000]) {
    const root = await mkdtemp(join(tmpdir(), 'dbfast-bench-scan-'));
    try {
      await generateRepository(root, fileCount);
      const cachePath = join(root, '.dbfast', 'scan-cache.json');
      const cold = await medianMs(async () => {
        await rm(cachePath, { force: true });
        await scanRepository({ root, cachePath });
      });
      await scanRepository({ root, cachePath });
      const warm = await medianMs(() => scanRepository({ root, cachePath }));
      const label = fileCount.toLocaleString('en-US');
      rows.push({ name: `scan ${label} files, cold`, dbfastMs: cold, goalMs: GOALS_MS.cold[fileCount] });
      rows.push({ name: `scan ${label} files, warm`, dbfastMs: warm, goalMs: GOALS_MS.warm[fileCount] });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  return rows;
}

async function generateRepository(root, fileCount) {
  const perFolder = Math.ceil(fileCount / FOLDERS);
  // Real repositories are older than the stat cache's racy window; fresh files would all be re-hashed.
  const anHourAgo = new Date(Date.now() - 3_600_000);
  for (let folder = 0; folder < FOLDERS; folder++) {
    const folderPath = join(root, `${folder}_step`);
    await mkdir(folderPath);
    const writes = [];
    for (let file = 0; file < perFolder && folder * perFolder + file < fileCount; file++) {
      const filePath = join(folderPath, `${String(file).padStart(4, '0')}_part.sql`);
      const sql = `insert into items (folder, file, note) values (${folder}, ${file}, 'generated row');\n`.repeat(4);
      writes.push(writeFile(filePath, sql).then(() => utimes(filePath, anHourAgo, anHourAgo)));
    }
    await Promise.all(writes);
  }
}

async function medianMs(run) {
  const timings = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await run();
    timings.push(performance.now() - started);
  }
  timings.sort((a, b) => a - b);
  return Math.round(timings[Math.floor(RUNS / 2)] * 10) / 10;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await benchScan();
  console.table(rows.map((row) => ({ ...row, ok: row.dbfastMs <= row.goalMs ? 'yes' : 'NO' })));
}
