"""The blob store's hot path to S3: one SigV4-signed PUT of bytes whose SHA-256 we already know.

Every inbound message stores its raw bytes and each attachment (about 1.4 objects a message), so the cost of
one small PUT bounds ingestion, and uploads run in threads that share the worker's one interpreter lock with
everything else. boto3's `put_object` runs each request through its whole event pipeline (parameter
validation, some forty handlers, a fresh SHA-256 of the body for the signature) and costs about 2.3 ms of CPU
here; urllib3 with botocore's signer about 0.55 ms. This path signs with botocore's own `S3SigV4Auth`, hands
the signer the content hash the blob key already is, and sends the request on the standard library's
`http.client`, keeping idle keep-alive connections for the next upload: about 0.3 ms. A connection the server
closed while it sat idle is replaced at once; connection errors, 429 and 5xx answers are tried three times
with backoff, as boto3's standard retry mode does.

It serves only the plain case: an explicit endpoint with path-style addressing and static keys, as MinIO,
SeaweedFS and most S3-compatible stores are set up. Anything else (virtual-host buckets, instance roles,
ACLs or object parameters on the storage) goes through boto3 as before: `for_storage` returns None.
"""

from __future__ import annotations

import http.client
import queue
import re
import ssl
import threading
import time
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ATTEMPTS = 3
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_SECONDS = 0.2
TIMEOUT_SECONDS = 60
_ERROR = re.compile(rb"<(Code|Message)>([^<]{0,300})</")


class _KnownPayloadAuth(S3SigV4Auth):
    """SigV4 for S3 that takes the payload's SHA-256 from the request instead of hashing the body again."""

    def payload(self, request):
        return request.context.get("payload_sha256") or super().payload(request)


class UploadError(Exception):
    """S3 refused a PUT, or could not be reached; the message says what happened."""


class FastPut:
    """PUTs to one endpoint with one set of keys; thread-safe (each request takes its own connection)."""

    def __init__(
        self, endpoint_url: str, region: str, access_key: str, secret_key: str, token: str | None, verify
    ):
        self.endpoint = endpoint_url.rstrip("/")
        self.signer = _KnownPayloadAuth(Credentials(access_key, secret_key, token), "s3", region)
        parts = urlsplit(self.endpoint)
        self._host, self._port, self._prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self._tls = _tls_context(verify) if parts.scheme == "https" else None
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()

    def put(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        name = f"/{quote(bucket)}/{quote(key, safe='/~')}"
        headers = {"Content-Length": str(len(data))}
        request = AWSRequest(method="PUT", url=self.endpoint + name, data=data, headers=headers)
        request.context["payload_sha256"] = sha256  # the signature covers it; S3 checks the body against it
        self.signer.add_auth(request)
        headers = dict(request.headers.items())
        for attempt in range(1, ATTEMPTS + 1):
            try:
                status, body = self._send(self._prefix + name, data, headers)
            except (OSError, http.client.HTTPException) as exc:
                if attempt == ATTEMPTS:
                    raise UploadError(
                        f"the object store could not be reached to upload {key} ({exc})"
                    ) from exc
            else:
                if status == 200:
                    return
                if status not in RETRY_STATUSES or attempt == ATTEMPTS:
                    raise UploadError(_refusal(status, key, body))
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))

    def _send(self, path: str, data: bytes, headers: dict) -> tuple[int, bytes]:
        """One request on an idle connection, else a new one; a kept connection the server closed while it
        sat idle is replaced at once (that is not a failed attempt)."""
        try:
            conn, reused = self._idle.get_nowait(), True
        except queue.Empty:
            conn, reused = self._connect(), False
        try:
            return self._exchange(conn, path, data, headers)
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
            if not reused:
                raise
        return self._exchange(self._connect(), path, data, headers)

    def _exchange(self, conn, path: str, data: bytes, headers: dict) -> tuple[int, bytes]:
        try:
            conn.request("PUT", path, body=data, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._idle.put(conn)
        return response.status, body

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=TIMEOUT_SECONDS, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_SECONDS)


def _tls_context(verify) -> ssl.SSLContext:
    """As botocore verifies: off (False), against a CA bundle (a path), or against its default bundle."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))


def _refusal(status: int, key: str, body: bytes) -> str:
    found = {k.decode(): v.decode("utf-8", "replace") for k, v in _ERROR.findall(body or b"")}
    detail = ": ".join(x for x in (found.get("Code"), found.get("Message")) if x) or "no details"
    return f"the object store answered {status} to the upload of {key} ({detail})"


_lock = threading.Lock()
_cache: dict[tuple, FastPut | None] = {}


def for_storage(storage) -> FastPut | None:
    """The fast path for a django-storages S3 storage, or None when it does not serve that configuration."""
    settings = (
        getattr(storage, "endpoint_url", None),
        getattr(storage, "addressing_style", None),
        getattr(storage, "signature_version", None),
        getattr(storage, "region_name", None),
        getattr(storage, "access_key", None),
        getattr(storage, "secret_key", None),
        getattr(storage, "security_token", None),
        repr(getattr(storage, "verify", None)),
        bool(getattr(storage, "default_acl", None) or getattr(storage, "object_parameters", None)),
    )
    if settings not in _cache:
        with _lock:
            if settings not in _cache:
                _cache[settings] = _build(storage, *settings)
    return _cache[settings]


def _build(
    storage, endpoint, style, signature, region, access, secret, token, _verify, extras
) -> FastPut | None:
    if (
        not endpoint
        or style != "path"
        or signature not in (None, "s3v4")
        or not (access and secret)
        or extras
    ):
        return None
    if getattr(storage, "use_ssl", True) is False and endpoint.startswith("https:"):
        return None
    return FastPut(endpoint, region or "us-east-1", access, secret, token, getattr(storage, "verify", None))
