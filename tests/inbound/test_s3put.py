"""The blob store's signed fast path: what it stores boto3 reads back byte for byte; a refusal is explained;
busy answers and dropped connections are tried again; configurations it does not serve go through boto3."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading

import pytest

from mailboxes import blobs, s3put
from mailboxes.blobs import _s3, _storage

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize("size", [0, 70_000])
def test_fast_path_stores_what_boto3_reads_back(s3_storage, size):
    storage = _storage()
    assert s3put.for_storage(storage) is not None, (
        "the rig's SeaweedFS is the plain case the fast path serves"
    )
    data = os.urandom(size)
    blob = blobs.put(data)
    client, bucket = _s3(storage)
    head = client.head_object(Bucket=bucket, Key=blob.key)
    assert head["ContentLength"] == size
    assert client.get_object(Bucket=bucket, Key=blob.key)["Body"].read() == data
    assert blob.sha256 == hashlib.sha256(data).hexdigest()


def test_a_refused_upload_says_what_the_store_answered(s3_storage):
    storage = _storage()
    fast = s3put.for_storage(storage)
    wrong = s3put.FastPut(fast.endpoint, "us-east-1", storage.access_key, "not-the-secret", None, None)
    data = b"hello"
    with pytest.raises(
        s3put.UploadError, match=r"answered 403 to the upload of blobs/x .*SignatureDoesNotMatch"
    ):
        wrong.put(storage.bucket_name, "blobs/x", data, hashlib.sha256(data).hexdigest())


def test_configurations_it_does_not_serve_go_through_boto3(s3_storage):
    storage = _storage()
    for name, value in [
        ("addressing_style", "virtual"),
        ("endpoint_url", None),
        ("default_acl", "public-read"),
        ("access_key", None),
    ]:
        original = getattr(storage, name)
        setattr(storage, name, value)
        try:
            assert s3put.for_storage(storage) is None, name
        finally:
            setattr(storage, name, original)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server standing in for a struggling object store: it answers the statuses queued in
    `answers` in turn (then 200), and may drop a kept-alive connection after each answer."""

    protocol_version = "HTTP/1.1"
    answers: list[int] = []
    drop_after_answer = False
    seen: list[bytes] = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(body)
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if type(self).drop_after_answer:
            self.close_connection = True  # without saying so: the client finds out on its next request

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky(monkeypatch):
    monkeypatch.setattr(s3put, "BACKOFF_SECONDS", 0.01)
    _Flaky.answers, _Flaky.drop_after_answer, _Flaky.seen = [], False, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield s3put.FastPut(f"http://127.0.0.1:{server.server_port}", "us-east-1", "key", "secret", None, None)
    server.shutdown()
    server.server_close()


def _put(fast, data: bytes = b"raw mail") -> None:
    fast.put("bucket", "blobs/ab/abc", data, hashlib.sha256(data).hexdigest())


def test_busy_answers_are_tried_again_and_a_refusal_is_not(flaky):
    _Flaky.answers = [503, 500]
    _put(flaky)
    assert len(_Flaky.seen) == 3  # two busy answers, then stored

    _Flaky.answers = [503, 503, 503]
    with pytest.raises(s3put.UploadError, match="answered 503"):
        _put(flaky)

    _Flaky.seen, _Flaky.answers = [], [403]
    with pytest.raises(s3put.UploadError, match="answered 403"):
        _put(flaky)
    assert len(_Flaky.seen) == 1  # a refusal is final


def test_a_kept_connection_the_server_dropped_is_replaced(flaky, monkeypatch):
    monkeypatch.setattr(s3put, "ATTEMPTS", 1)  # replacing it is not a retry
    _Flaky.drop_after_answer = True
    for n in range(4):
        _put(flaky, f"mail {n}".encode())
    assert _Flaky.seen == [f"mail {n}".encode() for n in range(4)]  # each once: no attempt was lost


def test_an_unreachable_store_is_explained(monkeypatch):
    monkeypatch.setattr(s3put, "BACKOFF_SECONDS", 0.01)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    fast = s3put.FastPut(f"http://127.0.0.1:{port}", "us-east-1", "key", "secret", None, None)
    with pytest.raises(s3put.UploadError, match="could not be reached"):
        _put(fast)
