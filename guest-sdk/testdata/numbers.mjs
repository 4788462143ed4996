// Generates numbers.json: [input, expected] pairs that every kit's JSON
// reader + canonical writer must agree on (expected null: the input must be
// refused, a number too large for a double). The reference for doubles is
// ECMAScript (Number(text) is correctly rounded, String(x) is the canonical
// layout); integer literals within -2^63 ..= 2^64 - 1 are exact.
//
//   node guest-sdk/testdata/numbers.mjs > guest-sdk/testdata/numbers.json
//
// Used by the unit tests of the Rust SDK (canonical.rs), the Python kit
// (test_hume_guest.py), the JS kit (hume-guest.test.js) and the C kit
// (test_hume_json.c).

const MIN_I64 = -(2n ** 63n);
const MAX_U64 = 2n ** 64n - 1n;

function expected(text) {
  if (/^-?\d+$/.test(text)) {
    const v = BigInt(text);
    if (v >= MIN_I64 && v <= MAX_U64) return v.toString();
  }
  const x = Number(text);
  return Number.isFinite(x) ? String(x) : null;
}

const fixed = [
  // zero, signs, integral floats
  "0", "-0", "0.0", "-0.0", "0e10", "-0e-10", "0.000", "1", "-1", "2.0", "-2.0", "1E2", "1e2",
  "1.5e3", "100", "1e0", "10.0e-1",
  // everyday decimals and 0.1 + 0.2
  "0.1", "0.2", "0.3", "0.30000000000000004", "0.1e1", "3.14159", "-2.5", "123456.789",
  "4294967296.5", "-0.001",
  // integers around 2^53 and the 64-bit range
  "9007199254740991", "9007199254740992", "9007199254740993", "-9007199254740993",
  "12345678901234567", "-12345678901234567", "9223372036854775807", "-9223372036854775808",
  "9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
  "123456789012345678901234567890", "-123456789012345678901234567890",
  // the same as floats
  "12345678901234567.0", "9007199254740993.0", "1.2345678901234567e16", "18446744073709551615.0",
  // subnormals and the smallest normal
  "5e-324", "-5e-324", "4.9406564584124654e-324", "2.4703282292062328e-324",
  "2.4703282292062327e-324", "1e-323", "2.2250738585072011e-308", "2.2250738585072012e-308",
  "2.2250738585072014e-308", "2.225073858507201e-308", "1e-400", "-1e-400",
  // the largest double
  "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623157e+308",
  // where ECMAScript switches to exponent form: 1e21 and 1e-7
  "1e21", "-1e21", "1e20", "999999999999999999999", "999999999999999999999.0",
  "123456789012345680000", "123456789012345678901", "1.5e21", "1e-6", "1e-7", "-1e-7",
  "0.000001", "0.0000001", "1.2345e-7", "0.0000012345", "1e-5", "1E-5", "0.00001", "2e-7",
  "1e15", "1e16", "1e17", "1.2345678901234568e16", "1.5e300", "-1.5e-300", "1e+300",
  // correct rounding: halfway and near-halfway decimals
  "1.00000000000000011102230246251565404236316680908203125",
  "1.00000000000000011102230246251565404236316680908203126",
  "1.00000000000000011102230246251565404236316680908203124",
  "0.1000000000000000055511151231257827021181583404541015625",
  "9007199254740993.0000000000000000001", "8.589973e9", "7.038531e-26", "9.109e-31",
  "6.02214076e23", "1.448997445238699", "4.35052e-5", "2.0019531250000001",
  "3.0517578125e-5", "1797693134862315807937289714053034150799341327710e259",
  // exact ties between two shortest forms: the even one (2^50 + 0.25 -> ...624.2)
  "1125899906842624.25", "1125899906842624.75", "1125899906842625.25", "562949953421312.125",
  "562949953421312.375", "2251799813685248.5",
  // too large for a double: refused
  "1e400", "-1e400", "1e309", "1" + "0".repeat(400), "-" + "9".repeat(330) + ".5",
];

// Deterministic PRNG (xorshift64*).
let seed = 0x2545f4914f6cdd1dn;
function next() {
  seed ^= seed >> 12n;
  seed ^= (seed << 25n) & 0xffffffffffffffffn;
  seed ^= seed >> 27n;
  return (seed * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
}
function below(n) {
  return Number(next() % BigInt(n));
}

const random = [];
const view = new DataView(new ArrayBuffer(8));
while (random.length < 300) {
  view.setBigUint64(0, next());
  const x = view.getFloat64(0);
  if (!Number.isFinite(x)) continue;
  // the shortest form, and 21 significant digits (parses back to x)
  random.push(String(x), x.toExponential(20));
}
for (let i = 0; i < 300; i++) {
  // long random decimals: correct rounding of arbitrary text
  const digits = 17 + below(9);
  let mantissa = String(1 + below(9));
  for (let d = 1; d < digits; d++) mantissa += below(10);
  const exponent = below(640) - 330;
  const sign = below(2) ? "-" : "";
  random.push(`${sign}${mantissa[0]}.${mantissa.slice(1)}e${exponent}`);
}
for (let i = 0; i < 100; i++) {
  // around the positional/exponent boundaries and above 2^53
  const scale = [1e-7, 1e-6, 1e20, 1e21, 2 ** 53, 2 ** 64][below(6)];
  const x = scale * (0.5 + below(1_000_000) / 1_000_000);
  random.push(String(x), x.toPrecision(17));
}

const pairs = [...fixed, ...random].map((text) => [text, expected(text)]);
process.stdout.write("[\n" + pairs.map((p) => JSON.stringify(p)).join(",\n") + "\n]\n");
