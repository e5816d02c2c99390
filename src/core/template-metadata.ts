/** What dbfast records on a template it built (template.ts), and keeps on a kept one (kept.ts). */
import type { IncludedFile } from './freshness.js';

export interface TemplateMetadata {
  kind: 'template';
  fingerprint: string;
  builtAt: string;
  durationMs: number;
  files: number;
  statements: number;
  rowsCopied: number;
  /** Roles this template's builds created (roles.ts); absent in templates of format 1. */
  roles?: string[];
  /** Files the build read besides the selected ones (\i, \copy), with the hash of the bytes it read: part of freshness (recordedIncludes); absent in format 1. */
  includes?: IncludedFile[];
  /** `host:/path/to/project` of the checkout that built it, so another checkout can tell why it differs; absent before format 3. */
  builtBy?: string;
}

export interface TemplateInfo extends TemplateMetadata {
  name: string;
  /** Only when asked for: pg_database_size stats every file of the database. */
  sizeBytes?: number;
}
