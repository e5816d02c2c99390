/**
 * Sending SQL to the server with as few round trips as possible: several statements in one simple
 * Query message (counting CommandComplete messages tells which one failed), and COPY FROM stdin
 * with its inline data.
 */
import type pg from 'pg';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { from as copyFrom } from 'pg-copy-streams';

export interface BatchFailure {
  error: pg.DatabaseError | Error;
  /** Index of the statement that failed: the count of statements that completed before it. */
  statementIndex: number;
}

/**
 * A node-postgres "submittable": pg hands it every protocol message of its query. Rows are
 * discarded (scripts run for their effects), so a large SELECT in a seed file costs no memory.
 */
class BatchQuery {
  completed = 0;

  constructor(
    readonly text: string,
    private readonly settle: (failure: BatchFailure | null) => void,
  ) {}

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCommandComplete(): void {
    this.completed++;
  }

  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  handleCopyInResponse(connection: { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail('COPY FROM STDIN needs inline data ending with \\.');
  }

  /** node-postgres detaches the query before this call: no ReadyForQuery will reach it. */
  handleError(error: Error): void {
    this.settle({ error, statementIndex: this.completed });
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }
}

/** Runs `text` (one or more statements) in one round trip; resolves to null or the failure. */
export function runBatch(client: pg.Client, text: string): Promise<BatchFailure | null> {
  return new Promise((resolve) => {
    let settled = false;
    const query = new BatchQuery(text, (failure) => {
      if (settled) return;
      settled = true;
      resolve(failure);
    });
    client.query(query as unknown as pg.QueryConfig);
  });
}

const YIELD_EVERY = 1 << 20;

/**
 * Runs a COPY ... FROM STDIN statement, streaming `data` (pieces of the inline data) with
 * backpressure; resolves to the rows copied. Stops reading `data` once the server reports an error.
 */
export async function runCopyIn(client: pg.Client, statement: string, data: Iterable<string>): Promise<number> {
  const stream = client.query(copyFrom(statement));
  let failure: Error | null = null;
  const finished = new Promise<number>((resolve, reject) => {
    stream.on('error', (error) => {
      failure = error;
      reject(error);
    });
    stream.on('finish', () => resolve(stream.rowCount ?? 0));
  });
  finished.catch(() => {}); // awaited below; this only silences the early rejection
  try {
    let sent = 0;
    for (const piece of data) {
      if (failure) break;
      if (!stream.write(piece, 'utf8')) await drained(stream);
      // 'drain' comes on the next tick: let the socket be read now and then, so an error the server
      // reported (a bad row early in a large block) stops the sending instead of waiting for the end.
      sent += piece.length;
      if (sent >= YIELD_EVERY) {
        sent = 0;
        await yieldToEventLoop();
      }
    }
  } catch (error) {
    // The data could not be read: CopyFail ends the COPY so the connection can be used again.
    stream.destroy(error as Error);
    await finished.catch(() => {});
    throw error;
  }
  if (!failure) stream.end();
  return finished;
}

/** Resolves when `stream` can take more, or has failed (the failure is handled by its 'error' listener). */
function drained(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done).off('error', done);
      resolve();
    };
    stream.on('drain', done).on('error', done);
  });
}
