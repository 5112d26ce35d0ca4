/**
 * A small parser of the Prometheus text exposition format (0.0.4): HELP/TYPE lines and samples
 * `name{label="value",…} number`, with the format's escapes (\\, \", \n) in label values.
 * Throws on a line it cannot read, so a malformed exposition fails the test that reads it.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseLabels(text: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // after '{'
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!name || text[i + name[0].length] !== '=' || text[i + name[0].length + 1] !== '"') throw new Error(`bad label in: ${line}`);
    i += name[0].length + 2;
    let value = '';
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] === '\\') {
        const next = text[++i];
        value += next === 'n' ? '\n' : next;
      } else value += text[i];
    }
    if (text[i] !== '"') throw new Error(`unterminated label value in: ${line}`);
    labels[name[0]] = value;
    i++;
  }
}

/** A float as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`). */
function parseValue(text: string | undefined): number | null {
  if (text === undefined) return null;
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  const n = Number(text);
  return text.trim() === '' || Number.isNaN(n) ? null : n;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { types: new Map(), help: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) continue; // a plain comment
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`bad TYPE: ${line}`);
        if (out.types.has(m[2]!)) throw new Error(`second TYPE for ${m[2]}`);
        out.types.set(m[2]!, m[3]!);
      } else out.help.set(m[2]!, m[3]!);
      continue;
    }
    const name = NAME.exec(line);
    if (!name) throw new Error(`bad sample line: ${line}`);
    let rest = line.slice(name[0].length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const parts = rest.trim().split(/\s+/);
    const value = parseValue(parts[0]);
    if (value === null) throw new Error(`bad sample value: ${line}`);
    out.samples.push({ name: name[0], labels, value });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sumOf(e: Exposition, name: string, match: Record<string, string> = {}): number {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

/** The metric family a sample belongs to (`x_bucket` → `x` for histograms). */
export function familyOf(e: Exposition, sample: string): string | undefined {
  if (e.types.has(sample)) return sample;
  const base = sample.replace(/_(bucket|sum|count|total|created)$/, '');
  return e.types.has(base) ? base : undefined;
}
