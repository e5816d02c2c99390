/**
 * IntegreSQL's template manager, on dbfast's core: a client initialises a template by hash, fills
 * it, finalises it, then takes test databases copied from it, each from a pool kept per template.
 * The state is on the server (serve/catalog.ts) as much as in memory, so that a restart finds every
 * finalised template and reuses its ready copies; copies handed out are recreated before anyone
 * gets them again.
 *
 * Pool semantics as IntegreSQL documents them: `initialPoolSize` ready copies are made when a
 * template is finalised and kept ready after each hand-out while the pool is below `maxPoolSize`;
 * at the maximum the oldest copies handed out (not connected to, and handed out at least
 * `minimalLifetimeMs` ago) are recreated instead. Unlock returns a copy as it is, recreate
 * replaces it with a fresh one; both give it a new id.
 */
import type pg from 'pg';
import { DbfastError } from '../errors.js';
import { connect, ReusedConnections } from '../pg/client.js';
import { createDatabase, dropDatabase, retryWhileBusy } from '../pg/databases.js';
import { lockKeys, takeAdvisoryLock } from '../pg/locks.js';
import type { ServerTarget } from '../pg/target.js';
import { quoteIdentifier as ident, quoteLiteral } from '../sql/quote.js';
import type { CloneStrategy } from '../strategy.js';
import { markSql, readCatalog, type ServeTestMetadata, templateDatabaseName, testDatabaseName } from './catalog.js';
import { HttpError } from './http.js';

export interface PoolSettings {
  /** Ready copies made when a template is finalised, and kept ready while the pool may grow. */
  initialPoolSize: number;
  /** Copies per template at most, handed out or not. */
  maxPoolSize: number;
  /** Copies being made at once, per template. */
  maxParallel: number;
  /** How long GET .../tests waits for a template to be finalised. */
  finalizeTimeoutMs: number;
  /** How long GET .../tests waits for a ready copy. */
  getTimeoutMs: number;
  /** A copy handed out is not recycled sooner than this. */
  minimalLifetimeMs: number;
}

/** IntegreSQL's `config`: how a client logs in to a database. */
export interface DatabaseConfig {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
}

export interface DatabaseAnswer {
  templateHash: string;
  config: DatabaseConfig;
}

type Login = Omit<DatabaseConfig, 'database'>;

interface TestDatabase {
  /**
   * New whenever the copy is recreated or unlocked: a client still holding an old id (it returned
   * or lost the copy) gets 404, never someone else's copy.
   */
  id: number;
  name: string;
  /** busy: being created, recreated or marked. */
  state: 'ready' | 'dirty' | 'busy';
  handedOutAt: number;
}

interface Template {
  hash: string;
  name: string;
  state: 'initializing' | 'ready';
  oid: number;
  /** Settles when the template database exists (a second initialise waits for it, then answers 423). */
  created: Promise<void>;
  finalized: Deferred;
  tests: Map<number, TestDatabase>;
  /** The last id given; ids only grow, per template. */
  lastId: number;
  /** Requests waiting for a copy, first come first served. */
  waiters: Deferred<TestDatabase>[];
  /** Copies being made for this template; a discard waits for them. */
  work: Set<Promise<void>>;
  discarded: boolean;
  /** Copies that failed in a row: the next waits longer, and waiting requests are told. */
  failures: number;
  retryTimer?: NodeJS.Timeout;
}

/** A promise settled from outside (Promise.withResolvers, which Node 20 lacks). */
interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

const OBJECT_IN_USE = '55006';
/** Copies failing this many times in a row fail the requests waiting for one. */
const FAILURES_REPORTED = 3;

export class TemplateManager {
  private readonly templates = new Map<string, Template>();
  private closing = false;
  /** Set when the session holding the serve lock ended: another serve could start, so this one stops handing out. */
  private lockLost: HttpError | undefined;
  /** Copies being made across all templates, at most maxParallel (each holds a connection). */
  private readonly copySlots: Semaphore;

  private constructor(
    /** The session holding lockKeys.serve while this manager runs. */
    private readonly lock: pg.Client,
    private readonly connections: ReusedConnections,
    private readonly login: Login,
    private readonly settings: PoolSettings,
    private readonly strategy: CloneStrategy | undefined,
    private readonly onError: (error: unknown) => void,
  ) {
    this.copySlots = new Semaphore(settings.maxParallel);
    const lost = () => {
      if (this.closing || this.lockLost) return;
      this.lockLost = new HttpError(503, 'lost the PostgreSQL session holding the dbfast serve lock; restart dbfast serve');
      this.onError(this.lockLost);
      for (const template of this.templates.values()) this.failWaiters(template, this.lockLost);
    };
    lock.on('end', lost);
    lock.on('error', lost);
  }

  /**
   * Reads what a previous run left: finalised templates and their copies are taken over (copies
   * that were handed out are recreated before they are handed out again); templates never
   * finalised and copies never finished are dropped, since nobody can finish them any more.
   */
  static async open(
    target: ServerTarget,
    settings: PoolSettings,
    options: { strategy?: CloneStrategy; onError?: (error: unknown) => void } = {},
  ): Promise<TemplateManager> {
    const { host, port, user, password } = await target.toolConnection(target.maintenanceDatabase);
    const login = { host, port, username: user, password: password ?? '' };
    const lock = await connect(target);
    try {
      if (!(await takeAdvisoryLock(lock, lockKeys.serve, { serverWide: true }))) {
        throw new DbfastError('ALREADY_RUNNING', `another dbfast serve manages the test databases on ${target.label}`, {
          hint: 'use that one, or stop it first: two would hand out the same databases',
        });
      }
      // Idle connections for the copies being made and for concurrent requests (a hand-out is one statement).
      const connections = new ReusedConnections(target, settings.maxParallel + 16);
      const manager = new TemplateManager(lock, connections, login, settings, options.strategy, options.onError ?? (() => {}));
      await connections.use((admin) => manager.takeOver(admin));
      return manager;
    } catch (error) {
      await lock.end().catch(() => {});
      throw error;
    }
  }

  private async takeOver(admin: pg.Client): Promise<void> {
    const catalog = await readCatalog(admin);
    const finalized = new Map(catalog.templates.filter((template) => template.state === 'ready').map((template) => [template.name, template]));
    const leftovers = [
      ...catalog.unfinished,
      ...catalog.templates.filter((template) => template.state !== 'ready').map((template) => template.name),
      ...catalog.tests.filter((test) => finalized.get(templateDatabaseName(test.hash))?.oid !== test.templateOid).map((test) => test.name),
    ];
    for (const name of leftovers) await dropDatabase(admin, name);
    for (const found of finalized.values()) {
      const template = this.track(found.hash, found.name, 'ready', Promise.resolve());
      template.oid = found.oid;
      template.finalized.resolve();
      for (const test of catalog.tests.filter((test) => test.templateOid === found.oid)) {
        template.tests.set(test.id, { id: test.id, name: test.name, state: test.state, handedOutAt: 0 });
        // Names carry the id they were created with, ids may have grown since: new ones exceed both.
        template.lastId = Math.max(template.lastId, test.id, Number(test.name.slice(found.name.length + 1)));
      }
      this.pump(template);
    }
  }

  /** POST /api/v1/templates: an empty database for the client to fill; 423 when the hash is known. */
  async initialize(hash: string): Promise<DatabaseAnswer> {
    this.available();
    for (;;) {
      const known = this.templates.get(hash);
      if (!known) break;
      // A first initialise still creating its database: wait for it, then answer as IntegreSQL does.
      const failed = await known.created.then(() => false, () => true);
      if (!failed || this.templates.get(hash) === known) throw new HttpError(423, 'template is already initialized');
    }
    const name = templateDatabaseName(hash);
    const created = deferred();
    created.promise.catch(() => {});
    const template = this.track(hash, name, 'initializing', created.promise);
    try {
      template.oid = await this.connections.use(async (admin) => {
        await admin.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0`);
        const [, oid] = (await admin.query(
          `${markSql(name, { kind: 'serve-template', hash, state: 'initializing', createdAt: new Date().toISOString() })};
           SELECT oid FROM pg_database WHERE datname = ${quoteLiteral(name)}`,
        )) as unknown as [pg.QueryResult, pg.QueryResult<{ oid: number }>];
        return Number(oid.rows[0]!.oid);
      });
      created.resolve();
    } catch (error) {
      created.reject(error);
      template.finalized.reject(new HttpError(404, 'template not found'));
      // Discarded meanwhile, perhaps initialised again: that one is not this call's to remove.
      if (this.templates.get(hash) === template) {
        this.templates.delete(hash);
        await this.connections.use((admin) => dropDatabase(admin, name)).catch(() => {});
      }
      throw error;
    }
    return this.answer(hash, name);
  }

  /**
   * PUT /api/v1/templates/:hash: the template is complete. Sessions still connected to it are
   * ended and new ones refused, since a template with sessions cannot be copied.
   */
  async finalize(hash: string): Promise<void> {
    const template = this.find(hash);
    await template.created;
    if (template.state === 'ready') return;
    await this.connections.use((admin) =>
      admin.query(
        `ALTER DATABASE ${ident(template.name)} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${quoteLiteral(template.name)};
         ${markSql(template.name, { kind: 'serve-template', hash, state: 'ready', createdAt: new Date().toISOString() })}`,
      ),
    );
    if (template.discarded) throw new HttpError(404, 'template not found');
    template.state = 'ready';
    template.finalized.resolve();
    this.pump(template);
  }

  /** DELETE /api/v1/templates/:hash: drops the template and its copies; requests waiting for it get 410. */
  async discard(hash: string): Promise<void> {
    const template = this.find(hash);
    this.templates.delete(hash);
    this.discarding(template);
    await this.drop(template);
  }

  /** DELETE /api/v1/admin/templates: drops every template and copy this server manages. */
  async discardAll(): Promise<void> {
    this.available();
    const templates = [...this.templates.values()];
    this.templates.clear();
    // All of them first, so that none makes copies or keeps requests waiting while another is dropped.
    for (const template of templates) this.discarding(template);
    const results = await Promise.allSettled(templates.map((template) => this.drop(template)));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** GET /api/v1/templates/:hash/tests: an exclusive copy, once the template is finalised. */
  async getTestDatabase(hash: string, signal: AbortSignal): Promise<DatabaseAnswer & { id: number }> {
    const template = this.find(hash);
    if (template.state !== 'ready') {
      await within(template.finalized.promise, this.settings.finalizeTimeoutMs, signal, () => {
        return new HttpError(503, `template ${hash} was not finalized within ${this.settings.finalizeTimeoutMs} ms`);
      });
    }
    if (template.discarded) throw new HttpError(410, 'template was just discarded');
    const test = await this.take(template, signal);
    return { id: test.id, ...this.answer(hash, test.name) };
  }

  /** POST .../tests/:id/unlock (and the deprecated DELETE .../tests/:id): the copy goes back to the pool as it is. */
  async unlock(hash: string, id: number): Promise<void> {
    const template = this.find(hash);
    const test = this.testOf(template, id);
    if (test.state !== 'dirty') return;
    if (await this.connected(test.name)) throw inUse();
    // Asked meanwhile by another request.
    if ((test.state as TestDatabase['state']) !== 'dirty') return;
    test.state = 'busy';
    const fresh = { ...test, id: ++template.lastId };
    try {
      await this.mark(template, fresh, 'ready');
    } catch (error) {
      test.state = 'dirty';
      throw error;
    }
    this.renumber(template, test, fresh.id);
    this.offer(template, test);
  }

  /** POST .../tests/:id/recreate: the copy is replaced by a fresh one, in the background. */
  async recreate(hash: string, id: number): Promise<void> {
    const template = this.find(hash);
    const test = this.testOf(template, id);
    if (test.state === 'busy') return;
    if (await this.connected(test.name)) throw inUse();
    // Asked meanwhile by another request.
    if ((test.state as TestDatabase['state']) === 'busy') return;
    this.startCopy(template, test);
  }

  /** Stops making copies and waits for those being made; waiting requests get 503. */
  async close(): Promise<void> {
    this.closing = true;
    for (const template of this.templates.values()) {
      clearTimeout(template.retryTimer);
      this.failWaiters(template, shuttingDown());
    }
    await Promise.allSettled([...this.templates.values()].flatMap((template) => [...template.work]));
    await this.connections.close();
    await this.lock.end().catch(() => {});
  }

  /** Throws the 503 every request gets once the server stops or lost its lock. */
  private available(): void {
    if (this.lockLost) throw this.lockLost;
    if (this.closing) throw shuttingDown();
  }

  private track(hash: string, name: string, state: Template['state'], created: Promise<void>): Template {
    const template: Template = {
      hash,
      name,
      state,
      oid: 0,
      created,
      finalized: deferred(),
      tests: new Map(),
      lastId: -1,
      waiters: [],
      work: new Set(),
      discarded: false,
      failures: 0,
    };
    template.finalized.promise.catch(() => {});
    this.templates.set(hash, template);
    return template;
  }

  private find(hash: string): Template {
    this.available();
    const template = this.templates.get(hash);
    if (!template) throw new HttpError(404, 'template not found');
    return template;
  }

  private testOf(template: Template, id: number): TestDatabase {
    const test = template.tests.get(id);
    if (!test) throw new HttpError(404, 'test database not found');
    return test;
  }

  private renumber(template: Template, test: TestDatabase, id: number): void {
    template.tests.delete(test.id);
    test.id = id;
    template.tests.set(id, test);
  }

  private answer(hash: string, database: string): DatabaseAnswer {
    return { templateHash: hash, config: { ...this.login, database } };
  }

  /** Marks the template discarded: no more copies, and whoever waits for it gets 410. */
  private discarding(template: Template): void {
    template.discarded = true;
    clearTimeout(template.retryTimer);
    const gone = new HttpError(410, 'template was just discarded');
    template.finalized.reject(gone);
    this.failWaiters(template, gone);
  }

  /** Drops a discarded template's databases, once the copies being made for it are done. */
  private async drop(template: Template): Promise<void> {
    await template.created.catch(() => {});
    await Promise.allSettled([...template.work]);
    await this.connections.use(async (admin) => {
      for (const test of template.tests.values()) await dropDatabase(admin, test.name);
      await dropDatabase(admin, template.name);
    });
  }

  private failWaiters(template: Template, error: HttpError): void {
    for (const waiter of template.waiters.splice(0)) waiter.reject(error);
  }

  /** A ready copy, now marked handed out; waits (up to getTimeoutMs) while none is. */
  private async take(template: Template, signal: AbortSignal): Promise<TestDatabase> {
    const ready = [...template.tests.values()].find((test) => test.state === 'ready');
    let test: TestDatabase;
    if (ready) {
      ready.state = 'busy';
      test = ready;
    } else {
      const waiter = deferred<TestDatabase>();
      template.waiters.push(waiter);
      this.pump(template);
      try {
        test = await within(waiter.promise, this.settings.getTimeoutMs, signal, () => new HttpError(503, 'timeout when waiting for ready db'));
      } catch (error) {
        const index = template.waiters.indexOf(waiter);
        if (index >= 0) template.waiters.splice(index, 1);
        // Given to this request as it gave up: back to the pool.
        else waiter.promise.then((late) => this.offer(template, late), () => {});
        throw error;
      }
    }
    try {
      await this.mark(template, test, 'dirty');
    } catch (error) {
      this.offer(template, test);
      throw error;
    }
    test.state = 'dirty';
    test.handedOutAt = Date.now();
    this.pump(template);
    return test;
  }

  /** A copy that became ready: to the first waiter (still busy, theirs to mark), else to the pool. */
  private offer(template: Template, test: TestDatabase): void {
    const waiter = template.waiters.shift();
    if (waiter) {
      test.state = 'busy';
      waiter.resolve(test);
    } else {
      test.state = 'ready';
    }
  }

  /**
   * Makes copies until the ready ones (and those being made) cover the waiting requests plus
   * initialPoolSize: new ones while the pool is below maxPoolSize, then the oldest handed-out
   * ones nobody is connected to. After failures, waits before trying again.
   */
  private pump(template: Template): void {
    if (this.closing || this.lockLost || template.discarded || template.state !== 'ready' || template.retryTimer) return;
    const tests = [...template.tests.values()];
    let busy = tests.filter((test) => test.state === 'busy').length;
    const ready = tests.filter((test) => test.state === 'ready').length;
    const wanted = template.waiters.length + this.settings.initialPoolSize;
    const recyclable = tests
      .filter((test) => test.state === 'dirty' && Date.now() - test.handedOutAt >= this.settings.minimalLifetimeMs)
      .sort((a, b) => a.handedOutAt - b.handedOutAt);
    while (busy < this.settings.maxParallel && ready + busy < wanted) {
      if (template.tests.size < this.settings.maxPoolSize) {
        const id = ++template.lastId;
        const test: TestDatabase = { id, name: testDatabaseName(template.name, id), state: 'busy', handedOutAt: 0 };
        template.tests.set(id, test);
        this.startCopy(template, test);
      } else {
        // As IntegreSQL does: clients that never return copies (the npm client) still find one ready.
        const oldest = recyclable.shift();
        if (!oldest) break;
        this.startCopy(template, oldest, { onlyIfUnused: true });
      }
      busy++;
    }
    // Copies handed out too recently to recycle while requests wait: look again once they are old enough.
    if (template.waiters.length > 0 && busy === 0 && tests.some((test) => test.state === 'dirty')) {
      this.pumpLater(template, this.settings.minimalLifetimeMs);
    }
  }

  private pumpLater(template: Template, ms: number): void {
    if (template.retryTimer) return;
    template.retryTimer = setTimeout(() => {
      template.retryTimer = undefined;
      this.pump(template);
    }, ms);
  }

  /**
   * (Re)creates a copy in the background, under a new id; a copy someone is connected to is left
   * dirty, and tried again later. Failures are reported and retried with a growing pause.
   */
  private startCopy(template: Template, test: TestDatabase, options: { onlyIfUnused?: boolean } = {}): void {
    const previous = test.state;
    test.state = 'busy';
    // A new copy (busy since pump made it) keeps the id its name was made from.
    const id = previous === 'busy' ? test.id : ++template.lastId;
    const work = this.copySlots.run(() => this.copy(template, { ...test, id }, options.onlyIfUnused ?? false)).then(
      (copied) => {
        template.failures = 0;
        if (!copied) {
          test.state = previous;
          test.handedOutAt = Date.now();
          return;
        }
        this.renumber(template, test, id);
        this.offer(template, test);
      },
      async (error) => {
        template.tests.delete(test.id);
        await this.connections.use((admin) => dropDatabase(admin, test.name)).catch(() => {});
        if (template.discarded || this.closing) return;
        this.onError(error);
        template.failures++;
        if (template.failures >= FAILURES_REPORTED) {
          this.failWaiters(template, new HttpError(500, `copying template ${template.hash} failed: ${(error as Error).message}`));
        }
        this.pumpLater(template, Math.min(100 * 2 ** template.failures, 30_000));
      },
    );
    template.work.add(work);
    work.finally(() => {
      template.work.delete(work);
      this.pump(template);
    });
  }

  /** Drops and copies again; false when someone is connected to it (onlyIfUnused) and nothing changed. */
  private async copy(template: Template, test: TestDatabase, onlyIfUnused: boolean): Promise<boolean> {
    return this.connections.use(async (admin) => {
      try {
        // Without FORCE: a copy someone is still connected to fails with "being accessed", and stays.
        await admin.query(`DROP DATABASE IF EXISTS ${ident(test.name)}${onlyIfUnused ? '' : ' WITH (FORCE)'}`);
      } catch (error) {
        if ((error as { code?: string }).code === OBJECT_IN_USE) return false;
        throw error;
      }
      if (template.discarded || this.closing) return true;
      await createDatabase(admin, test.name, { template: template.name, strategy: this.strategy });
      await retryWhileBusy(() => admin.query(markSql(test.name, this.testMetadata(template, test, 'ready'))));
      if (template.discarded) await dropDatabase(admin, test.name);
      return true;
    });
  }

  private async mark(template: Template, test: TestDatabase, state: ServeTestMetadata['state']): Promise<void> {
    await this.connections.use((admin) => admin.query(markSql(test.name, this.testMetadata(template, test, state))));
  }

  private testMetadata(template: Template, test: TestDatabase, state: ServeTestMetadata['state']): ServeTestMetadata {
    return { kind: 'serve-test', hash: template.hash, id: test.id, templateOid: template.oid, state, createdAt: new Date().toISOString() };
  }

  private connected(database: string): Promise<boolean> {
    return this.connections.use(async (admin) => {
      const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [database]);
      return rows[0]!.n > 0;
    });
  }
}

/** At most `size` tasks at once, the others queued in order. */
class Semaphore {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}

function shuttingDown(): HttpError {
  return new HttpError(503, 'the server is shutting down');
}

function inUse(): HttpError {
  return new HttpError(423, 'test database is in use, close the connection before dropping');
}

function deferred<T = void>(): Deferred<T> {
  let settle!: Omit<Deferred<T>, 'promise'>;
  const promise = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  return { promise, ...settle };
}

/** `promise`, or the error of `timedOut()` after `ms`, or a 503 once `signal` aborts (the client left or the server stops). */
async function within<T>(promise: Promise<T>, ms: number, signal: AbortSignal, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut()), ms);
        onAbort = () => reject(new HttpError(503, 'the request was cancelled'));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
