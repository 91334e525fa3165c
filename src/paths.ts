// Path normalisation and the mapping between FTP paths and S3 locations. Pure.

export const MAX_KEY_BYTES = 1024;

/** Joins `arg` to `cwd` and resolves `.`, `..` and repeated slashes; nothing climbs above `/`. */
export function resolvePath(cwd: string, arg: string): string {
  const joined = arg.startsWith('/') ? arg : `${cwd}/${arg}`;
  const parts: string[] = [];
  for (const segment of joined.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') parts.pop();
    else parts.push(segment);
  }
  return `/${parts.join('/')}`;
}

export type Location =
  | { readonly kind: 'root' }
  | { readonly kind: 'bucket'; readonly bucket: string }
  | { readonly kind: 'object'; readonly bucket: string; readonly key: string };

/** Maps a normalised absolute path to the root, a bucket, or a key inside a bucket. */
export function locate(path: string): Location {
  const trimmed = path.replace(/^\/+/, '');
  if (trimmed === '') return { kind: 'root' };
  const slash = trimmed.indexOf('/');
  if (slash < 0) return { kind: 'bucket', bucket: trimmed };
  return { kind: 'object', bucket: trimmed.slice(0, slash), key: trimmed.slice(slash + 1) };
}

/** The key prefix that lists the children of a directory location ('' for a bucket). */
export function directoryPrefix(location: Location): string {
  return location.kind === 'object' ? `${location.key}/` : '';
}

/** True when the key fits S3's limit of 1024 bytes of UTF-8. */
export function keyFits(key: string): boolean {
  return Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES;
}

/** True when the directory marker for `key` (the key and a trailing slash) fits S3's limit. */
export function markerFits(key: string): boolean {
  return keyFits(`${key}/`);
}

export function baseName(path: string): string {
  const index = path.lastIndexOf('/');
  return path.slice(index + 1);
}

/** S3's rules for bucket names (the subset every implementation accepts). */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name)
  );
}
