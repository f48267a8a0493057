"""Container health check of the web service: GET /healthz on the local gunicorn, exit 0 when it answers 200.

Django checks the Host header against ALLOWED_HOSTS, so the request names the first allowed host rather than
127.0.0.1; X-Forwarded-Proto keeps SECURE_SSL_REDIRECT (behind a TLS proxy) from answering with a redirect.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
    if not host or host == "*":
        host = "localhost"
    request = urllib.request.Request(
        "http://127.0.0.1:8000/healthz", headers={"Host": host, "X-Forwarded-Proto": "https"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (fixed local URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthz failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
