/**
 * The few routes `dbfast serve` answers need no framework: node:http, a table of routes, one
 * sendJson. Every answer but a 204 is a JSON body, errors `{"message": "..."}` as IntegreSQL's
 * (echo's) are: its Go client decodes any non-204 body as JSON.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** An answer other than 2xx: its status and the message of its JSON body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Reply {
  status: number;
  body?: unknown;
}

export interface RouteRequest {
  /** The path's `:name` segments, URL-decoded, in order. */
  params: string[];
  /** The JSON body (an empty body is undefined); a 400 when it is not JSON. */
  json(): Promise<unknown>;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/api/v1/templates/:hash/tests`: `:name` matches one path segment. */
  path: string;
  handle(request: RouteRequest): Promise<Reply>;
}

export interface ApiOptions {
  routes: Route[];
  /** When set, every route but /healthz needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Called for an answer of 500: the error behind it (the client sees only its message). */
  onError?: (error: unknown) => void;
}

export interface Api {
  server: Server;
  /** Stops accepting, aborts waiting requests, lets running ones finish for up to `graceMs`, then closes every connection. */
  shutdown(graceMs: number): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export function createApi(options: ApiOptions): Api {
  const routes = options.routes.map((route) => ({ ...route, pattern: pathPattern(route.path) }));
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  const token = options.token === undefined ? undefined : digest(options.token);

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let path: string;
    try {
      const { pathname } = new URL(request.url ?? '/', 'http://dbfast');
      path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
    } catch {
      return sendJson(response, 400, { message: 'the request path is not a valid URL path' });
    }
    if (path === '/healthz' && (request.method === 'GET' || request.method === 'HEAD')) {
      return sendJson(response, stopping.signal.aborted ? 503 : 200, { status: stopping.signal.aborted ? 'stopping' : 'ok' });
    }
    if (token && !authorized(request.headers.authorization, token)) {
      response.setHeader('WWW-Authenticate', 'Bearer');
      return sendJson(response, 401, { message: 'a bearer token is required (DBFAST_SERVE_TOKEN)' });
    }
    const matching = routes.flatMap((route) => {
      const match = route.pattern.exec(path);
      return match ? [{ route, params: match.slice(1) }] : [];
    });
    const found = matching.find((candidate) => candidate.route.method === request.method);
    if (!found) return sendJson(response, matching.length > 0 ? 405 : 404, { message: matching.length > 0 ? 'Method Not Allowed' : 'Not Found' });
    const signal = AbortSignal.any([stopping.signal, closedSignal(request, response)]);
    let params: string[];
    try {
      params = found.params.map((param) => decodeURIComponent(param));
    } catch {
      return sendJson(response, 400, { message: 'the path is not valid URL encoding' });
    }
    try {
      const reply = await found.route.handle({ params, json: () => readJson(request), signal });
      sendJson(response, reply.status, reply.body);
    } catch (error) {
      if (error instanceof HttpError) return sendJson(response, error.status, { message: error.message });
      options.onError?.(error);
      sendJson(response, 500, { message: error instanceof Error ? error.message : String(error) });
    }
  }

  const server = createServer((request, response) => {
    const done = answer(request, response).catch((error) => options.onError?.(error));
    running.add(done);
    done.finally(() => running.delete(done));
  });

  return {
    server,
    async shutdown(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      stopping.abort();
      server.closeIdleConnections();
      // Requests still running after the grace period lose their connection; their work is not awaited.
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.all([...running]), graceOver]);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    },
  };
}

export function sendJson(response: ServerResponse, status: number, body?: unknown): void {
  if (response.headersSent || response.destroyed) return;
  if (status === 204 || body === undefined) {
    response.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

function pathPattern(path: string): RegExp {
  const source = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[a-z]+/gi, '([^/]+)');
  return new RegExp(`^${source}$`);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Aborted when the client closes the connection before its answer was sent. */
function closedSignal(request: IncomingMessage, response: ServerResponse): AbortSignal {
  const controller = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  request.once('error', () => controller.abort());
  return controller.signal;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Digests first: timingSafeEqual needs equal lengths, and comparing digests hides the token's length too. */
function authorized(header: string | undefined, token: Buffer): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match !== null && timingSafeEqual(digest(match[1]!.trim()), token);
}
