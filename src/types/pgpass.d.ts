declare module 'pgpass' {
  /** Looks up ~/.pgpass (or PGPASSFILE) for the connection; calls back with undefined when no line matches. */
  export default function pgPass(
    connection: { host?: string; port?: number; user?: string; database?: string },
    callback: (password: string | undefined) => void,
  ): void;
}
