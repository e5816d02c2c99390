/**
 * One real embedded PostgreSQL server for the whole test run (tests that need more start their
 * own with startServer). Tests get its port through `inject('serverPort')`.
 */
import type { TestProject } from 'vitest/node';
import { startServer } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    serverPort: number;
  }
}

export default async function setup(project: TestProject) {
  const server = await startServer();
  project.provide('serverPort', server.port);
  return server.stop;
}
