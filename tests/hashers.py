"""Argon2 with a small cost for the test suite: the same algorithm and format as production
(a test checks the production hasher), without 100 MB and tens of milliseconds per hash."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1
