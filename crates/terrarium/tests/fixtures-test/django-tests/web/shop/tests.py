from django.contrib.auth.models import User
from django.test import SimpleTestCase, TestCase


class HealthTest(SimpleTestCase):
    def test_health(self):
        self.assertEqual(self.client.get("/health/").json(), {"status": "ok"})


class UserTest(TestCase):
    # Needs the test database Django's runner creates.
    def test_a_user_is_stored(self):
        User.objects.create(username="ada")
        self.assertEqual(User.objects.count(), 1)
