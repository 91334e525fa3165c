// Creates drivers from plain targets, in whichever thread needs one; one driver per target, cached.
import type { StorageDriver, StorageTarget } from './driver.ts';
import { S3Storage } from './s3.ts';
import { LocalStorage } from './local.ts';

const cache = new Map<string, StorageDriver>();

function cacheKey(target: StorageTarget): string {
  return target.kind === 's3'
    ? `s3\0${target.endpoint ?? ''}\0${target.accessKeyId}\0${target.secretAccessKey}`
    : `local\0${target.dataDir}`;
}

export function driverFor(target: StorageTarget): StorageDriver {
  const key = cacheKey(target);
  let driver = cache.get(key);
  if (!driver) {
    driver = target.kind === 's3' ? new S3Storage(target) : new LocalStorage(target.dataDir);
    cache.set(key, driver);
  }
  return driver;
}

export function closeAllDrivers(): void {
  for (const driver of cache.values()) driver.close();
  cache.clear();
}
