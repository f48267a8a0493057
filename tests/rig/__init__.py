"""Test rig: real servers (Dovecot, Postfix, aiosmtpd, SeaweedFS, dnsmasq, an OAuth2/OIDC server, Chromium,
PostgreSQL, Redis) started lazily on free loopback ports for the test session.

Wiring:

* ``tests.rig.database`` is an *early* plugin (``-p tests.rig.database`` in ``addopts``): it resolves
  ``DATABASE_URL`` and ``REDIS_URL`` before pytest-django imports the Django settings.
* ``tests.rig.plugin`` holds the fixtures (``pytest_plugins = ["tests.rig.plugin"]`` in the root conftest).

Keep this module free of imports: the OAuth server subprocess imports ``tests.rig.oauth_server`` and must not
pay for (or depend on) pytest.
"""
