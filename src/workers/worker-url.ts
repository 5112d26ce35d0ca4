/** Where a worker starts: the tsx bootstrap, told which TypeScript entry to import. */
export const WORKER_BOOT_URL = new URL('./boot.mjs', import.meta.url);

export function workerEntry(relativeToThisDir: string): string {
  return new URL(relativeToThisDir, import.meta.url).href;
}
