import sys
import unittest

import greenlet

from app import add, app


class AppTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(app.test_client().get("/health").json, {"status": "ok"})

    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_greenlet_switches(self):
        self.assertEqual(greenlet.greenlet(lambda: add(1, 1)).switch(), 2)

    @unittest.skipIf(sys.version_info >= (3, 0), "shows that skips are counted")
    def test_skipped(self):
        self.fail("never runs")
