"""py-stats: descriptive statistics as agent-host tools, written in Python.

Built with componentize-py (see build.sh): the module `wit_world` is generated
from wit/v0.1/plugin.wit at build time, and this module's class `Tool`
implements its `tool` export. The statistics themselves are in stats_core.py.

Tools:
  py_stats           count, sum, min, max, range, mean, median, mode, sample and
                     population stdev/variance, requested percentiles; of a list
                     given inline or of a dataset saved earlier (`save_as`)
  py_stats_datasets  list the saved datasets
  py_stats_forget    delete a saved dataset

Host imports used: config() (the manifest's [config] table: default
`precision`, `progress_threshold`), log(), progress() (long lists),
kv_get/kv_set/kv_list/kv_delete (saved datasets), monotonic_now().

Beware: this module is imported once at *build* time (componentize-py
snapshots the initialised interpreter), where every host import is a trapping
stub. Never call host.* at module level; do it inside the methods.
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    CallContext,
    ContentPart_Json,
    ContentPart_Text,
    LogLevel,
    ToolError_Failed,
    ToolError_InvalidArguments,
    ToolHints,
    ToolOutput,
    ToolSpec,
)

import stats_core
from stats_core import ComputeError, InputError

DATASET_PREFIX = "dataset/"  # kv key of a dataset's numbers (compact JSON array)
META_PREFIX = "meta/"  # kv key of its summary for py_stats_datasets: {"count": n}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KV_VALUE_MAX = 1024 * 1024  # the host's per-value limit (docs/plugin-guide.md)

DATASET_NAME_SCHEMA = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_.-]{1,64}$",
    "description": "1-64 characters of A-Z a-z 0-9 _ . -",
}

STATS_INPUT = {
    "type": "object",
    "properties": {
        "numbers": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 1,
            "maxItems": stats_core.MAX_NUMBERS,
            "description": "The data. Give this or `dataset`, not both.",
        },
        "dataset": dict(DATASET_NAME_SCHEMA, description="Use a dataset saved earlier with `save_as` instead of `numbers`."),
        "save_as": dict(DATASET_NAME_SCHEMA, description="Also save `numbers` under this name (replacing a dataset of that name) for later calls."),
        "percentiles": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 100},
            "maxItems": 100,
            "description": "Percentiles to compute, 0-100 (e.g. [25, 50, 75, 99.9]); linear interpolation.",
        },
        "precision": {
            "type": "integer",
            "minimum": 0,
            "maximum": 15,
            "description": "Decimal places in the results (default from the plugin config, normally 6).",
        },
    },
    "additionalProperties": False,
}

NUMBER_OR_NULL = {"type": ["number", "null"]}
STATS_OUTPUT = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "sum": {"type": "number"},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "range": {"type": "number"},
        "mean": {"type": "number"},
        "median": {"type": "number"},
        "mode": {"type": "array", "items": {"type": "number"}},
        "mode_frequency": {"type": "integer"},
        "modes_total": {"type": "integer"},
        "variance": NUMBER_OR_NULL,
        "stdev": NUMBER_OR_NULL,
        "pvariance": {"type": "number"},
        "pstdev": {"type": "number"},
        "percentiles": {"type": "object", "additionalProperties": {"type": "number"}},
        "dataset": {"type": ["string", "null"]},
        "saved_as": {"type": ["string", "null"]},
    },
    "required": ["count", "mean", "median", "min", "max", "percentiles"],
}


def invalid(message):
    """A tool error the model can fix by changing its arguments."""
    return Err(ToolError_InvalidArguments(message))


def failed(message):
    """A tool error for a job that could not be done (not a crash)."""
    return Err(ToolError_Failed(message))


def plugin_config():
    """The manifest's [config] table (or the host owner's override), checked.

    A bad config is the host owner's mistake, not the model's: report it as
    `failed` with the field at fault.
    """
    cfg = json.loads(host.config())
    precision = cfg.get("precision", 6)
    if type(precision) is not int or not 0 <= precision <= 15:
        raise failed(f"plugin config: `precision` must be an integer from 0 to 15, not {precision!r}")
    threshold = cfg.get("progress_threshold", 10_000)
    if type(threshold) is not int or threshold < 1:
        raise failed(f"plugin config: `progress_threshold` must be a positive integer, not {threshold!r}")
    return precision, threshold


def kv_json(key):
    """Read a JSON value from the plugin's key-value state (None when absent)."""
    raw = host.kv_get(key)
    return None if raw is None else json.loads(raw)


def kv_put(key, value, what):
    """Store a JSON value; the host's refusal (size, quota) becomes `failed`."""
    data = json.dumps(value, separators=(",", ":")).encode()
    if len(data) > KV_VALUE_MAX:
        raise failed(f"{what} is {len(data)} bytes as JSON; the host stores at most {KV_VALUE_MAX} per value. Save fewer numbers.")
    try:
        host.kv_set(key, data)
    except Err as e:  # result<_, string>: e.value is the host's message
        raise failed(f"could not save {what}: {e.value}")


class Tool(exports.Tool):
    """The `tool` export. componentize-py instantiates it once per instance."""

    def describe(self):
        return [
            ToolSpec(
                name="py_stats",
                title="Descriptive statistics",
                description=(
                    "Compute descriptive statistics of a list of numbers: count, sum, min, max, range, "
                    "mean, median, mode, sample and population standard deviation and variance, and any "
                    "percentiles you ask for. Pass the numbers in `numbers`, or the name of a dataset "
                    "saved earlier in `dataset`; add `save_as` to keep `numbers` for later calls. "
                    "Use it instead of computing statistics in your head."
                ),
                input_schema=json.dumps(STATS_INPUT),
                output_schema=json.dumps(STATS_OUTPUT),
                # Flags are an enum.Flag: combine with |; ToolHints(0) is "none".
                # Not read-only: `save_as` writes state.
                hints=ToolHints.IDEMPOTENT | ToolHints.PARALLEL_SAFE,
            ),
            ToolSpec(
                name="py_stats_datasets",
                title="Saved datasets",
                description="List the datasets saved with py_stats `save_as`: name and count of numbers.",
                input_schema=json.dumps({"type": "object", "properties": {}, "additionalProperties": False}),
                output_schema=None,
                hints=ToolHints.READ_ONLY | ToolHints.IDEMPOTENT | ToolHints.PARALLEL_SAFE,
            ),
            ToolSpec(
                name="py_stats_forget",
                title="Delete a saved dataset",
                description="Delete a dataset saved with py_stats `save_as`.",
                input_schema=json.dumps({
                    "type": "object",
                    "properties": {"dataset": DATASET_NAME_SCHEMA},
                    "required": ["dataset"],
                    "additionalProperties": False,
                }),
                output_schema=None,
                hints=ToolHints.DESTRUCTIVE | ToolHints.IDEMPOTENT,
            ),
        ]

    def invoke(self, name: str, args_json: str, ctx: CallContext) -> ToolOutput:
        # Return the output; raise Err(ToolError_...) for a tool error. Any
        # other exception escaping from here is a crash: the traceback goes
        # to stderr (the host log) and the call fails as a trap.
        args = json.loads(args_json)
        if name == "py_stats":
            return self.stats(args, ctx)
        if name == "py_stats_datasets":
            return self.datasets()
        if name == "py_stats_forget":
            return self.forget(args["dataset"])
        raise invalid(f"unknown tool {name!r}")

    def stats(self, args, ctx):
        started = host.monotonic_now()
        precision, threshold = plugin_config()
        precision = args.get("precision", precision)
        if type(precision) is not int or not 0 <= precision <= 15:
            raise invalid("`precision` must be an integer from 0 to 15")

        # Cross-field rules the schema does not express; each one is an
        # `invalid-arguments` error naming the field, so the model can retry.
        numbers, dataset, save_as = args.get("numbers"), args.get("dataset"), args.get("save_as")
        if numbers is not None and dataset is not None:
            raise invalid("give either `numbers` or `dataset`, not both")
        if numbers is None and dataset is None:
            raise invalid("give `numbers` (an array of numbers) or `dataset` (the name of a saved dataset)")
        if save_as is not None and numbers is None:
            raise invalid("`save_as` saves `numbers`; it cannot be used with `dataset`")
        for field, value in (("dataset", dataset), ("save_as", save_as)):
            if value is not None and not (isinstance(value, str) and NAME_RE.match(value)):
                raise invalid(f"`{field}` must be 1-64 characters of A-Z a-z 0-9 _ . -")

        if dataset is not None:
            numbers = kv_json(DATASET_PREFIX + dataset)
            if numbers is None:
                saved = sorted(k[len(DATASET_PREFIX):] for k in host.kv_list(DATASET_PREFIX))
                raise invalid(f"no dataset named {dataset!r}; saved: {', '.join(saved) or 'none'}")

        # Long lists report progress: the checking pass, then one
        # step per stage of summarize().
        long = len(numbers) >= threshold if isinstance(numbers, list) else False
        stages = ["sorted", "mean and median", "mode", "variance", "percentiles"]
        total = len(stages) + 1
        if long:
            host.progress(0, total, f"checking {len(numbers)} numbers")
        try:
            numbers = stats_core.check_numbers(numbers)
            percentiles = stats_core.check_percentiles(args.get("percentiles", []))
        except InputError as e:
            raise invalid(str(e))
        if long:
            host.progress(1, total, "checked")

        def on_step(stage):
            if long:
                host.progress(2 + stages.index(stage), total, stage)

        try:
            summary = stats_core.summarize(numbers, percentiles, on_step)
        except ComputeError as e:
            raise failed(str(e))

        if save_as is not None:
            kv_put(DATASET_PREFIX + save_as, numbers, f"dataset {save_as!r}")
            kv_put(META_PREFIX + save_as, {"count": len(numbers)}, f"dataset {save_as!r}")

        summary = stats_core.rounded(summary, precision)
        summary["dataset"] = dataset
        summary["saved_as"] = save_as
        source = f"dataset {dataset!r}" if dataset else f"{len(numbers)} number{'s' if len(numbers) != 1 else ''}"
        text = stats_core.render_text(summary, source)
        if save_as:
            text += f"\nsaved as dataset {save_as!r}"

        elapsed_ms = (host.monotonic_now() - started) / 1e6
        host.log(LogLevel.INFO, f"py_stats: {len(numbers)} numbers in {elapsed_ms:.1f} ms (call {ctx.call_id}, budget {ctx.timeout_ms} ms)")
        return ToolOutput(content=[ContentPart_Text(text)], structured=json.dumps(summary, allow_nan=False))

    def datasets(self):
        names = sorted(k[len(DATASET_PREFIX):] for k in host.kv_list(DATASET_PREFIX))
        listing = []
        for n in names:
            meta = kv_json(META_PREFIX + n) or {}
            listing.append({"name": n, "count": meta.get("count")})
        if not listing:
            text = "no saved datasets (save one with py_stats `save_as`)"
        else:
            text = "\n".join(f"{d['name']}: {d['count']} numbers" for d in listing)
        return ToolOutput(content=[ContentPart_Text(text), ContentPart_Json(json.dumps({"datasets": listing}))], structured=None)

    def forget(self, dataset):
        existed = host.kv_delete(DATASET_PREFIX + dataset)
        host.kv_delete(META_PREFIX + dataset)
        host.log(LogLevel.INFO, f"py_stats_forget: {dataset!r} existed={existed}")
        # Idempotent: forgetting what is not there is not an error.
        text = f"deleted dataset {dataset!r}" if existed else f"no dataset named {dataset!r}; nothing to delete"
        return ToolOutput(content=[ContentPart_Text(text)], structured=None)
