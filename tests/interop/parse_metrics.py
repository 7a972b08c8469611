"""Owns the metrics check's parsing: a Prometheus text exposition on stdin, parsed by the `prometheus_client` package's own parser, printed as JSON samples.

Prints one JSON list of {"name", "labels", "value"}, one per sample, so
tests/it/serve.rs can assert on the numbers; a document the parser refuses
makes this exit non-zero with its error.
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
