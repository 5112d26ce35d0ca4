export interface BundleJob {
  /** the project root (its node_modules resolve the external packages) */
  root: string;
  /** under `<root>/.cache/` */
  dir: string;
  /** file name stem; the bundle is `<name>.<hash>.mjs` */
  name: string;
  /** absolute path of the entry, or… */
  entry?: string;
  /** …generated TypeScript source resolved from `resolveDir` */
  stdin?: { contents: string; resolveDir: string };
}
export function bundleToCache(job: BundleJob): URL;
/** A bundle unused this long is deleted by the next bundleToCache of the same name in its directory. */
export const STALE_BUNDLE_MS: number;
