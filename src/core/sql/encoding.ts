/**
 * Client encodings for SQL files. psql sends a file's bytes as they are and the server reads them
 * in the session's client_encoding; dbfast decodes each file to text itself and always talks UTF-8
 * to the server, so a file's `SET client_encoding` (or `\encoding`) chooses the decoder instead.
 */

/** PostgreSQL's encoding names (and the aliases it accepts), normalised, to WHATWG decoder labels. */
const DECODER_LABELS: Record<string, string> = {
  UTF8: 'utf-8',
  // The server verifies SQL_ASCII input as its own encoding: UTF-8 for dbfast's databases.
  SQLASCII: 'utf-8',
  LATIN1: 'latin1',
  LATIN2: 'iso-8859-2',
  LATIN3: 'iso-8859-3',
  LATIN4: 'iso-8859-4',
  LATIN6: 'iso-8859-10',
  LATIN7: 'iso-8859-13',
  LATIN8: 'iso-8859-14',
  LATIN9: 'iso-8859-15',
  ISO88595: 'iso-8859-5',
  ISO88596: 'iso-8859-6',
  ISO88597: 'iso-8859-7',
  ISO88598: 'iso-8859-8',
  WIN866: 'ibm866',
  WIN874: 'windows-874',
  WIN1250: 'windows-1250',
  WIN1251: 'windows-1251',
  WIN1252: 'windows-1252',
  WIN1253: 'windows-1253',
  WIN1254: 'windows-1254',
  WIN1255: 'windows-1255',
  WIN1256: 'windows-1256',
  WIN1257: 'windows-1257',
  WIN1258: 'windows-1258',
  KOI8R: 'koi8-r',
  KOI8U: 'koi8-u',
  EUCJP: 'euc-jp',
  // WHATWG's euc-kr is Windows-949, a superset of EUC-KR and UHC; gbk likewise covers EUC-CN.
  EUCKR: 'euc-kr',
  UHC: 'euc-kr',
  EUCCN: 'gbk',
  GBK: 'gbk',
  GB18030: 'gb18030',
  SJIS: 'shift_jis',
  BIG5: 'big5',
};

/** PostgreSQL's other names for these encodings (src/common/encnames.c), normalised. */
const ALIASES: Record<string, string> = {
  UNICODE: 'UTF8',
  ISO88591: 'LATIN1',
  ISO88592: 'LATIN2',
  ISO88593: 'LATIN3',
  ISO88594: 'LATIN4',
  ISO885910: 'LATIN6',
  ISO885913: 'LATIN7',
  ISO885914: 'LATIN8',
  ISO885915: 'LATIN9',
  WINDOWS1250: 'WIN1250',
  WINDOWS1251: 'WIN1251',
  WINDOWS1252: 'WIN1252',
  WINDOWS1253: 'WIN1253',
  WINDOWS1254: 'WIN1254',
  WINDOWS1255: 'WIN1255',
  WINDOWS1256: 'WIN1256',
  WINDOWS1257: 'WIN1257',
  WINDOWS1258: 'WIN1258',
  WINDOWS866: 'WIN866',
  WINDOWS874: 'WIN874',
  WIN: 'WIN1251',
  ALT: 'WIN866',
  KOI8: 'KOI8R',
  SHIFTJIS: 'SJIS',
  MSKANJI: 'SJIS',
  WIN932: 'SJIS',
  WINDOWS932: 'SJIS',
  WIN936: 'GBK',
  WINDOWS936: 'GBK',
  WIN949: 'UHC',
  WINDOWS949: 'UHC',
  WIN950: 'BIG5',
  WINDOWS950: 'BIG5',
  ABC: 'WIN1258',
  TCVN: 'WIN1258',
  TCVN5712: 'WIN1258',
  VSCII: 'WIN1258',
};

/** The canonical name dbfast knows an encoding by, or null for one it cannot decode. */
export function canonicalEncoding(name: string): string | null {
  const key = name.toUpperCase().replace(/[^A-Z0-9]/g, '');
  const canonical = ALIASES[key] ?? key;
  return canonical in DECODER_LABELS ? canonical : null;
}

export function decoderLabel(canonical: string): string {
  return DECODER_LABELS[canonical]!;
}

export const SUPPORTED_ENCODINGS = 'UTF8, LATIN1-4, LATIN6-9, ISO_8859_5-8, WIN866, WIN874, WIN1250-1258, KOI8R, KOI8U, EUC_JP, EUC_KR, EUC_CN, UHC, GBK, GB18030, SJIS, BIG5';

const SET_ENCODING = /^set\s+(?:session\s+)?(?:client_encoding\s*(?:=|to)|names)\s*(?:'([^']*)'|"([^"]*)"|([A-Za-z0-9_-]+))\s*$/i;

/** The encoding a `SET client_encoding = ...` / `SET NAMES ...` statement names, or undefined for other statements. */
export function encodingSetBy(statementText: string, words: string[]): string | undefined {
  if (words[0] !== 'set') return undefined;
  const match = SET_ENCODING.exec(statementText.trim());
  return match ? (match[1] ?? match[2] ?? match[3]) : undefined;
}
