/**
 * Child process of bench/memory.mjs: loads one SQL file into a database with dbfast's executor and
 * prints its own peak resident memory, so the measurement holds nothing but the load.
 * Usage: node bench/memory-load.mjs HOST PORT USER DATABASE FILE
 */
import { basename, dirname } from 'node:path';
import { withSession } from '../dist/core/pg/client.js';
import { embeddedTarget } from '../dist/core/pg/target.js';
import { executeFiles } from '../dist/core/sql/execute.js';

const [host, port, user, database, file] = process.argv.slice(2);
const target = embeddedTarget({ host, port: Number(port), user });
await withSession(target, database, (session) =>
  executeFiles(session, [{ absolutePath: file, relativePath: basename(file) }], { repositoryRoot: dirname(file) }),
);
console.log(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
