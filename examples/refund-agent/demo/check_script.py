#!/usr/bin/env python3
"""Checks the demo script against the golden set, without a model or evalgate.

The demo cassette (cassette.jsonl) is recorded from a scripted fake model server that answers
each case with the replies in script.jsonl. This script evaluates every deterministic check of
every case against those replies, for the base (1.4) and head (1.5) sides, the way evalgate
would: tool calls = the tool calls of all steps, final answer = the text of the last step,
turns = number of steps, a judge check = the scripted verdict's `pass`. The checks that depend
on the recording (max_tokens, max_latency_ms, max_cost_usd) are skipped.

It prints each case's verdict on both sides, then the regressions and fixes, and exits 1 when
the outcome differs from the demo's story (STORY below) or the script is malformed.

    python3 examples/refund-agent/demo/check_script.py [--verbose]

Standard library only.
"""

import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CASES = ROOT / "golden-sets" / "refund" / "cases.jsonl"
TOOLS = ROOT / "examples" / "refund-agent" / "tools.yaml"
SCRIPT = HERE / "script.jsonl"
MAX_TURNS = 6  # runner.max_turns of both bundles

# The demo's story: every case not named here passes on both sides.
STORY = {
    "fixes": ["refund-011", "refund-012", "refund-021", "refund-024", "refund-034"],
    "regressions": ["refund-040"],
    "fail_both": ["refund-032"],
}

SKIPPED = {"max_tokens", "max_latency_ms", "max_cost_usd"}


# --- a small YAML reader, enough for tools.yaml -------------------------------------------------

def _scalar(s):
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        return [_scalar(x) for x in inner.split(",")] if inner else []
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return json.loads(s) if s[0] == '"' else s[1:-1]
    if s in ("true", "false"):
        return s == "true"
    if s in ("null", "~", ""):
        return None
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def load_yaml(text):
    """Block mappings and sequences, flow lists of scalars, quoted and plain scalars."""
    lines = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if line.strip():
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    pos = 0

    def block(indent):
        nonlocal pos
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            seq = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("-"):
                rest = lines[pos][1][1:].strip()
                if not rest:
                    pos += 1
                    seq.append(block(lines[pos][0]))
                elif re.match(r"^[A-Za-z0-9_$-]+:( |$)", rest):
                    # a mapping that starts on the dash line: re-read it at the deeper indent
                    lines[pos] = (indent + 2, rest)
                    seq.append(block(indent + 2))
                else:
                    pos += 1
                    seq.append(_scalar(rest))
            return seq
        mapping = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            key, _, value = lines[pos][1].partition(":")
            pos += 1
            if value.strip():
                mapping[key.strip()] = _scalar(value)
            elif pos < len(lines) and lines[pos][0] > indent:
                mapping[key.strip()] = block(lines[pos][0])
            elif pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                mapping[key.strip()] = block(indent)
            else:
                mapping[key.strip()] = None
        return mapping

    return block(lines[0][0]) if lines else None


# --- JSON Schema, the subset the cases and tools.yaml use ---------------------------------------

def _is_type(v, t):
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "null":
        return v is None
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    raise ValueError(f"schema type {t!r} is not supported by this checker")


def json_eq(a, b):
    """JSON equality: numbers by value, booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


SUPPORTED = {"$schema", "type", "properties", "required", "additionalProperties", "const", "enum",
             "minimum", "maximum", "pattern", "description"}


def schema_errors(v, schema, at="$"):
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise ValueError(f"schema keywords {sorted(unknown)} are not supported by this checker")
    errs = []
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_is_type(v, x) for x in types):
            return [f"{at}: expected {t}, got {json.dumps(v)}"]
    if "const" in schema and not json_eq(v, schema["const"]):
        errs.append(f"{at}: expected {json.dumps(schema['const'])}, got {json.dumps(v)}")
    if "enum" in schema and not any(json_eq(v, e) for e in schema["enum"]):
        errs.append(f"{at}: {json.dumps(v)} is not one of {schema['enum']}")
    if _is_type(v, "number"):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append(f"{at}: {v} < minimum {schema['minimum']}")
        if "maximum" in schema and v > schema["maximum"]:
            errs.append(f"{at}: {v} > maximum {schema['maximum']}")
    if isinstance(v, str) and "pattern" in schema and not re.search(schema["pattern"], v):
        errs.append(f"{at}: {v!r} does not match {schema['pattern']}")
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in v:
                errs.append(f"{at}: missing required {r!r}")
        for k, val in v.items():
            if k in props:
                errs += schema_errors(val, props[k], f"{at}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{at}: unexpected property {k!r}")
    return errs


# --- the checks ---------------------------------------------------------------------------------

def rust_regex(pattern):
    # The patterns in the golden set use only syntax that means the same in Python's `re`.
    return re.compile(pattern)


def run_check(check, run, tools):
    """Returns (passed, detail); passed is None for checks this script skips."""
    t = check["type"]
    text = run["text"]
    calls = run["calls"]
    if t in SKIPPED:
        return None, "depends on the recording"
    if t == "equals":
        return text.strip() == check["value"].strip(), ""
    if t == "contains":
        return check["value"] in text, ""
    if t == "not_contains":
        return check["value"] not in text, ""
    if t == "icontains":
        return check["value"].lower() in text.lower(), ""
    if t == "starts_with":
        return text.lstrip().startswith(check["value"]), ""
    if t == "regex":
        return rust_regex(check["pattern"]).search(text) is not None, ""
    if t == "max_chars":
        return len(text) <= check["value"], f"{len(text)} chars"
    if t == "json_valid":
        try:
            json.loads(text)
            return True, ""
        except ValueError as e:
            return False, str(e)
    if t == "json_schema":
        try:
            value = json.loads(text)
        except ValueError as e:
            return False, f"not JSON: {e}"
        errs = schema_errors(value, check["schema"])
        return not errs, "; ".join(errs)
    if t == "tool_called":
        want = check.get("args", {})
        for c in calls:
            if c["name"] == check["tool"] and all(k in c["args"] and json_eq(c["args"][k], v) for k, v in want.items()):
                return True, ""
        return False, f"no call {check['tool']}({json.dumps(want)})"
    if t == "tool_not_called":
        return all(c["name"] != check["tool"] for c in calls), ""
    if t == "tool_args_valid":
        errs = []
        for c in calls:
            if c["name"] not in tools:
                errs.append(f"unknown tool {c['name']}")
            else:
                errs += [f"{c['name']}: {e}" for e in schema_errors(c["args"], tools[c["name"]])]
        return not errs, "; ".join(errs)
    if t == "max_turns":
        return run["turns"] <= check["value"], f"{run['turns']} turns"
    if t == "judge":
        j = run["judge"]
        return bool(j and j["pass"]), (j or {}).get("reason", "no judge verdict")
    raise ValueError(f"unknown check type {t!r}")


def main():
    verbose = "--verbose" in sys.argv[1:]
    problems = []
    cases = {}
    for line in CASES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            c = json.loads(line)
            cases[c["id"]] = c
    tools = {t["name"]: t["input_schema"] for t in load_yaml(TOOLS.read_text(encoding="utf-8"))}

    runs = {}  # (case, side) -> run
    for n, line in enumerate(SCRIPT.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        s = json.loads(line)
        where = f"script.jsonl:{n} ({s.get('case')})"
        case = cases.get(s.get("case"))
        if case is None:
            problems.append(f"{where}: no such case")
            continue
        side = s.get("side")
        if side not in ("both", "base", "head"):
            problems.append(f"{where}: side must be both, base or head")
            continue
        steps = s.get("steps") or []
        if not steps:
            problems.append(f"{where}: no steps")
            continue
        for i, st in enumerate(steps):
            last = i == len(steps) - 1
            if last and st.get("tool_calls"):
                problems.append(f"{where}: the last step must have no tool calls")
            if not last and not st.get("tool_calls"):
                problems.append(f"{where}: step {i} is not the last but has no tool calls")
            if not last and st.get("text"):
                problems.append(f"{where}: step {i} has text; only the final answer should")
        if not steps[-1].get("text", "").strip():
            problems.append(f"{where}: the final answer is empty")
        if len(steps) > MAX_TURNS:
            problems.append(f"{where}: {len(steps)} steps exceed runner.max_turns {MAX_TURNS}")
        calls = [c for st in steps for c in st.get("tool_calls", [])]
        fixtures = case.get("tool_results", {})
        for c in calls:
            if c["name"] not in tools:
                problems.append(f"{where}: unknown tool {c['name']}")
                continue
            errs = schema_errors(c["args"], tools[c["name"]])
            if errs:
                problems.append(f"{where}: invalid args for {c['name']}: {'; '.join(errs)}")
            if c["name"] not in fixtures:
                problems.append(f"{where}: {c['name']} has no fixture in the case; the model would get an error")
        has_judge = any(ch["type"] == "judge" for ch in case["checks"])
        j = s.get("judge")
        if has_judge and not (isinstance(j, dict) and isinstance(j.get("pass"), bool)
                              and isinstance(j.get("score"), (int, float)) and 0 <= j["score"] <= 1
                              and isinstance(j.get("reason"), str) and j["reason"]):
            problems.append(f"{where}: the case has a judge check; give judge {{pass, score 0..1, reason}}")
        if not has_judge and j is not None:
            problems.append(f"{where}: judge verdict for a case without a judge check")
        run = {"text": steps[-1].get("text", ""), "calls": calls, "turns": len(steps), "judge": j}
        for sd in (("base", "head") if side == "both" else (side,)):
            if (case["id"], sd) in runs:
                problems.append(f"{where}: a second script for {case['id']} on {sd}")
            runs[(case["id"], sd)] = run

    verdicts = {}
    print(f"{'case':<12} {'base (1.4)':<11} {'head (1.5)':<11} failing checks")
    for cid, case in cases.items():
        row = {}
        notes = []
        for sd in ("base", "head"):
            run = runs.get((cid, sd))
            if run is None:
                problems.append(f"{cid}: no script for the {sd} side")
                row[sd] = None
                continue
            ok = True
            for ch in case["checks"]:
                passed, detail = run_check(ch, run, tools)
                if passed is False:
                    ok = False
                    what = ch["type"] + (f" {ch.get('tool')}" if "tool" in ch else "") \
                        + (f" {ch.get('value')!r}" if "value" in ch else "") \
                        + (f" {ch.get('pattern')}" if "pattern" in ch else "")
                    notes.append(f"{sd}: {what}" + (f" ({detail})" if detail and verbose else ""))
            row[sd] = ok
        verdicts[cid] = row
        fmt = {True: "pass", False: "FAIL", None: "-"}
        print(f"{cid:<12} {fmt[row['base']]:<11} {fmt[row['head']]:<11} {'; '.join(notes)}")

    regressions = [c for c, r in verdicts.items() if r["base"] is True and r["head"] is False]
    fixes = [c for c, r in verdicts.items() if r["base"] is False and r["head"] is True]
    fail_both = [c for c, r in verdicts.items() if r["base"] is False and r["head"] is False]
    base_pass = sum(1 for r in verdicts.values() if r["base"])
    head_pass = sum(1 for r in verdicts.values() if r["head"])
    base_fail = len(verdicts) - base_pass
    print()
    print(f"pass rate: base {base_pass}/{len(verdicts)}, head {head_pass}/{len(verdicts)}")
    print(f"regressions ({len(regressions)}): {', '.join(regressions) or 'none'}"
          f"  regression rate {len(regressions) / base_pass if base_pass else 0:.1%}")
    print(f"fixes ({len(fixes)}): {', '.join(fixes) or 'none'}"
          f"  fix rate {len(fixes) / base_fail if base_fail else 0:.1%}")
    print(f"fail on both ({len(fail_both)}): {', '.join(fail_both) or 'none'}")
    critical = [c for c in regressions if "critical" in cases[c].get("tags", [])]
    print(f"critical regressions: {', '.join(critical) or 'none'}")

    for name, got in (("fixes", fixes), ("regressions", regressions), ("fail_both", fail_both)):
        if sorted(got) != sorted(STORY[name]):
            problems.append(f"{name}: expected {STORY[name]}, got {got}")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  {p}")
        return 1
    print("\nThe script tells the demo's story.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
