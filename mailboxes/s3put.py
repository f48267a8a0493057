"""The blob store's hot path to S3: one SigV4-signed PUT of bytes whose SHA-256 we already know.

Every inbound message stores its raw bytes and each attachment (about 1.4 objects a message), so the cost of
one small PUT bounds ingestion. boto3's `put_object` runs each request through its whole event pipeline
(parameter validation, some forty handlers, a fresh SHA-256 of the body for the signature, an invocation id)
and costs about 2.3 ms of CPU here; this path signs with botocore's own `S3SigV4Auth`, hands the signer the
content hash the blob key already is, and sends the request on a urllib3 pool (botocore's HTTP library):
about 1.0 ms. Retries follow boto3's standard mode (three attempts on connection errors, 429 and 5xx).

It serves only the plain case: an explicit endpoint with path-style addressing and static keys, as MinIO,
SeaweedFS and most S3-compatible stores are set up. Anything else (virtual-host buckets, instance roles,
ACLs or object parameters on the storage) goes through boto3 as before: `for_storage` returns None.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ATTEMPTS = 3
_RETRY = urllib3.Retry(
    total=ATTEMPTS - 1,
    backoff_factor=0.2,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=None,  # a PUT of the same bytes to the same key is idempotent
    raise_on_status=False,
)
_ERROR = re.compile(rb"<(Code|Message)>([^<]{0,300})</")


class _KnownPayloadAuth(S3SigV4Auth):
    """SigV4 for S3 that takes the payload's SHA-256 from the request instead of hashing the body again."""

    def payload(self, request):
        return request.context.get("payload_sha256") or super().payload(request)


class UploadError(Exception):
    """S3 refused a PUT; the message says what it answered."""


class FastPut:
    """PUTs to one endpoint with one set of keys; thread-safe (urllib3 pools are)."""

    def __init__(
        self, endpoint_url: str, region: str, access_key: str, secret_key: str, token: str | None, verify
    ):
        self.endpoint = endpoint_url.rstrip("/")
        self.signer = _KnownPayloadAuth(Credentials(access_key, secret_key, token), "s3", region)
        if verify is False:
            self.pool = urllib3.PoolManager(maxsize=16, cert_reqs="CERT_NONE", retries=_RETRY)
        else:
            from botocore.httpsession import get_cert_path

            ca = verify if isinstance(verify, str) else get_cert_path(True)
            self.pool = urllib3.PoolManager(
                maxsize=16, cert_reqs="CERT_REQUIRED", ca_certs=ca, retries=_RETRY
            )

    def put(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        url = f"{self.endpoint}/{quote(bucket)}/{quote(key, safe='/~')}"
        request = AWSRequest(method="PUT", url=url, data=data, headers={"Content-Length": str(len(data))})
        request.context["payload_sha256"] = sha256  # the signature covers it; S3 checks the body against it
        self.signer.add_auth(request)
        response = self.pool.request("PUT", url, body=data, headers=dict(request.headers.items()))
        if response.status != 200:
            found = dict(
                (k.decode(), v.decode("utf-8", "replace")) for k, v in _ERROR.findall(response.data or b"")
            )
            detail = ": ".join(x for x in (found.get("Code"), found.get("Message")) if x) or "no details"
            raise UploadError(
                f"the object store answered {response.status} to the upload of {key} ({detail})"
            )


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
