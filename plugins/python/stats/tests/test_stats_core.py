"""Unit tests of stats_core on the build machine's Python (no WebAssembly):

    python3 -m unittest discover -s plugins/python/stats/tests
"""

import os
import random
import statistics
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import stats_core  # noqa: E402
from stats_core import InputError  # noqa: E402


class Percentiles(unittest.TestCase):
    def test_matches_statistics_quantiles_inclusive(self):
        rng = random.Random(7)
        for n in (2, 3, 10, 101, 1000):
            data = sorted(rng.uniform(-50, 50) for _ in range(n))
            expected = statistics.quantiles(data, n=100, method="inclusive")
            for p in range(1, 100):
                self.assertAlmostEqual(stats_core.percentile(data, p), expected[p - 1], places=9)

    def test_ends_and_single_value(self):
        self.assertEqual(stats_core.percentile([1, 2, 3], 0), 1)
        self.assertEqual(stats_core.percentile([1, 2, 3], 100), 3)
        self.assertEqual(stats_core.percentile([5], 37.5), 5)
        self.assertAlmostEqual(stats_core.percentile([0, 10], 99.9), 9.99)

    def test_key(self):
        self.assertEqual(stats_core.percentile_key(50), "p50")
        self.assertEqual(stats_core.percentile_key(99.9), "p99.9")
        self.assertEqual(stats_core.percentile_key(50.0), "p50")


class Summary(unittest.TestCase):
    def test_textbook_example(self):
        s = stats_core.summarize([2, 4, 4, 4, 5, 5, 7, 9], [50])
        self.assertEqual(s["count"], 8)
        self.assertEqual(s["sum"], 40)
        self.assertEqual(s["mean"], 5)
        self.assertEqual(s["median"], 4.5)
        self.assertEqual(s["mode"], [4])
        self.assertEqual(s["mode_frequency"], 3)
        self.assertEqual(s["pstdev"], 2)
        self.assertAlmostEqual(s["variance"], 32 / 7)
        self.assertEqual(s["percentiles"], {"p50": 4.5})
        self.assertEqual((s["min"], s["max"], s["range"]), (2, 9, 7))

    def test_agrees_with_statistics_module(self):
        rng = random.Random(3)
        data = [rng.gauss(10, 3) for _ in range(500)]
        s = stats_core.summarize(data)
        self.assertAlmostEqual(s["stdev"], statistics.stdev(data), places=12)
        self.assertAlmostEqual(s["pstdev"], statistics.pstdev(data), places=12)
        self.assertAlmostEqual(s["variance"], statistics.variance(data), places=12)
        self.assertAlmostEqual(s["mean"], statistics.mean(data), places=12)
        self.assertEqual(s["median"], statistics.median(data))

    def test_one_number_has_no_sample_statistics(self):
        s = stats_core.summarize([3.5])
        self.assertIsNone(s["variance"])
        self.assertIsNone(s["stdev"])
        self.assertEqual(s["pvariance"], 0)

    def test_no_repeats_means_no_mode(self):
        s = stats_core.summarize([1, 2, 3])
        self.assertEqual(s["mode"], [])
        self.assertEqual(s["mode_frequency"], 1)

    def test_many_tied_modes_are_capped(self):
        s = stats_core.summarize(list(range(50)) * 2)
        self.assertEqual(len(s["mode"]), stats_core.MAX_MODES)
        self.assertEqual(s["modes_total"], 50)

    def test_overflow_is_a_compute_error(self):
        for data in ([1e308, 1e308], [-1.7e308, 1.7e308], [1e154, 3e154]):
            with self.assertRaises(stats_core.ComputeError, msg=repr(data)):
                stats_core.summarize(data, [50])

    def test_steps_are_reported(self):
        seen = []
        stats_core.summarize([1, 2], [], seen.append)
        self.assertEqual(seen, ["sorted", "mean and median", "mode", "variance", "percentiles"])


class Checks(unittest.TestCase):
    def test_refuses_non_numbers(self):
        for bad in ([], [True], [1, "2"], [None], [float("nan")], [float("inf")], [10**400], "1,2"):
            with self.assertRaises(InputError, msg=repr(bad)):
                stats_core.check_numbers(bad)

    def test_names_the_item(self):
        with self.assertRaisesRegex(InputError, r"numbers\[2\]"):
            stats_core.check_numbers([1, 2, "x"])

    def test_too_many(self):
        with self.assertRaisesRegex(InputError, "at most"):
            stats_core.check_numbers([0] * (stats_core.MAX_NUMBERS + 1))

    def test_percentiles(self):
        stats_core.check_percentiles([0, 50, 100, 99.9])
        for bad in ([-1], [101], ["50"], [True], 50):
            with self.assertRaises(InputError, msg=repr(bad)):
                stats_core.check_percentiles(bad)


class Rounding(unittest.TestCase):
    def test_rounds_floats_only(self):
        self.assertEqual(stats_core.rounded({"a": 1.23456, "b": [2, -0.0000001], "c": None}, 3),
                         {"a": 1.235, "b": [2, 0.0], "c": None})

    def test_text(self):
        text = stats_core.render_text(stats_core.rounded(stats_core.summarize([1, 1, 2.5]), 6), "3 numbers")
        self.assertIn("mean: 1.5", text)
        self.assertIn("mode: 1 (each 2 times)", text)
        self.assertIn("min: 1", text)


if __name__ == "__main__":
    unittest.main()
