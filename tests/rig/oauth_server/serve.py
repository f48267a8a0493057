"""Entry point: ``python -m tests.rig.oauth_server.serve`` (started by ``tests.rig.oauth``).

Binds 127.0.0.1:0 first, so the kernel picks the port and nothing can take it between choosing and binding,
then creates the database (tables from the models, see settings) with the bootstrap users and applications,
then writes the port to ``RIG_OAUTH_READY_FILE``: the parent waits for that file, not for the port, because
the socket listens before the app is ready.
"""

import os
import sys
from pathlib import Path


def _ensure_signing_key(path: Path) -> None:
    if path.exists():
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _prepare_database() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    from tests.rig.oauth_server.bootstrap import bootstrap

    bootstrap()


def main() -> None:
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    port = server.server_address[1]
    os.environ["RIG_OAUTH_ISSUER"] = f"http://127.0.0.1:{port}/o"
    key_path = Path(os.environ["RIG_OAUTH_KEY_PATH"])
    _ensure_signing_key(key_path)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.rig.oauth_server.settings")
    _prepare_database()

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application

    server.set_app(StaticFilesHandler(get_wsgi_application()))
    ready = Path(os.environ["RIG_OAUTH_READY_FILE"])
    ready.with_suffix(".tmp").write_text(str(port))
    ready.with_suffix(".tmp").replace(ready)
    print(f"oauth server ready on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
