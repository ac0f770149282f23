// A reader of the Prometheus text exposition format (what GET
// /api/v1/metrics answers), and the arithmetic the metrics view does on
// it: sums over labels, counters turned into rates, and percentiles of
// histograms. The text comes from the server, but it is parsed as
// untrusted: a line that does not parse is skipped and counted, never
// thrown, and nothing is evaluated.

const maxLines = 200000;
const maxLabels = 64;

// parse reads exposition text into {samples: [{name, labels, value}],
// types: Map(family → type), skipped}: every sample line with its labels
// (an object without a prototype, so that a label named __proto__ is
// only a label) and its value as a number (NaN, +Inf and -Inf included).
// Timestamps are ignored: the view samples at known times.
export function parse(text) {
  const samples = [];
  const types = new Map();
  let skipped = 0;
  const lines = String(text).split("\n", maxLines);
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    if (line[0] === "#") {
      const m = /^#\s+TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)\s*$/.exec(line);
      if (m) types.set(m[1], m[2]);
      continue;
    }
    const s = parseSample(line);
    if (s) samples.push(s);
    else skipped++;
  }
  return { samples, types, skipped };
}

// parseSample reads one sample line, or returns null.
function parseSample(line) {
  const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
  if (!m) return null;
  const name = m[1];
  let i = name.length;
  const labels = Object.create(null);
  if (line[i] === "{") {
    i++;
    let n = 0;
    for (;;) {
      while (line[i] === " " || line[i] === "\t") i++;
      if (line[i] === "}") { i++; break; }
      const k = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(i, i + 256));
      if (!k) return null;
      i += k[0].length;
      while (line[i] === " ") i++;
      if (line[i] !== "=") return null;
      i++;
      while (line[i] === " ") i++;
      if (line[i] !== '"') return null;
      i++;
      let v = "";
      for (;;) {
        if (i >= line.length) return null;
        const c = line[i];
        if (c === '"') { i++; break; }
        if (c === "\\") {
          const e = line[i + 1];
          if (e === "n") v += "\n";
          else if (e === "\\" || e === '"') v += e;
          else return null;
          i += 2;
          continue;
        }
        v += c;
        i++;
      }
      if (++n > maxLabels) return null;
      labels[k[0]] = v;
      while (line[i] === " ") i++;
      if (line[i] === ",") { i++; continue; }
      if (line[i] === "}") { i++; break; }
      return null;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === "") return null;
  const value = number(rest[0]);
  if (value === null) return null;
  return { name, labels, value };
}

// number reads a sample value, or returns null.
function number(s) {
  switch (s) {
    case "NaN": return NaN;
    case "+Inf": case "Inf": return Infinity;
    case "-Inf": return -Infinity;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return null;
  return Number(s);
}

// sum adds the values of the samples named name whose labels pass keep.
export function sum(samples, name, keep = () => true) {
  let total = 0;
  for (const s of samples) {
    if (s.name === name && keep(s.labels) && Number.isFinite(s.value)) total += s.value;
  }
  return total;
}

// sumBy adds the values of the samples named name per value of label.
export function sumBy(samples, name, label) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name || !Number.isFinite(s.value)) continue;
    const k = s.labels[label] ?? "";
    out.set(k, (out.get(k) || 0) + s.value);
  }
  return out;
}

// has reports whether any sample is named name.
export function has(samples, name) {
  return samples.some((s) => s.name === name);
}

// rate is a counter's increase per second between two readings, null
// when there is no earlier reading or the counter was reset.
export function rate(before, after, seconds) {
  if (before === undefined || before === null || !(seconds > 0) || after < before) return null;
  return (after - before) / seconds;
}

// buckets sums the cumulative bucket counts of histogram name over its
// other labels: a Map(upper bound → count).
export function buckets(samples, name) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name + "_bucket" || s.labels.le === undefined || !Number.isFinite(s.value)) continue;
    const le = number(s.labels.le);
    if (le === null || Number.isNaN(le)) continue;
    out.set(le, (out.get(le) || 0) + s.value);
  }
  return out;
}

// quantile is the q-quantile (0 < q < 1) of the observations made
// between two readings of a histogram's buckets (from buckets), by linear
// interpolation within the bucket it falls in, as Prometheus's
// histogram_quantile does; null when nothing was observed. Past the
// largest finite bound it answers that bound.
export function quantile(q, before, after) {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((b) => Math.max(0, after.get(b) - ((before && before.get(b)) || 0)));
  if (bounds.length === 0) return null;
  const total = delta[delta.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (delta[i] >= rank) {
      if (bounds[i] === Infinity) return lower;
      const inBucket = delta[i] - below;
      return inBucket > 0 ? lower + (bounds[i] - lower) * ((rank - below) / inBucket) : bounds[i];
    }
    if (bounds[i] !== Infinity) lower = bounds[i];
    below = delta[i];
  }
  return lower;
}
