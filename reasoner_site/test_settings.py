"""Settings for the test suite: the real settings, with test-only values for what production must supply."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-key-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")

from reasoner_site.settings import *  # noqa: E402,F403

# Fast hashing: tests create many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
