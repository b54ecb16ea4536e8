/** Renders docs/errors.md from the catalogue; test/errors.test.ts fails when the file is stale. */
export function renderErrorsDoc(codes: Readonly<Record<string, string>>): string {
  const rows = Object.entries(codes).map(([code, what]) => `| \`${code}\` | ${what} |`);
  return [
    '<!-- Generated from src/errors.ts by `node --import tsx tools/gen-errors-doc.ts`; do not edit. -->',
    '# Error codes',
    '',
    'Every error the node raises carries one of these stable codes (`err.code`), and its message says',
    'what was wrong and what to do. Bad inputs (frames, payloads, prompts) are not errors that stop the',
    'node: they are counted in `bitmar_inputs_dropped_total{stage,reason}` and logged once per interval.',
    '',
    '| code | meaning and fix |',
    '|---|---|',
    ...rows,
    '',
  ].join('\n');
}
