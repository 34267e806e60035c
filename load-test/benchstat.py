#!/usr/bin/env python3
"""The benchmark scripts' statistics, arithmetic and JSON reading, in one place (stdlib only).

The bench-*.sh parts call it through lib.sh's `benchstat` function for every figure they compute, so
that no part carries its own awk program or `python3 -c` one-liner. Numbers are printed the way the
tables always showed them: a plain result like awk's `print` (an integral value as an integer, else 6
significant digits), or with a fixed number of decimals (--digits N, like printf "%.Nf").

    benchstat.py median|max [VALUE...]              of the values, else of those on stdin (one per line or
                                                    blank-separated); a value picked prints as it came
    benchstat.py ratio A B                          A / B, 2 decimals unless --digits
    benchstat.py calc EXPR [NAME=VALUE...]          arithmetic (+ - * / ( ) min max) over the named values
    benchstat.py met VALUE TARGET [--at-least]      "met" or "NOT met" for VALUE ≤ TARGET (≥ with --at-least;
                                                    other answers with --words YES,NO)
    benchstat.py fmt DIGITS VALUE...                printf "%.Nf" of each value
    benchstat.py json SOURCE PATH...                fields of a JSON document (SOURCE: a file, or - for stdin);
                                                    --each LIST: one line per element of the list LIST
    benchstat.py same-lines FILE1 FILE2             how many lines are equal at the same line number
    benchstat.py prom NAME [LABEL=VALUE...]         sum of the matching samples of a Prometheus text on stdin
    benchstat.py wrk                                "requests/s p99_ms errors" from `wrk --latency` on stdin
    benchstat.py rss-mb PID                         peak RSS (VmHWM) of a running process, MB
    benchstat.py cpu-seconds PID                    user + system CPU seconds of a running process
    benchstat.py compaction LOG                     "hours days events errors" of a compactor --once JSON log
    benchstat.py machine                            "N cores (CPU model), M GiB, kernel" for a results header
    benchstat.py free-port                          a TCP port free on 127.0.0.1 now

JSON paths (see `resolve`): `a.b` walks objects, `a[]` maps over a list (`a[:N]` its first N), `|FILTER`
post-processes (sum, uniq, join:SEP, split:SEP:INDEX, counts, pairs, round, fmt:N, div:N, mul:N),
and `PATH//FALLBACK` gives the first alternative that exists and is not null, the last one taken
literally when it is not a path. Lists print joined by ",", null as --null (n/a).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import operator
import os
import platform
import re
import socket
import sys


class BenchStatError(ValueError):
    """A clear message for the caller: the script prints it and exits 1."""


# ------------------------------------------------------------------------------------------------
# Numbers


def number(text) -> float:
    """A value from the command line or stdin; anything not a finite-looking number is an error."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(str(text).strip())
    except ValueError:
        raise BenchStatError(f"not a number: {text!r}") from None


def plain(v: float) -> str:
    """awk's `print` of a number: an integral value as an integer, else 6 significant digits (%.6g)."""
    if math.isfinite(v) and v == int(v) and abs(v) < 1e16:
        return str(int(v))
    return "%.6g" % v


def fixed(v: float, digits: int) -> str:
    """printf "%.Nf"; a negative zero (-0.00) prints as 0.00."""
    out = "%.*f" % (digits, v)
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def show(v: float, digits: int | None) -> str:
    return plain(v) if digits is None else fixed(v, digits)


def values_of(args: list[str], stdin=None) -> list[tuple[float, str]]:
    """The values given, else those on stdin (blank-separated, blank lines ignored), each with its
    text: a statistic that picks one of them prints it as it came (as `sort -g | tail -1` did). None
    at all is an error."""
    raw = args if args else (stdin or sys.stdin).read().split()
    vals = [(number(v), str(v).strip()) for v in raw]
    if not vals:
        raise BenchStatError("no values (give them as arguments or one per line on stdin)")
    return vals


# ------------------------------------------------------------------------------------------------
# Statistics. Each takes (value, text) pairs and returns (value, text): the text of the value picked,
# or awk's `print` of a computed one.


def _pairs(vals) -> list[tuple[float, str]]:
    return [v if isinstance(v, tuple) else (float(v), plain(float(v))) for v in vals]


def median(vals) -> tuple[float, str]:
    """The middle value; the mean of the two middle ones for an even count."""
    s = sorted(_pairs(vals), key=lambda v: v[0])
    if not s:
        raise BenchStatError("median of no values")
    n = len(s)
    if n % 2:
        return s[n // 2]
    m = (s[n // 2 - 1][0] + s[n // 2][0]) / 2
    return m, plain(m)


def maximum(vals) -> tuple[float, str]:
    s = _pairs(vals)
    if not s:
        raise BenchStatError("maximum of no values")
    return max(s, key=lambda v: v[0])


def ratio(a: float, b: float) -> float:
    if b == 0:
        raise BenchStatError(f"ratio {plain(a)} / 0")
    return a / b


def met(value: str, target: float, at_least: bool = False, words: tuple[str, str] = ("met", "NOT met")) -> str:
    """words[0] when value ≤ target (≥ with at_least), else words[1]. A value that is not a finite
    number (empty, n/a, None: nothing was measured) is not met: a verdict can always say no."""
    value = value.strip()
    try:
        v = float(value)
    except ValueError:
        return words[1]
    if not math.isfinite(v):
        return words[1]
    ok = v >= target if at_least else v <= target
    return words[0] if ok else words[1]


# ------------------------------------------------------------------------------------------------
# Arithmetic: a small, safe evaluator (no names but the given ones, no calls but min/max).

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCS = {"min": min, "max": max}


def calc(expr: str, names: dict[str, float]) -> float:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise BenchStatError(f"not an expression: {expr!r}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise BenchStatError(f"{expr!r}: no value given for {node.id} (NAME=VALUE)")
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Div) and b == 0:
                raise BenchStatError(f"{expr!r}: division by zero")
            return _BINARY[type(node.op)](a, b)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and node.args and not node.keywords:
            return _FUNCS[node.func.id](ev(a) for a in node.args)
        raise BenchStatError(f"{expr!r}: only numbers, names, + - * / ( ), min and max")

    return ev(tree)


# ------------------------------------------------------------------------------------------------
# JSON

_MISSING = object()
_STEP = re.compile(r"^([^\[\]]*)(\[(?::(\d+))?\])?$")


def _walk(value, steps: list[str]):
    """Follow `a.b[].c` steps; a missing key (or a step through null) is _MISSING."""
    if not steps:
        return value
    m = _STEP.match(steps[0])
    if not m:
        raise BenchStatError(f"bad path step {steps[0]!r}")
    key, mapped, first = m.group(1), m.group(2), m.group(3)
    if key:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    if mapped:
        if not isinstance(value, list):
            return _MISSING
        items = value[: int(first)] if first else value
        out = []
        for item in items:
            v = _walk(item, steps[1:])
            if v is _MISSING:
                return _MISSING
            out.append(v)
        return out
    return _walk(value, steps[1:])


def _filter(value, spec: str, null: str):
    name, _, arg = spec.partition(":")
    if name == "sum":
        return sum(value)
    if name == "uniq":
        return sorted(set(value))
    if name == "join":
        return arg.join(render(v, null) for v in value)
    if name == "split":  # split:SEP:INDEX, on each element of a list (or the value)
        sep, _, index = arg.rpartition(":")
        pick = lambda s: str(s).split(sep)[int(index)]  # noqa: E731
        return [pick(v) for v in value] if isinstance(value, list) else pick(value)
    if name == "counts":  # {"200": 5} → "5x200", in the object's order
        return ",".join(f"{v}x{k}" for k, v in value.items())
    if name == "pairs":  # {"HIT": 3, "MISS": 1} → "HIT:3,MISS:1", sorted by key; an empty one → "-"
        return ",".join(f"{k}:{v}" for k, v in sorted(value.items())) or "-"
    if name == "round":
        return None if value is None else round(value)
    if name == "fmt":
        return None if value is None else fixed(number(value), int(arg or 0))
    if name == "div":
        return None if value is None else number(value) / number(arg)
    if name == "mul":
        return None if value is None else number(value) * number(arg)
    raise BenchStatError(f"unknown filter {name!r}")


def resolve(doc, expr: str, null: str = "n/a"):
    """One PATH[|FILTER...][//FALLBACK...] against a parsed document (see the module's help)."""
    alternatives = expr.split("//")
    for i, alt in enumerate(alternatives):
        path, *filters = alt.split("|")
        v = _walk(doc, path.split(".")) if path else doc
        last = i == len(alternatives) - 1
        if v is _MISSING and last and len(alternatives) > 1:
            return alt  # the last fallback, not a path of the document: taken literally
        if v is _MISSING and last:
            raise BenchStatError(f"no {expr!r} in the JSON")
        if (v is _MISSING or v is None) and not last:
            continue
        for f in filters:
            v = _filter(v, f, null)
        return v
    raise AssertionError("unreachable")


def render(v, null: str = "n/a") -> str:
    """A value as Python's print shows it (so the tables keep their figures), lists joined by ","."""
    if v is None:
        return null
    if isinstance(v, list):
        return ",".join(render(x, null) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict,)):
        return json.dumps(v)
    return str(v)


def load_json(source: str, stdin=None):
    try:
        if source == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        raise BenchStatError(f"cannot read {source}: {e.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        where = "stdin" if source == "-" else source
        raise BenchStatError(f"{where} is not JSON ({e}): {text[:200]!r}") from None


# ------------------------------------------------------------------------------------------------
# Other tools' output

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prom_sum(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The sum of the samples of `name` whose labels include `labels`; None when none matches."""
    total, found = 0.0, False
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += number(m.group(3))
            found = True
    return total if found else None


def _wrk_ms(v: str) -> float:
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * scale
    return float(v)


def wrk_summary(text: str) -> str:
    """`wrk --latency` output → "requests/s p99_ms errors" (socket errors plus non-2xx/3xx answers).
    Output without its rate or its 99 % line (wrk could not connect, or ran without --latency) is an
    error, never a 0 ms p99 that would pass a target."""
    rps, p99, errors = None, None, 0
    for line in text.splitlines():
        if re.match(r"^ +99%", line):
            p99 = _wrk_ms(line.split()[1])
        elif line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        elif "Socket errors:" in line:
            errors += sum(int(n) for n in re.findall(r"\b(?:connect|read|write|timeout) (\d+)", line))
        elif "Non-2xx or 3xx responses:" in line:
            errors += int(line.split()[-1])
    if rps is None:
        raise BenchStatError("no 'Requests/sec:' line in the wrk output (did it connect?)")
    if p99 is None:
        raise BenchStatError("no 99% latency line in the wrk output (was --latency given?)")
    return f"{fixed(rps, 0)} {fixed(p99, 2)} {errors}"


def _proc(pid: str, name: str) -> str:
    try:
        with open(f"/proc/{int(pid)}/{name}") as f:
            return f.read()
    except (OSError, ValueError):
        raise BenchStatError(f"no process {pid} (/proc/{pid}/{name})") from None


def rss_mb(pid: str) -> float:
    m = re.search(r"^VmHWM:\s+(\d+) kB", _proc(pid, "status"), re.M)
    if not m:
        raise BenchStatError(f"no VmHWM in /proc/{pid}/status")
    return int(m.group(1)) / 1024


def cpu_seconds(pid: str) -> float:
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    fields = _proc(pid, "stat").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compaction_summary(lines) -> str:
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and d.get("message") == "compaction pass finished":
            return f'{d["hours_compacted"]} {d["days_merged"]} {d["events"]} {d.get("errors", 0)}'
    raise BenchStatError('no "compaction pass finished" line')


def same_lines(path1: str, path2: str) -> int:
    try:
        with open(path1) as f1, open(path2) as f2:
            return sum(1 for x, y in zip(f1, f2) if x.rstrip("\n") == y.rstrip("\n"))
    except OSError as e:
        raise BenchStatError(f"cannot read {e.filename}: {e.strerror}") from None


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(": ", 1)[1].strip() for line in f if line.startswith("model name")), "")
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
        mem = f"{fixed(kib / 1048576, 0)} GiB"
    except (OSError, StopIteration):
        mem = "? GiB"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({cpu}), {mem}, {platform.system()} {platform.release()}"


# ------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None, stdin=None, out=None) -> int:
    out = out or sys.stdout
    ap = argparse.ArgumentParser(prog="benchstat.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def digits_arg(p, default=None):
        p.add_argument("--digits", type=int, default=default, help="decimals (printf %%.Nf)")

    for name in ("median", "max"):
        digits_arg(sub.add_parser(name))
        sub.choices[name].add_argument("values", nargs="*")
    p = sub.add_parser("ratio")
    digits_arg(p, 2)
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("calc")
    digits_arg(p)
    p.add_argument("expr")
    p.add_argument("names", nargs="*", metavar="NAME=VALUE")
    p = sub.add_parser("met")
    p.add_argument("value")
    p.add_argument("target", type=float)
    p.add_argument("--at-least", action="store_true", help="met when value ≥ target")
    p.add_argument("--words", default="met,NOT met", help='the two answers, "met,NOT met" by default')
    p = sub.add_parser("fmt")
    p.add_argument("digits", type=int)
    p.add_argument("values", nargs="+")
    p = sub.add_parser("json")
    p.add_argument("source", help="a file, or - for stdin")
    p.add_argument("paths", nargs="+")
    p.add_argument("--sep", default=" ", help="between the paths' values (a blank by default)")
    p.add_argument("--null", default="n/a", help="what a null prints as (n/a by default)")
    p.add_argument("--each", metavar="LIST", help="the paths of each element of this list, one line each")
    p = sub.add_parser("same-lines")
    p.add_argument("file1")
    p.add_argument("file2")
    p = sub.add_parser("prom")
    p.add_argument("name")
    p.add_argument("labels", nargs="*", metavar="LABEL=VALUE")
    p.add_argument("--default", default="", help="printed when no sample matches (nothing by default)")
    sub.add_parser("wrk")
    p = sub.add_parser("rss-mb")
    digits_arg(p)
    p.add_argument("pid")
    p = sub.add_parser("cpu-seconds")
    p.add_argument("pid")
    p = sub.add_parser("compaction")
    p.add_argument("log")
    sub.add_parser("machine")
    sub.add_parser("free-port")

    a = ap.parse_args(argv)
    stdin = stdin or sys.stdin
    try:
        if a.cmd in ("median", "max"):
            v, text = {"median": median, "max": maximum}[a.cmd](values_of(a.values, stdin))
            res = text if a.digits is None else fixed(v, a.digits)
        elif a.cmd == "ratio":
            res = fixed(ratio(number(a.a), number(a.b)), a.digits)
        elif a.cmd == "calc":
            names = {}
            for nv in a.names:
                n, eq, v = nv.partition("=")
                if not eq:
                    raise BenchStatError(f"{nv!r} is not NAME=VALUE")
                names[n] = number(v)
            res = show(calc(a.expr, names), a.digits)
        elif a.cmd == "met":
            words = a.words.split(",", 1)
            if len(words) != 2:
                raise BenchStatError(f'--words takes two answers separated by a comma (got {a.words!r})')
            res = met(a.value, a.target, a.at_least, (words[0], words[1]))
        elif a.cmd == "fmt":
            res = " ".join(fixed(number(v), a.digits) for v in a.values)
        elif a.cmd == "json":
            doc = load_json(a.source, stdin)
            docs = [doc]
            if a.each is not None:
                docs = resolve(doc, a.each, a.null)
                if not isinstance(docs, list):
                    raise BenchStatError(f"{a.each!r} is not a list")
            res = "\n".join(a.sep.join(render(resolve(d, p, a.null), a.null) for p in a.paths) for d in docs)
        elif a.cmd == "prom":
            labels = dict(lv.split("=", 1) for lv in a.labels)
            v = prom_sum(stdin.read(), a.name, labels)
            res = a.default if v is None else plain(v)
        elif a.cmd == "wrk":
            res = wrk_summary(stdin.read())
        elif a.cmd == "rss-mb":
            res = show(rss_mb(a.pid), a.digits)
        elif a.cmd == "cpu-seconds":
            res = plain(cpu_seconds(a.pid))
        elif a.cmd == "compaction":
            try:
                with open(a.log, encoding="utf-8", errors="replace") as f:
                    res = compaction_summary(f)
            except OSError as e:
                raise BenchStatError(f"cannot read {a.log}: {e.strerror}") from None
            except BenchStatError as e:
                raise BenchStatError(f"{e} in {a.log}") from None
        elif a.cmd == "same-lines":
            res = str(same_lines(a.file1, a.file2))
        elif a.cmd == "free-port":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                res = str(sock.getsockname()[1])
        else:  # machine
            res = machine()
    except BenchStatError as e:
        print(f"benchstat.py {a.cmd}: {e}", file=sys.stderr)
        return 1
    if a.cmd != "json" or a.each is None or res:  # an empty list: no line at all
        print(res, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
