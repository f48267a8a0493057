"""Content-addressed blob storage on Django's default storage: raw messages and attachments, key = sha256.

The same bytes always get the same key, so writing twice is harmless (a crash between upload and the
database commit leaves at most an orphan blob, never a wrong one) and identical attachments are stored once.

On S3 (django-storages) we talk to the bucket through one shared boto3 client, which is thread-safe, so
`Uploader` can push many small objects in parallel without creating a client per message; small objects
take `s3put`'s signed fast path where the storage's configuration allows. Large payloads
are streamed with multipart uploads from a file object; nothing here needs the whole blob in memory twice.
On any other storage (the embedded FileSystemStorage) a blob is written to a temporary file and renamed
into place, which is atomic and idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, BinaryIO

from django.core.files.storage import FileSystemStorage, default_storage, storages

from mailboxes import s3put

PREFIX = "blobs"
CHUNK = 1024 * 1024
MULTIPART_THRESHOLD = 8 * 1024 * 1024
UPLOAD_THREADS = 8


class StorageError(Exception):
    """The object store could not store or return a blob: unreachable, refusing or failing. Not the data's
    fault, so intake lets it fail the poll (which backs off and tries again) rather than quarantine mail."""

    def __init__(self, doing: str, exc: BaseException) -> None:
        self.message = f"The file storage could not {doing} ({type(exc).__name__}: {exc})."
        super().__init__(self.message)


class Missing(LookupError):
    """No blob under this key."""


def _backend_errors() -> tuple[type[BaseException], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, s3put.UploadError, BotoCoreError, ClientError, Boto3Error)


@contextlib.contextmanager
def _storage_errors(doing: str):
    try:
        yield
    except _backend_errors() as exc:
        raise StorageError(doing, exc) from exc


@dataclass(frozen=True)
class Blob:
    key: str
    sha256: str
    size: int


def key_for(sha256: str) -> str:
    """Storage key of the blob with this content hash (two-level fan-out keeps listings short)."""
    return f"{PREFIX}/{sha256[:2]}/{sha256}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- backend access -------------------------------------------------------------------------------------------

_client_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def _storage():
    # storages["default"] is what default_storage wraps; tests reset both when they swap STORAGES.
    return storages["default"]


def _s3(storage) -> tuple[object, str] | None:
    """(boto3 client, bucket) for an S3 storage; None for other backends.

    One client per connection configuration for the life of the process: creating one costs tens of
    milliseconds of CPU, more than the upload of a typical message.
    """
    # Look on the class: the instance attribute `connection` is a property that builds a boto3 resource.
    if not hasattr(type(storage), "connection") or not hasattr(storage, "bucket_name"):
        return None
    key = (
        storage.endpoint_url,
        storage.access_key,
        storage.secret_key,
        storage.region_name,
        storage.signature_version,
        storage.addressing_style,
    )
    client = _clients.get(key)
    if client is None:
        with _client_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _new_client(storage)
    return client, storage.bucket_name


def _new_client(storage):
    """A boto3 client with the storage's credentials, tuned for many small objects: no CRC32 over every
    body (S3 needs it only for some operations; SigV4 already covers integrity), and a connection pool as
    large as the uploader's thread pool."""
    try:
        from botocore.config import Config

        config = Config(
            signature_version=storage.signature_version,
            s3={"addressing_style": storage.addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=UPLOAD_THREADS * 2,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        session = storage._create_session()
        return session.client(
            "s3",
            region_name=storage.region_name,
            use_ssl=storage.use_ssl,
            endpoint_url=storage.endpoint_url,
            config=config,
            verify=storage.verify,
        )
    except Exception:  # an unusual storage configuration: use the storage's own client
        return storage.connection.meta.client


def _s3_key(storage, key: str) -> str:
    return storage._normalize_name(key)  # applies the storage's `location` prefix, like its own methods


# --- writing --------------------------------------------------------------------------------------------------


def put(data: bytes, *, sha256: str | None = None) -> Blob:
    """Store bytes under their content hash; returns the blob (idempotent)."""
    digest = sha256 or sha256_of(data)
    key = key_for(digest)
    storage = _storage()
    s3 = _s3(storage)
    with _storage_errors(f"store {key}"):
        if s3 is not None:
            client, bucket = s3
            # One PUT straight from the bytes we already hold (up to S3's 5 GB single-PUT limit): a multipart
            # upload would copy every 8 MB part into a buffer of its own. The signed fast path where it applies.
            fast = s3put.for_storage(storage)
            if fast is not None:
                fast.put(bucket, _s3_key(storage, key), data, digest)
            else:
                client.put_object(Bucket=bucket, Key=_s3_key(storage, key), Body=data)
        else:
            _put_local(storage, key, [data])
    return Blob(key, digest, len(data))


def put_file(fileobj: BinaryIO, *, sha256: str | None = None) -> Blob:
    """Store a (seekable) file's content under its hash, streaming: for attachments and raw mail of any size."""
    if sha256 is None:
        h = hashlib.sha256()
        fileobj.seek(0)
        for chunk in iter(lambda: fileobj.read(CHUNK), b""):
            h.update(chunk)
        sha256 = h.hexdigest()
    size = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(0)
    key = key_for(sha256)
    storage = _storage()
    s3 = _s3(storage)
    with _storage_errors(f"store {key}"):
        if s3 is not None:
            client, bucket = s3
            client.upload_fileobj(_NoClose(fileobj), bucket, _s3_key(storage, key), Config=_transfer_config())
        else:
            _put_local(storage, key, iter(lambda: fileobj.read(CHUNK), b""))
    fileobj.seek(0)
    return Blob(key, sha256, size)


class _NoClose:
    """s3transfer closes the file it uploaded (boto/s3transfer#80); the caller still owns ours."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, *args):
        return self._f.read(*args)

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self):
        return self._f.tell()

    def close(self) -> None:
        pass


_transfer = None


def _transfer_config():
    """Multipart in 8 MB parts, two at a time: bounded memory for a 25 MB attachment."""
    global _transfer
    if _transfer is None:
        from boto3.s3.transfer import TransferConfig

        _transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD,
            max_concurrency=2,
        )
    return _transfer


def _put_local(storage, key: str, chunks) -> None:
    if not isinstance(storage, FileSystemStorage):  # some other backend: let it do its thing
        from django.core.files.base import ContentFile

        if not storage.exists(key):
            storage.save(key, ContentFile(b"".join(chunks)))
        return
    path = storage.path(key)
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Uploader:
    """Uploads blobs in parallel threads; `wait()` (or leaving the `with` block) re-raises the first error.

    The hash is computed in the caller's thread, so the blob (key, sha256, size) is known at once and can be
    written to the database; only the network round trip happens in the background.
    """

    def __init__(self, workers: int = UPLOAD_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blob-upload")
        self._futures: dict[str, Future] = {}

    def submit(self, data: bytes, *, sha256: str | None = None) -> Blob:
        digest = sha256 or sha256_of(data)
        blob = Blob(key_for(digest), digest, len(data))
        if digest not in self._futures:  # the same attachment twice in one batch: one upload
            self._futures[digest] = self._pool.submit(put, data, sha256=digest)
        return blob

    def wait_for(self, digests) -> None:
        """Wait until these blobs are stored (re-raising an upload error); others may still be on their way."""
        for digest in digests:
            future = self._futures.get(digest)
            if future is not None:
                future.result()

    def wait(self) -> None:
        futures, self._futures = self._futures, {}
        errors = [f.exception() for f in futures.values()]
        for error in errors:
            if error is not None:
                raise error

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- reading --------------------------------------------------------------------------------------------------


def open_blob(key: str) -> IO[bytes]:
    """A binary file object for the blob (streams from S3; the caller closes it)."""
    return _storage().open(key, "rb")


def read(key: str) -> bytes:
    """The whole blob; for raw messages being (re)processed. `Missing` when there is none under the key,
    `StorageError` when the store cannot answer."""
    from botocore.exceptions import ClientError

    storage = _storage()
    s3 = _s3(storage)
    try:
        with _storage_errors(f"read {key}"):
            if s3 is not None:
                client, bucket = s3
                return client.get_object(Bucket=bucket, Key=_s3_key(storage, key))["Body"].read()
            with storage.open(key, "rb") as f:
                return f.read()
    except StorageError as exc:
        cause = exc.__cause__
        code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
        if isinstance(cause, FileNotFoundError) or code in ("NoSuchKey", "404"):
            raise Missing(key) from cause
        raise


def iter_chunks(key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """The blob in chunks, for downloads and streaming into outgoing MIME."""
    with open_blob(key) as f:
        yield from iter(lambda: f.read(chunk_size), b"")


def exists(key: str) -> bool:
    return _storage().exists(key)


def delete(key: str) -> None:
    """Remove a blob (only when no row refers to it any more: keys are shared by identical content)."""
    _storage().delete(key)


def url(key: str) -> str:
    """A (short-lived, on S3) download URL."""
    return default_storage.url(key)
