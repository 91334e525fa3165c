// Creates drivers from plain targets, in whichever thread needs one; one driver per target, cached.
//
// The cache is bounded: a gateway that serves many keys over weeks would otherwise keep an S3
// client (and its pooled sockets) for every key it ever saw. It keeps the most recently used
// drivers and forgets those idle for longer than DRIVER_IDLE_MS. A forgotten driver is not closed:
// a transfer that started with it may still be running (uploads last hours). It goes away once
// nothing uses it and S3 has closed its idle keep-alive sockets.
import type { StorageCallObserver, StorageDriver, StorageTarget } from './driver.ts';
import { LazyS3Storage } from './s3-lazy.ts';
import { LocalStorage } from './local.ts';
import { memoryStore } from './memory.ts';

export const MAX_CACHED_DRIVERS = 256;
export const DRIVER_IDLE_MS = 10 * 60_000;

interface CachedDriver {
  readonly driver: StorageDriver;
  lastUsed: number;
}

/** In least-recently-used order: a Map iterates in insertion order and every use re-inserts. */
const cache = new Map<string, CachedDriver>();

let callObserver: StorageCallObserver = () => undefined;

/** Where this thread's drivers report their backend calls (metrics); set once at thread start. */
export function observeStorageCalls(observer: StorageCallObserver): void {
  callObserver = observer;
}

export function storageCallObserver(): StorageCallObserver {
  return callObserver;
}

function cacheKey(target: StorageTarget): string {
  switch (target.kind) {
    case 's3':
      return `s3\0${target.endpoint ?? ''}\0${target.accessKeyId}\0${target.secretAccessKey}`;
    case 'local':
      return `local\0${target.dataDir}`;
    case 'memory':
      return `memory\0${target.name}`;
  }
}

function s3Driver(target: Extract<StorageTarget, { kind: 's3' }>): LazyS3Storage {
  return new LazyS3Storage(target, (call) => callObserver(call));
}

function createDriver(target: StorageTarget): StorageDriver {
  switch (target.kind) {
    case 's3':
      return s3Driver(target);
    case 'local':
      return new LocalStorage(target.dataDir, target.resumeWindowMs);
    case 'memory':
      return memoryStore(target.name);
  }
}

function forgetStale(now: number): void {
  for (const [key, entry] of cache) {
    if (cache.size <= MAX_CACHED_DRIVERS && now - entry.lastUsed <= DRIVER_IDLE_MS) break;
    cache.delete(key);
  }
}

/**
 * A login's check of an S3 key pair, made by the driver that will then serve it: one S3 client per
 * key pair instead of a throw-away one per login (each costs about as much as the check itself).
 * A refused pair leaves no driver behind.
 */
export async function verifyS3Login(target: Extract<StorageTarget, { kind: 's3' }>, now = Date.now()): Promise<boolean> {
  const key = cacheKey(target);
  const known = cache.get(key)?.driver;
  const driver = known instanceof LazyS3Storage ? known : s3Driver(target);
  if (!(await driver.verifyCredentials())) return false;
  if (!known) remember(key, driver, now);
  return true;
}

/** Keeps `driver` as the most recently used one for `key`. */
function remember(key: string, driver: StorageDriver, now: number): void {
  cache.delete(key);
  cache.set(key, { driver, lastUsed: now });
  forgetStale(now);
}

export function driverFor(target: StorageTarget, now = Date.now()): StorageDriver {
  const key = cacheKey(target);
  const driver = cache.get(key)?.driver ?? createDriver(target);
  remember(key, driver, now);
  return driver;
}

export function cachedDriverCount(): number {
  return cache.size;
}

export function closeAllDrivers(): void {
  for (const { driver } of cache.values()) driver.close();
  cache.clear();
}
