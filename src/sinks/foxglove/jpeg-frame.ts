/**
 * A frame for the live view: RGB8 downscaled (box filter, integer factor) to at most `maxWidth`
 * pixels wide, then JPEG encoded with jpeg-js. A 1280×720 frame becomes 320×180, about 5–10 ms of
 * encoding on a small board — which is why the sink does it only for a subscribed client and at
 * most a few times per second.
 */
import jpeg from 'jpeg-js';

/** RGB8 (stride width·3) → JPEG bytes. `quality` 1–100 (default 70), `maxWidth` pixels (default 320). */
export function jpegFrame(img: { width: number; height: number; data: Uint8Array }, maxWidth = 320, quality = 70): Uint8Array {
  const factor = Math.max(1, Math.ceil(img.width / maxWidth));
  const w = Math.max(1, Math.floor(img.width / factor));
  const h = Math.max(1, Math.floor(img.height / factor));
  const rgba = Buffer.alloc(w * h * 4);
  const area = factor * factor;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < factor; dy++) {
        let s = ((y * factor + dy) * img.width + x * factor) * 3;
        for (let dx = 0; dx < factor; dx++, s += 3) {
          r += img.data[s]!;
          g += img.data[s + 1]!;
          b += img.data[s + 2]!;
        }
      }
      const d = (y * w + x) * 4;
      rgba[d] = r / area;
      rgba[d + 1] = g / area;
      rgba[d + 2] = b / area;
      rgba[d + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, quality).data);
}
