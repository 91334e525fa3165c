// Listing formats: LIST (`ls -l`), MLSD/MLST facts (RFC 3659) and NLST. Pure; the clock is passed in.

export interface Entry {
  readonly name: string;
  readonly type: 'file' | 'dir';
  readonly size: number;
  /** Undefined for S3 prefixes, which have no time of their own. */
  readonly modified?: Date | undefined;
  /** A resumable upload (SPEC §7): `size` is its offset. */
  readonly resumable?: boolean;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;
const FILE_PERMS = 'adfrw';
const DIR_PERMS = 'flcdmpe';
/** A resumable upload can be continued (a: APPE, w: STOR) and deleted, not read or renamed. */
const RESUMABLE_PERMS = 'adw';

/** A name that would break the line-oriented formats; such entries are left out of listings. */
export function isListableName(name: string): boolean {
  return name !== '' && !/[\r\n]/.test(name);
}

const two = (n: number): string => String(n).padStart(2, '0');

/** YYYYMMDDHHMMSS in UTC, as MDTM and the MLSD `modify` fact want it. */
export function formatTimeval(date: Date): string {
  return (
    `${date.getUTCFullYear()}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}` +
    `${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}`
  );
}

export function formatListLine(entry: Entry, now: Date): string {
  const mode = entry.type === 'dir' ? 'drwxr-xr-x' : '-rw-r--r--';
  const when = entry.modified ?? now;
  const recent = Math.abs(now.getTime() - when.getTime()) < SIX_MONTHS_MS;
  const month = MONTHS[when.getUTCMonth()] ?? 'Jan';
  const day = String(when.getUTCDate()).padStart(2, ' ');
  const timeOrYear = recent
    ? `${two(when.getUTCHours())}:${two(when.getUTCMinutes())}`
    : String(when.getUTCFullYear()).padStart(5, ' ');
  const size = entry.type === 'dir' ? 0 : entry.size;
  return `${mode} 1 ftp ftp ${String(size).padStart(12, ' ')} ${month} ${day} ${timeOrYear} ${entry.name}`;
}

export function formatFacts(entry: Entry): string {
  const facts = [`type=${entry.type}`];
  if (entry.type === 'file') facts.push(`size=${entry.size}`);
  if (entry.modified) facts.push(`modify=${formatTimeval(entry.modified)}`);
  facts.push(`perm=${entry.type === 'dir' ? DIR_PERMS : entry.resumable ? RESUMABLE_PERMS : FILE_PERMS}`);
  if (entry.resumable) facts.push('x.resumable=1');
  return `${facts.join(';')};`;
}

export function formatMlsdLine(entry: Entry): string {
  return `${formatFacts(entry)} ${entry.name}`;
}

export type ListingFormat = 'list' | 'mlsd' | 'nlst';

export function formatEntry(format: ListingFormat, entry: Entry, now: Date): string {
  switch (format) {
    case 'list':
      return formatListLine(entry, now);
    case 'mlsd':
      return formatMlsdLine(entry);
    case 'nlst':
      return entry.name;
  }
}

/** Formats one page of entries as CRLF-terminated lines, leaving out unlistable names. */
export function formatPage(format: ListingFormat, entries: readonly Entry[], now: Date): string {
  let out = '';
  for (const entry of entries) {
    if (isListableName(entry.name)) out += `${formatEntry(format, entry, now)}\r\n`;
  }
  return out;
}

/** Splits LIST/NLST arguments into `ls`-style options (ignored) and the path, if any. */
export function splitListArgument(arg: string): { options: string; path: string } {
  // Only whole clusters of ls flags followed by a space or the end count as options, so names
  // such as `-foo.txt` or `-la.txt` stay paths.
  const match = /^((?:-[alRrtdhFA1]+(?:\s+|$))+)(.*)$/.exec(arg);
  if (match) return { options: (match[1] ?? '').trim(), path: match[2] ?? '' };
  return { options: '', path: arg };
}
