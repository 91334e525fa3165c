// The addon in native/ (built by scripts/build-native.sh), loaded once per thread when it is there:
// the data connections' TLS engine (tls/native-engine.ts) and huge-page part buffers
// (storage/part-buffers.ts). Everything that uses it has a pure-JS path for when it is not built.
import { createRequire } from 'node:module';

/** What native/src/tls_engine.cc exports; the TLS parts are typed in tls/native-engine.ts. */
export interface NativeAddon {
  readonly openssl: string;
  readonly createContext: unknown;
  readonly Engine: unknown;
  allocateHugeBuffer(size: number): Buffer | null;
}

function load(): { addon: NativeAddon | undefined; problem: string | undefined } {
  try {
    const require = createRequire(import.meta.url);
    // src/ and dist/ are both one level below the project root. S3FTPD_NATIVE_ADDON names another
    // file (tests of the fallback point it nowhere).
    const file = process.env.S3FTPD_NATIVE_ADDON ?? '../native/build/Release/s3ftpd_tls.node';
    return { addon: require(file) as NativeAddon, problem: undefined };
  } catch (error) {
    return { addon: undefined, problem: error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error) };
  }
}

const loaded = load();

/** The addon, or undefined when it is not built or failed to load. */
export const nativeAddon: NativeAddon | undefined = loaded.addon;

/** Why the addon is not there; undefined when it is. */
export const nativeAddonProblem: string | undefined = loaded.problem;
