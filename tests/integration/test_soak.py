"""The soak benchmark, short (issue 20): bench/soak.sh runs 30 s of
full-rate churn with 200 idle connections held; the audit log keeps up
(no `audit unavailable` refusal, nothing lost, the chain intact), the
WAL stays bounded, and the script writes its plot and samples. The long
runs (30 minutes, a 50-million-record log) are for bench/, by hand."""
import os
import re
import subprocess
import tempfile
import unittest

from gwtest import GATEWAYD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class SoakTest(unittest.TestCase):
    def test_short_soak(self):
        out = tempfile.mkdtemp(prefix="socksgw-soak-test-")
        build = os.path.dirname(os.path.dirname(os.path.abspath(GATEWAYD)))
        r = subprocess.run(["sh", os.path.join(ROOT, "bench", "soak.sh"),
                            "-d", "30", "-i", "200", "-o", out, build],
                           capture_output=True, text=True, timeout=240,
                           cwd=ROOT)
        print("\n" + r.stdout[-3000:] + r.stderr[-2000:])
        self.assertEqual(r.returncode, 0)
        m = re.search(r"soak: .* median (\d+) conn/s, (\d+) audit refusals, "
                      r"(\d+) limit refusals, queue max (\d+), WAL max "
                      r"([\d.]+) MB", r.stdout)
        self.assertIsNotNone(m, "no summary line")
        rate, refused, limited, queue, wal = m.groups()
        self.assertGreater(int(rate), 0)
        self.assertEqual(int(refused), 0)
        self.assertEqual(int(limited), 0)
        self.assertLess(float(wal), 128.0)
        self.assertIn('"intact": true', r.stdout)
        self.assertNotIn("records were lost", r.stdout)
        self.assertIn("idle established=200 errors=0", r.stdout)
        for f in ("soak.svg", "soak.tsv"):
            self.assertGreater(os.path.getsize(os.path.join(out, f)), 0)
        with open(os.path.join(out, "soak.svg")) as f:
            self.assertTrue(f.read().startswith("<svg"))
        subprocess.run(["rm", "-rf", out])


if __name__ == "__main__":
    unittest.main(verbosity=2)
