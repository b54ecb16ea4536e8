/** What the native kernel tests share: the seeded generator and the addon (or why it is missing). */
import { loadNativeAddon, type NativeAddon } from '../../src/model/kernels-native.js';

export { mulberry32 as rng } from '../../src/rng.js';

/** The native addon, or null and the loader's one-line reason (tests skip with it). */
export function tryLoadNativeAddon(): { addon: NativeAddon | null; addonError: string } {
  try {
    return { addon: loadNativeAddon(), addonError: '' };
  } catch (e) {
    return { addon: null, addonError: e instanceof Error ? e.message : String(e) };
  }
}
