/* derive site: answer parsing (numbers with units and suffixes), feedback, and calculator wiring.
 *
 * No formulas live here: each calculator's formula arrives as JavaScript generated from its SymPy
 * expression (calc-*.js), and each exercise's answer and hints arrive as JSON written by the engine.
 * Works from file:// with no network. Also loads in Node (module.exports) so tests can drive it.
 */
(function (root) {
  "use strict";

  // ---- exact rationals on BigInt: the generated "exact" functions call these -----------------
  function gcd(a, b) {
    if (a < 0n) a = -a;
    if (b < 0n) b = -b;
    while (b) { const t = a % b; a = b; b = t; }
    return a;
  }
  function make(n, d) {
    if (d === 0n) throw new RangeError("division by zero");
    if (d < 0n) { n = -n; d = -d; }
    const g = gcd(n, d);
    return g > 1n ? { n: n / g, d: d / g } : { n: n, d: d };
  }
  const R = {
    int: function (n) { return { n: BigInt(n), d: 1n }; },
    q: function (p, q) { return make(BigInt(p), BigInt(q)); },
    add: function () {
      let n = 0n, d = 1n;
      for (const x of arguments) {
        if (x.d === d) { n += x.n; } else { n = n * x.d + x.n * d; d *= x.d; }
      }
      return make(n, d);
    },
    mul: function () {
      let n = 1n, d = 1n;
      for (const x of arguments) { n *= x.n; d *= x.d; }
      return make(n, d);
    },
    div: function (a, b) { return make(a.n * b.d, a.d * b.n); },
    pow: function (x, k) {
      if (k < 0) return R.pow(make(x.d, x.n), -k);
      return { n: x.n ** BigInt(k), d: x.d ** BigInt(k) };
    },
    floor: function (x) {
      let q = x.n / x.d;
      if (x.n < 0n && q * x.d !== x.n) q -= 1n;
      return { n: q, d: 1n };
    },
    ceil: function (x) {
      let q = x.n / x.d;
      if (x.n > 0n && q * x.d !== x.n) q += 1n;
      return { n: q, d: 1n };
    },
    cmp: function (a, b) {
      const l = a.n * b.d, r = b.n * a.d;
      return l < r ? -1 : (l > r ? 1 : 0);
    },
    max: function () { return Array.prototype.reduce.call(arguments, function (a, b) { return R.cmp(a, b) >= 0 ? a : b; }); },
    min: function () { return Array.prototype.reduce.call(arguments, function (a, b) { return R.cmp(a, b) <= 0 ? a : b; }); },
    isInt: function (x) { return x.d === 1n; },
    /** The nearest double: a 21-digit decimal quotient, rounded once by parseFloat. */
    toNumber: function (x) {
      if (x.d === 1n) return Number(x.n);
      const digits = (x.n < 0n ? -x.n : x.n).toString().length - x.d.toString().length;
      const shift = 21 - digits;
      const q = shift >= 0 ? (x.n * 10n ** BigInt(shift)) / x.d : x.n / (x.d * 10n ** BigInt(-shift));
      return parseFloat(q.toString() + "e" + (-shift));
    },
    toString: function (x) { return x.d === 1n ? x.n.toString() : x.n + "/" + x.d; },
    /** '6.74e9' -> 6740000000 exactly; '1_000', '1,000' -> 1000. */
    fromDecimal: function (text) {
      const m = /^([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text.replace(/[_,]/g, ""));
      if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) throw new SyntaxError("not a number: " + text);
      const frac = m[3] || "";
      let n = BigInt((m[2] || "0") + frac);
      let d = 10n ** BigInt(frac.length);
      const e = m[4] ? parseInt(m[4], 10) : 0;
      if (Math.abs(e) > 400) throw new RangeError("exponent out of range: " + text);
      if (e > 0) n *= 10n ** BigInt(e); else if (e < 0) d *= 10n ** BigInt(-e);
      if (m[1] === "-") n = -n;
      return make(n, d);
    },
  };

  // ---- human units: the same rules as derive/units/human.py -------------------------------
  const SI = [[1e24, "Y"], [1e21, "Z"], [1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const IEC = [[2 ** 60, "Ei"], [2 ** 50, "Pi"], [2 ** 40, "Ti"], [2 ** 30, "Gi"], [2 ** 20, "Mi"], [2 ** 10, "Ki"]];
  const COUNT = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
  const COUNT_UNITS = ["param", "FLOP", "token", "user", "sequence", "position", "1"];

  /** The exact value of a finite double as a BigInt fraction (mantissa over a power of two). */
  function dyadic(x) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const hi = view.getUint32(0), lo = view.getUint32(4);
    const sign = (hi >>> 31) ? -1n : 1n;
    const exp = (hi >>> 20) & 0x7ff;
    let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    let e = -1074;
    if (exp !== 0) { mant |= 1n << 52n; e = exp - 1075; }
    return e >= 0 ? { n: sign * (mant << BigInt(e)), d: 1n } : { n: sign * mant, d: 1n << BigInt(-e) };
  }
  /** round-half-even(|x| * 10^k) as a BigInt, from the exact binary value (as Python's format does). */
  function roundScaled(x, k) {
    const r = dyadic(Math.abs(x));
    let num = r.n, den = r.d;
    if (k >= 0) num *= 10n ** BigInt(k); else den *= 10n ** BigInt(-k);
    let q = num / den;
    const twice = 2n * (num % den);
    if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
    return q;
  }
  function group(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  /** Python's f"{x:,.{decimals}f}". */
  function fixed(x, decimals) {
    const q = roundScaled(x, decimals).toString().padStart(decimals + 1, "0");
    const intPart = q.slice(0, q.length - decimals), frac = q.slice(q.length - decimals);
    return (x < 0 ? "-" : "") + group(intPart) + (decimals ? "." + frac : "");
  }
  /** Python's f"{x:.{digits - 1}e}": mantissa rounded half-even, exponent signed with two digits. */
  function expo(x, digits) {
    let e = Math.floor(Math.log10(Math.abs(x)));
    let q = roundScaled(x, digits - 1 - e);
    if (q < 10n ** BigInt(digits - 1)) { e -= 1; q = roundScaled(x, digits - 1 - e); }
    if (q >= 10n ** BigInt(digits)) { e += 1; q = roundScaled(x, digits - 1 - e); }
    const m = q.toString();
    const mant = digits > 1 ? m[0] + "." + m.slice(1) : m;
    const ex = Math.abs(e) < 10 ? "0" + Math.abs(e) : String(Math.abs(e));
    return (x < 0 ? "-" : "") + mant + "e" + (e < 0 ? "-" : "+") + ex;
  }
  function sig(x, digits) {
    if (digits === undefined) digits = 4;
    if (x === 0) return "0";
    if (!isFinite(x)) return x > 0 ? "inf" : (x < 0 ? "-inf" : "nan");
    const mag = Math.floor(Math.log10(Math.abs(x)));
    if (mag >= 15 || mag <= -5) return expo(x, digits);
    const decimals = Math.max(digits - 1 - mag, 0);
    let text = fixed(x, decimals);
    if (text.indexOf(".") >= 0) text = text.replace(/0+$/, "").replace(/\.$/, "");
    return text;
  }
  function scaled(x, table, unit, sep) {
    if (sep === undefined) sep = " ";
    // compare after rounding, so 999,971,104 shows as 1B and not 1,000M
    const rounded = x && isFinite(x) ? parseFloat(expo(x, 4)) : x;
    for (const [factor, prefix] of table) {
      if (Math.abs(rounded) >= factor) return sig(x / factor) + sep + prefix + unit;
    }
    return sig(x) + sep + unit;
  }
  function bytesText(n) {
    if (Math.abs(n) < 1000) return sig(n) + " B";
    return scaled(n, SI, "B") + " = " + scaled(n, IEC, "B");
  }
  function secondsText(t) {
    const a = Math.abs(t);
    if (a === 0) return "0 s";
    if (a < 1e-6) return sig(t * 1e9) + " ns";
    if (a < 1e-3) return sig(t * 1e6) + " µs";
    if (a < 1) return sig(t * 1e3) + " ms";
    if (a < 120) return sig(t) + " s";
    if (a < 7200) return sig(t / 60) + " min";
    if (a < 172800) return sig(t / 3600) + " h";
    return sig(t / 86400) + " days";
  }
  function human(x, unit) {
    if (unit === "param") return scaled(x, COUNT, " params", "");
    if (unit === "byte") return bytesText(x);
    if (unit === "FLOP") return scaled(x, SI, "FLOP");
    if (unit === "s") return secondsText(x);
    if (unit === "FLOP/s") return scaled(x, SI, "FLOP/s");
    if (unit === "byte/s") return scaled(x, SI, "B/s");
    if (unit === "USD") return "$" + sig(x);
    if (unit === "USD/token") return "$" + sig(x) + "/token = $" + sig(x * 1e6) + " per 1M tokens";
    if (unit === "USD/s") return "$" + sig(x * 3600) + "/hour";
    if (["token", "user", "sequence", "position"].indexOf(unit) >= 0) {
      const name = Math.abs(x) !== 1 ? " " + unit + "s" : " " + unit;
      // 4,096 tokens, not 4.096K tokens (as derive.units.human)
      if (Number.isInteger(x) && Math.abs(x) < 1e6) return x.toLocaleString("en-US") + name;
      return scaled(x, COUNT, name, "");
    }
    if (unit === "1") return sig(x);
    return sig(x) + " " + unit;
  }
  /** Exact integers with thousands separators; other values to 6 significant figures. */
  function exactText(r) {
    if (R.isInt(r)) {
      const neg = r.n < 0n;
      const s = group((neg ? -r.n : r.n).toString());
      return (neg ? "-" : "") + s;
    }
    return sig(R.toNumber(r), 6);
  }

  // ---- reading what a person typed -------------------------------------------------------
  const NUMBER = /^\s*([-+]?(?:\d[\d_,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\s*\/\s*(\d+))?\s*(.*?)\s*$/;
  const SUFFIX = { K: 1000n, k: 1000n, M: 1000000n, B: 1000000000n, G: 1000000000n, T: 1000000000000n };
  const SUFFIX_RE = /^([kKMBGT])(?:\s+(.*)|\s*$|(?=[a-zA-Z/]{2,})(.*))$/;

  function lookupUnit(name, units) {
    if (Object.prototype.hasOwnProperty.call(units.table, name)) return units.table[name];
    const lower = name.toLowerCase();
    if (Object.prototype.hasOwnProperty.call(units.lower, lower)) return units.table[units.lower[lower]];
    return null;
  }
  /** One simple unit, optionally with a count in front ("1M tokens", "Mtok"): {f: rational, c: canon}. */
  function simpleUnit(text, units) {
    text = text.trim();
    const direct = lookupUnit(text, units);
    if (direct) return { f: R.q(direct[1][0], direct[1][1]), c: direct[0] };
    const m = /^(\d+(?:\.\d+)?)?\s*([kKMBT])?\s*([A-Za-z$µ][\w$µ ]*)$/.exec(text);
    if (m && (m[1] || m[2])) {
      const u = lookupUnit(m[3].trim(), units);
      if (u && COUNT_UNITS.indexOf(u[0]) >= 0) {
        let f = R.q(u[1][0], u[1][1]);
        if (m[1]) f = R.mul(f, R.fromDecimal(m[1]));
        if (m[2]) f = R.mul(f, R.int(SUFFIX[m[2]]));
        return { f: f, c: u[0] };
      }
    }
    return null;
  }
  /** 'GiB', 'tok/s', 'tokens per second', '$/1M tokens' -> {f: factor to canonical, c: canonical name}. */
  function parseUnit(text, units) {
    const parts = text.split(/\s*\/\s*|\s+per\s+/);
    if (parts.length > 2) return null;
    const num = simpleUnit(parts[0], units);
    if (!num) return null;
    if (parts.length === 1) return num;
    const den = simpleUnit(parts[1], units);
    if (!den) return null;
    if (den.c === "1") return { f: R.div(num.f, den.f), c: num.c };
    return { f: R.div(num.f, den.f), c: (num.c === "1" ? "1" : num.c) + "/" + den.c };
  }

  /**
   * Read "2 GiB", "148 tok/s", "6.74B", "1.5e9", "256 MiB", "$3/hour", "12%".
   * Returns {ok: true, value: rational in canonical units, canon: name or null for a bare number}
   * or {ok: false, error: message}. `expectCount` allows K/M/B/T suffixes on a bare count.
   */
  function parseAmount(text, units, expectCount) {
    let t = String(text || "").trim();
    if (!t) return { ok: false, error: "Type a number, e.g. 2 GiB, 6.74B or 1.5e9." };
    let dollar = false;
    if (t[0] === "$") { dollar = true; t = t.slice(1); }
    const m = NUMBER.exec(t);
    if (!m) return { ok: false, error: "Cannot read \u201c" + text + "\u201d as a number (try 2 GiB, 6.74B, 1.5e9)." };
    let val;
    try { val = R.fromDecimal(m[1]); } catch (e) { return { ok: false, error: String(e.message || e) }; }
    if (m[2]) {
      if (m[2] === "0" || /^0+$/.test(m[2])) return { ok: false, error: "Division by zero." };
      val = R.div(val, R.int(BigInt(m[2])));
    }
    let rest = m[3];
    if (dollar) rest = rest ? "USD" + (/^(\/|per\b)/.test(rest) ? "" : " ") + rest : "USD";
    if (!rest) return { ok: true, value: val, canon: null };
    if (rest === "%") return { ok: true, value: R.div(val, R.int(100n)), canon: "1" };
    const sm = SUFFIX_RE.exec(rest);
    if (sm) {
      const after = (sm[2] || sm[3] || "").trim();
      const scaledVal = R.mul(val, R.int(SUFFIX[sm[1]]));
      if (!after && expectCount) return { ok: true, value: scaledVal, canon: null };
      if (after) {
        const u = parseUnit(after, units);
        if (u && COUNT_UNITS.indexOf(u.c.split("/")[0]) >= 0) return { ok: true, value: R.mul(scaledVal, u.f), canon: u.c };
      }
    }
    const u = parseUnit(rest, units);
    if (!u) return { ok: false, error: "Unknown unit \u201c" + rest + "\u201d (try B, GiB, GB, FLOP, TFLOP, s, ms, h, tok/s, params)." };
    return { ok: true, value: R.mul(val, u.f), canon: u.c };
  }

  function unitsFrom(table) {
    const lower = {}, clash = {};
    for (const name of Object.keys(table)) {
      const l = name.toLowerCase();
      if (Object.prototype.hasOwnProperty.call(lower, l) && table[lower[l]][0] !== table[name][0]) clash[l] = true;
      else if (!Object.prototype.hasOwnProperty.call(lower, l) || name === l) lower[l] = name;
    }
    for (const l of Object.keys(clash)) delete lower[l];
    return { table: table, lower: lower };
  }

  const DIMENSION_WORDS = { byte: "a memory size", s: "a time", param: "a parameter count", FLOP: "a FLOP count",
    token: "a token count", "token/s": "a rate in tokens/s", "byte/s": "a bandwidth", "FLOP/s": "a FLOP rate",
    USD: "an amount of money", "USD/token": "a price per token", "USD/s": "a price per time", user: "a number of users",
    position: "a number of positions", "1": "a pure number" };
  function dimensionWord(canon) { return DIMENSION_WORDS[canon] || "in " + canon; }

  /**
   * Compare an answer with an exercise: {status: "correct"|"wrong"|"invalid", message, hints}.
   * `ex` = {value: number in canonical units, canon, unit (as asked), factor: [p, q] of that unit,
   *         tolerance, hints: [{ratio, text}], display}.
   */
  function check(text, ex, units) {
    const isCount = COUNT_UNITS.indexOf(ex.canon) >= 0;
    const parsed = parseAmount(text, units, isCount);
    if (!parsed.ok) return { status: "invalid", message: parsed.error, hints: [] };
    let value = parsed.value;
    let canon = parsed.canon;
    if (canon === null) {
      value = R.mul(value, R.q(ex.factor[0], ex.factor[1]));
      canon = ex.canon;
    }
    let inverted = false;
    if (canon !== ex.canon) {
      const per = canon.split("/");
      const perCount = per.length === 2 && per[0] === ex.canon && COUNT_UNITS.indexOf(per[1]) >= 0;
      const plainCount = ex.canon === "1" && COUNT_UNITS.indexOf(canon) >= 0;
      // 13.5 ms/token for a rate in token/s (or the other way round): the same answer, inverted
      inverted = per.length === 2 && ex.canon === per[1] + "/" + per[0] && value.n !== 0n;
      if (inverted) value = R.div(R.int(1n), value);
      if (!perCount && !plainCount && !inverted) {
        return { status: "invalid", hints: [],
          message: "That is " + dimensionWord(canon) + ", but the answer is " + dimensionWord(ex.canon) +
                   (ex.unit === "1" ? "." : " (in " + ex.unit + ").") };
      }
    }
    const x = R.toNumber(value);
    const v = ex.value;
    const read = "Read as " + (inverted ? "1 / your value = " : "") + human(x, ex.canon) + ".";
    const tol = ex.tolerance;
    if (v === 0) {
      return x === 0 ? { status: "correct", message: "Correct.", hints: [] }
        : { status: "wrong", message: read + " Not quite: the answer is zero.", hints: [] };
    }
    const r = x / v;
    if (Math.abs(r - 1) <= tol) {
      return { status: "correct", hints: [],
        message: "Correct \u2014 within " + sig(tol * 100, 2) + "% of the engine's value. " + read };
    }
    if (r <= 0) return { status: "wrong", hints: [], message: read + " The sign is wrong." };
    let how;
    if (r >= 2) how = "about " + sig(r, 3) + "\u00d7 too large";
    else if (r <= 0.5) how = "about " + sig(1 / r, 3) + "\u00d7 too small";
    else how = sig(Math.abs(r - 1) * 100, 2) + "% too " + (r > 1 ? "high" : "low");
    const hints = [];
    const hintTol = Math.log(1 + Math.max(tol, 0.015));
    for (const h of ex.hints || []) {
      if (Math.abs(Math.log(r / h.ratio)) <= hintTol && hints.indexOf(h.text) < 0) hints.push(h.text);
    }
    return { status: "wrong", hints: hints,
      message: "Not quite: " + how + " (needs to be within " + sig(tol * 100, 2) + "%). " + read };
  }

  // ---- calculators -----------------------------------------------------------------------
  const CALCS = {};
  /** Called by each generated calc-*.js file: {shapeId: {float: fn, exact: fn|null}}. */
  function registerCalc(qid, shapes) { CALCS[qid] = shapes; }

  /** Evaluate a generated formula on rationals: {exact: rational|null, value: number}. */
  function evaluate(fns, rationals) {
    const nums = {};
    for (const k of Object.keys(rationals)) nums[k] = R.toNumber(rationals[k]);
    let exact = null;
    if (fns.exact) {
      try { exact = fns.exact(rationals, R); } catch (e) { exact = null; }
    }
    const value = exact ? R.toNumber(exact) : fns.float(nums);
    return { exact: exact, value: value, float: fns.float(nums) };
  }

  // ---- DOM wiring (browsers only) ------------------------------------------------------
  function jsonData(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function setText(el, text) { if (el) el.textContent = text; }

  function wireExercises(units) {
    const forms = document.querySelectorAll("form.answer");
    for (const form of forms) {
      const ex = JSON.parse(form.getAttribute("data-answer"));
      const input = form.querySelector("input");
      const out = form.querySelector(".feedback");
      const showFeedback = function (res) {
        out.className = "feedback " + res.status;
        out.textContent = "";
        const lead = document.createElement("p");
        lead.className = "verdict";
        const mark = { correct: "\u2713 ", wrong: "\u2717 ", invalid: "? " }[res.status];
        lead.textContent = mark + res.message;
        out.appendChild(lead);
        for (const h of res.hints) {
          const p = document.createElement("p");
          p.className = "hint";
          p.textContent = "Hint: " + h;
          out.appendChild(p);
        }
        input.setAttribute("aria-invalid", res.status === "correct" ? "false" : "true");
      };
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        showFeedback(check(input.value, ex, units));
      });
    }
    for (const btn of document.querySelectorAll("button.reveal")) {
      const target = document.getElementById(btn.getAttribute("aria-controls"));
      target.hidden = true;  // visible without JavaScript; folded away when the button can open it
      btn.addEventListener("click", function () {
        const open = btn.getAttribute("aria-expanded") === "true";
        btn.setAttribute("aria-expanded", open ? "false" : "true");
        target.hidden = open;
        setText(btn, open ? "Show worked solution" : "Hide worked solution");
      });
    }
  }

  function wireCalculator(data, units) {
    const fns = CALCS[data.qid];
    const modelSel = document.getElementById("model");
    const hwSel = document.getElementById("hardware");
    const result = document.getElementById("result-human");
    const exactEl = document.getElementById("result-exact");
    const status = document.getElementById("result-status");
    const verdictEl = document.getElementById("result-verdict");
    const label = document.getElementById("result-label");
    const box = result.closest(".result");
    const inputs = {};
    for (const el of document.querySelectorAll("input[data-symbol]")) inputs[el.getAttribute("data-symbol")] = el;
    let shape = null;

    function readInput(name) {
      const el = inputs[name];
      const info = data.symbols[name];
      const err = document.getElementById("err-" + name);
      const parsed = parseAmount(el.value, units, COUNT_UNITS.indexOf(info.unit) >= 0);
      let message = "";
      let value = null;
      if (!parsed.ok) message = parsed.error;
      else if (parsed.canon !== null && parsed.canon !== info.unit) {
        message = "This needs " + dimensionWord(info.unit) + " (" + info.read_unit + "), not " + dimensionWord(parsed.canon) + ".";
      } else {
        value = parsed.canon === null ? R.mul(parsed.value, R.q(info.factor[0], info.factor[1])) : parsed.value;
        if (info.integer && !R.isInt(value)) message = "A whole number, please.";
        else if (info.positive && value.n <= 0n) message = "Must be positive.";
        else if (info.nonnegative && value.n < 0n) message = "Must not be negative.";
      }
      el.setAttribute("aria-invalid", message ? "true" : "false");
      setText(err, message);
      if (err) err.hidden = !message;
      return message ? null : value;
    }

    /**
     * The engine's fit check on the typed values, with its generated expressions: the verdict line of
     * `derive show` ({text, needed, available}) when one device cannot hold what it needs, else null.
     */
    function fitVerdict(spec, vals) {
      const fit = fns[shape].fit;
      if (!spec.fit || !fit) return null;
      const need = evaluate(fit.needed, vals), avail = evaluate(fit.available, vals);
      const over = need.exact && avail.exact ? R.cmp(need.exact, avail.exact) > 0 : need.value > avail.value;
      if (!over) return null;
      const amounts = { needed: human(need.value, "byte"), available: human(avail.value, "byte") };
      return {
        text: spec.fit.replace(/\{(needed|available)\}/g, function (_m, k) { return amounts[k]; }),
        needed: need.exact ? R.toString(need.exact) : String(need.value),
        available: avail.exact ? R.toString(avail.exact) : String(avail.value),
      };
    }
    /** The verdict in place of the result (the number hidden), or the result back (v === null). */
    function showVerdict(v) {
      const on = v !== null;
      box.classList.toggle("does-not-fit", on);
      if (verdictEl) {
        verdictEl.hidden = !on;
        setText(verdictEl, on ? v.text : "");
        if (on) {
          verdictEl.setAttribute("data-needed", v.needed);
          verdictEl.setAttribute("data-available", v.available);
        } else {
          verdictEl.removeAttribute("data-needed");
          verdictEl.removeAttribute("data-available");
        }
      }
      result.hidden = on;
      if (label) label.hidden = on;
      if (on) {  // no number: none is reported either
        exactEl.hidden = true;
        exactEl.removeAttribute("data-value");
      }
    }

    function recompute() {
      const spec = data.shapes[shape];
      const vals = {};
      let bad = [];
      for (const name of spec.inputs) {
        const v = readInput(name);
        if (v === null) bad.push(name); else vals[name] = v;
      }
      if (bad.length) {
        showVerdict(null);
        setText(status, "Fix " + bad.join(", ") + " to see a value.");
        result.classList.add("stale");
        return;
      }
      let res, verdict;
      try {
        verdict = fitVerdict(spec, vals);
        res = verdict ? null : evaluate(fns[shape], vals);
      } catch (e) {
        showVerdict(null);
        setText(status, "Cannot evaluate: " + (e.message || e));
        result.classList.add("stale");
        return;
      }
      result.classList.remove("stale");
      setText(status, "");
      showVerdict(verdict);
      if (verdict) { updateCli(); return; }
      const humanText = human(res.value, data.unit);
      setText(result, humanText);
      const exact = res.exact ? exactText(res.exact) : sig(res.value, 6);
      const unit = data.unit === "1" ? "" : " " + data.unit;  // a pure number has no unit to print
      const exactLine = (res.exact && R.isInt(res.exact) ? "" : "\u2248 ") + exact + unit;
      setText(exactEl, exactLine);
      exactEl.hidden = exactLine === humanText;  // "3" under "3" says nothing
      exactEl.setAttribute("data-value", res.exact ? R.toString(res.exact) : String(res.value));
      updateCli();
    }

    /** The `derive show` command that gives the same number: presets plus --set for what was changed. */
    function updateCli() {
      const cli = document.getElementById("cli");
      if (!cli) return;
      const m = data.models.find(function (x) { return x.id === modelSel.value; });
      const h = hwSel ? data.hardware.find(function (x) { return x.id === hwSel.value; }) : null;
      const preset = Object.assign({}, m.values, h ? h.values : {});  // defaults are not the CLI's: always --set
      const parts = ["derive show", data.qid, "--model", m.id];
      if (h) parts.push("--hardware", h.id);
      for (const pin of data.shapes[shape].cli || []) parts.push(pin);  // the page's conventions the CLI must be told
      for (const name of data.shapes[shape].inputs) {
        const typed = inputs[name].value.trim();
        // a workload value the page sets (a context length) is no preset's: the CLI must be told it too
        const own = (data.sets || []).indexOf(name) >= 0;
        if (own || typed !== (preset[name] || "").trim()) parts.push("--set " + name + "=" + typed.replace(/\s+/g, ""));
      }
      cli.textContent = parts.join(" ");
    }

    function applyValues(values) {
      for (const name of Object.keys(values)) if (inputs[name]) inputs[name].value = values[name];
    }
    function selectModel(id) {
      const m = data.models.find(function (x) { return x.id === id; });
      shape = m.shape;
      for (const sid of Object.keys(data.shapes)) {
        const f = document.getElementById("formula-" + sid);
        if (f) f.hidden = sid !== shape;
      }
      const wanted = data.shapes[shape].inputs;
      for (const name of Object.keys(inputs)) {
        inputs[name].closest(".field").hidden = wanted.indexOf(name) < 0;
      }
      applyValues(m.values);
      setText(document.getElementById("model-note"), m.note || "");
    }
    modelSel.addEventListener("change", function () { selectModel(modelSel.value); recompute(); });
    if (hwSel) {
      hwSel.addEventListener("change", function () {
        const h = data.hardware.find(function (x) { return x.id === hwSel.value; });
        applyValues(h.values);
        setText(document.getElementById("hardware-note"), h.note || "");
        recompute();
      });
    }
    for (const name of Object.keys(inputs)) inputs[name].addEventListener("input", recompute);
    const reset = document.getElementById("reset");
    if (reset) {
      reset.addEventListener("click", function () {
        applyValues(data.defaults);
        if (hwSel) applyValues(data.hardware.find(function (x) { return x.id === hwSel.value; }).values);
        selectModel(modelSel.value);
        recompute();
      });
    }
    document.getElementById("calc-form").addEventListener("submit", function (ev) { ev.preventDefault(); recompute(); });
    shape = data.models.find(function (x) { return x.id === modelSel.value; }).shape;
    recompute();
    root.document.documentElement.setAttribute("data-ready", "1");
  }

  function init() {
    document.documentElement.classList.add("js");
    const units = unitsFrom(jsonData("unit-table") || {});
    wireExercises(units);
    const calc = jsonData("calc-data");
    if (calc) wireCalculator(calc, units);
    else document.documentElement.setAttribute("data-ready", "1");
  }

  const api = { R: R, sig: sig, human: human, exactText: exactText, parseAmount: parseAmount, parseUnit: parseUnit,
    unitsFrom: unitsFrom, check: check, registerCalc: registerCalc, calcs: CALCS, evaluate: evaluate };
  root.Derive = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
    else init();
  }
})(typeof window !== "undefined" ? window : globalThis);
