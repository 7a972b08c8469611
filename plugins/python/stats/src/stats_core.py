"""The statistics behind py-stats, with no WebAssembly in sight.

Everything here is plain Python (the `statistics` and `math` modules only), so
it runs and is unit-tested on the build machine too:

    python3 -m unittest discover -s plugins/python/stats/tests

`app.py` wires it to the plugin contract (arguments, host imports, errors).
"""

import math
import statistics

# The biggest list one call accepts (the input schema says the same). 100,000
# numbers take 0.5-1 s (most of it in statistics.variance, which sums
# exactly with fractions) and under 24 MiB of linear memory; their JSON
# (about 800 KB) is also well under the host's 4 MiB MCP request cap.
MAX_NUMBERS = 100_000
# At most this many modes are listed; a list where many values tie would
# otherwise echo most of its input back.
MAX_MODES = 10


class InputError(ValueError):
    """Arguments the model can fix; app.py turns it into `invalid-arguments`."""


class ComputeError(ArithmeticError):
    """Valid numbers whose statistics do not fit in a float (app.py: `failed`)."""


def check_numbers(values, field="numbers"):
    """Return `values` as a list of int/float after checking every item.

    JSON numbers arrive as int or float; `True`/`False` are ints in Python but
    not numbers in JSON, so they are refused like strings. Integers too large
    for a float (1e400 written out) are refused because mean and stdev are
    computed in floating point.
    """
    if not isinstance(values, list):
        raise InputError(f"`{field}` must be an array of numbers")
    if not values:
        raise InputError(f"`{field}` is empty: give at least one number")
    if len(values) > MAX_NUMBERS:
        raise InputError(f"`{field}` has {len(values)} items; at most {MAX_NUMBERS} are accepted")
    for i, x in enumerate(values):
        if type(x) is int:
            try:
                float(x)
            except OverflowError:
                raise InputError(f"`{field}[{i}]` is too large for a float") from None
        elif type(x) is float:
            if not math.isfinite(x):
                raise InputError(f"`{field}[{i}]` is not a finite number")
        else:
            raise InputError(f"`{field}[{i}]` is {type(x).__name__} {x!r}, not a number")
    return values


def check_percentiles(ps):
    """Percentiles are numbers from 0 to 100 (50 is the median)."""
    if not isinstance(ps, list):
        raise InputError("`percentiles` must be an array of numbers from 0 to 100")
    for i, p in enumerate(ps):
        if type(p) not in (int, float) or not 0 <= p <= 100:
            raise InputError(f"`percentiles[{i}]` is {p!r}; percentiles are numbers from 0 to 100")
    return ps


def percentile(sorted_data, p):
    """The p-th percentile (0-100) of sorted data, by linear interpolation.

    This is the "inclusive" method: the same as
    `statistics.quantiles(data, n=100, method="inclusive")` at whole
    percentiles, numpy's default and a spreadsheet's PERCENTILE.INC, but it
    also takes fractional percentiles such as 99.9.
    """
    n = len(sorted_data)
    if n == 1:
        return sorted_data[0]
    pos = (n - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    a, b = sorted_data[lo], sorted_data[hi]
    if frac == 0 or a == b:
        return a
    return a + (b - a) * frac


def percentile_key(p):
    """`50` -> "p50", `99.9` -> "p99.9": a stable name for a requested percentile."""
    return "p" + format(p, "g")


def summarize(numbers, percentiles=(), on_step=None):
    """Compute the summary of a non-empty list of checked numbers.

    Returns a dict of plain JSON values (None where a statistic is undefined,
    e.g. the sample variance of one number). `on_step(name)` is called after
    each stage so long lists can report progress. Raises ComputeError when a
    result overflows (numbers near 1e308, or squares past it for variance).
    """
    try:
        result = _summarize(numbers, percentiles, on_step or (lambda name: None))
    except OverflowError as e:
        raise ComputeError(f"the numbers are too large for floating-point statistics ({e}); scale them down") from None
    for key, value in result.items():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ComputeError(f"`{key}` overflows a float; scale the numbers down")
    return result


def _summarize(numbers, percentiles, step):
    n = len(numbers)
    data = sorted(numbers)
    step("sorted")

    mean = statistics.fmean(data)
    result = {
        "count": n,
        "sum": math.fsum(data) if any(type(x) is float for x in data) else sum(data),
        "min": data[0],
        "max": data[-1],
        "range": data[-1] - data[0],
        "mean": mean,
        "median": statistics.median(data),
    }
    step("mean and median")

    # multimode lists every value that occurs most often. When no value
    # repeats that is every value, which says nothing: report no mode.
    modes = statistics.multimode(data)
    frequency = data.count(modes[0])
    if frequency == 1:
        modes = []
    result["mode"] = modes[:MAX_MODES]
    result["mode_frequency"] = frequency
    result["modes_total"] = len(modes)
    step("mode")

    # Sample statistics need two values; population ones are defined for one.
    # statistics.variance sums exactly (with fractions): correctly rounded but
    # the slowest step here. The standard deviations are their square roots
    # (within one ulp of statistics.stdev, at half the cost).
    variance = statistics.variance(data) if n >= 2 else None
    pvariance = statistics.pvariance(data)
    result["variance"] = variance
    result["stdev"] = math.sqrt(variance) if variance is not None else None
    result["pvariance"] = pvariance
    result["pstdev"] = math.sqrt(pvariance)
    step("variance")

    result["percentiles"] = {percentile_key(p): percentile(data, p) for p in percentiles}
    step("percentiles")
    return result


def rounded(value, precision):
    """Round every float in a JSON-like value to `precision` decimal places.

    Integers stay integers; -0.0 after rounding becomes 0.0.
    """
    if isinstance(value, float):
        r = round(value, precision)
        return 0.0 if r == 0 else r
    if isinstance(value, dict):
        return {k: rounded(v, precision) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, precision) for v in value]
    return value


def render_text(summary, source):
    """A short plain-text report for the model, one statistic per line."""

    def fmt(v):
        if v is None:
            return "n/a (needs at least 2 numbers)"
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            return str(int(v))  # 3.0 reads better as 3
        return str(v)

    lines = [f"statistics of {source}:"]
    for key in ("count", "sum", "min", "max", "range", "mean", "median"):
        lines.append(f"  {key}: {fmt(summary[key])}")
    if summary["mode"]:
        more = summary["modes_total"] - len(summary["mode"])
        modes = ", ".join(fmt(m) for m in summary["mode"]) + (f" (and {more} more)" if more else "")
        lines.append(f"  mode: {modes} (each {summary['mode_frequency']} times)")
    else:
        lines.append("  mode: none (no value repeats)")
    for key, label in (("stdev", "stdev (sample)"), ("variance", "variance (sample)"),
                       ("pstdev", "stdev (population)"), ("pvariance", "variance (population)")):
        lines.append(f"  {label}: {fmt(summary[key])}")
    for key, v in summary["percentiles"].items():
        lines.append(f"  {key}: {fmt(v)}")
    return "\n".join(lines)
